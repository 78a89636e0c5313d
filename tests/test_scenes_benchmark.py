"""benchmarks/scenes_benchmark.py: seed spreads, token statistics, the report (the alternating speed
probe it uses: tests/test_speed.py).

The last test runs the whole script on a tiny data set; it needs
``vt_edu.data.load_scenes``/``make_scenes``, the ``fpn``/``vt_fpn`` models with
``vt_fpn_attention``/``fpn_module_macs`` and segmentation in ``train()``.
"""

from __future__ import annotations

import json
from collections import namedtuple

import numpy as np
import pytest

from script_loader import load_script


def _bench():
    return load_script("benchmarks/scenes_benchmark.py")


def test_differences_and_ratios_keep_every_seed():
    bench = _bench()
    a = [{"miou": 0.40, "ips": 100.0}, {"miou": 0.42, "ips": 120.0}]
    b = [{"miou": 0.43, "ips": 150.0}, {"miou": 0.44, "ips": 120.0}]
    d = bench.difference(a, b, "miou")
    assert d["a"]["values"] == [0.40, 0.42] and d["b"]["values"] == [0.43, 0.44]
    assert d["difference"]["values"] == pytest.approx([0.03, 0.02])  # per seed pair, not of the means only
    assert d["difference"]["min"] == pytest.approx(0.02) and d["difference"]["max"] == pytest.approx(0.03)
    assert d["difference"]["mean"] == pytest.approx(0.025)
    r = bench.ratio(a, b, "ips")
    assert r["values"] == [1.5, 1.0] and r["mean"] == 1.25 and (r["min"], r["max"]) == (1.0, 1.5)


def test_tokenizer_levels_reads_the_attention_of_a_real_vt_fpn():
    from vt_edu.models import create_model, vt_fpn_attention

    model = create_model("vt_fpn", num_classes=3, input_shape=(64, 64, 3), width=0.25, num_tokens=4)
    images = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype("float32")
    levels = _bench().tokenizer_levels(vt_fpn_attention(model, images))
    assert {name: a.shape for name, a in levels.items()} == {
        "p2": (2, 256, 4), "p3": (2, 64, 4), "p4": (2, 16, 4), "p5": (2, 4, 4)}
    with pytest.raises(ValueError, match="no levels"):
        _bench().tokenizer_levels({"levels": {}})


def test_level_statistics_in_cells_and_input_pixels():
    masks = np.zeros((1, 4, 4), np.uint8)
    masks[0, :2, :2] = 4  # the top-left cell of a 2x2 map (stride 2) is all object
    attention = np.array([[[0.5, 0.25], [0.5, 0.25], [0.0, 0.25], [0.0, 0.25]]])
    stats = _bench().level_statistics(attention, masks, canvas_size=4)
    assert stats["size"] == [2, 2] and stats["stride"] == 2 and stats["tokens"] == 2
    fraction = stats["foreground"]["fraction"]
    assert fraction["per_token"] == [0.5, 0.25] and fraction["uniform_share"] == 0.25
    assert fraction["ratio"] == pytest.approx(1.5)
    assert stats["effective_cells_per_token_by_token"] == pytest.approx([2.0, 4.0])
    assert stats["effective_input_pixels_per_token"] == pytest.approx(12.0)  # 3 cells of 2x2 pixels
    assert stats["effective_share_of_map"] == pytest.approx(0.75)


Scenes = namedtuple("Scenes", "scenes masks boxes")


def _object_and_corner_attention(model, images, batch_size=64):
    """Stand-in for vt_fpn_attention on a 4x4 map (stride 2): token 0 reads the object's cells,
    token 1 always the top-left cell."""
    objects = images.max(axis=-1).reshape(len(images), 4, 2, 4, 2).mean(axis=(2, 4)).reshape(len(images), 16) > 0
    attention = np.zeros((len(images), 16, 2))
    attention[..., 0] = objects / objects.sum(axis=1, keepdims=True)
    attention[:, 0, 1] = 1.0
    return {"levels": {"p2": {"tokenizer": attention}}}  # vt_fpn_attention's layout


def test_tracking_statistics_tells_a_token_that_follows_the_object_from_one_that_stays(monkeypatch):
    import vt_edu.models

    monkeypatch.setattr(vt_edu.models, "vt_fpn_attention", _object_and_corner_attention, raising=False)
    places = [(0, 0), (2, 4), (4, 2)]  # a 4x4-pixel object on an 8x8 canvas, moved by whole cells
    scenes = np.zeros((3, 8, 8, 3), np.uint8)
    masks = np.zeros((3, 8, 8), np.uint8)
    boxes = np.full((3, 1, 4), -1, np.int32)
    for i, (top, left) in enumerate(places):
        scenes[i, top:top + 4, left:left + 4] = 200
        masks[i, top:top + 4, left:left + 4] = 1
        boxes[i, 0] = (top, left, top + 4, left + 4)
    result = _bench().tracking_statistics(None, [Scenes(scenes, masks, boxes)], np.zeros(3), np.ones(3), 8)
    level = result["p2"]
    assert level["slope_by_token"] == pytest.approx([1.0, 0.0])
    assert level["tokens_following"] == 1
    assert level["mask_correlation_by_token"][0] == pytest.approx(1.0)


def test_report_sets_each_token_level_beside_the_fresh_model(tmp_path):
    bench = _bench()
    fresh = {"foreground_ratio": bench.spread([1.10, 1.12]), "tracking_slope": bench.spread([0.30, 0.40])}
    summary = {"p2": {"foreground_share": bench.spread([0.50, 0.52]), "uniform_share": bench.spread([0.40, 0.40]),
                      "foreground_ratio": bench.spread([1.25, 1.30]),
                      "effective_input_pixels_per_token": bench.spread([300.0, 340.0]),
                      "tracking_slope": bench.spread([0.60, 0.80]), "fresh": fresh}}
    provenance = {"date": "2026-12-03", "backend": "tensorflow", "git_commit": "abc",
                  "hardware": {"cpu": "Test CPU", "cpu_cores": 2, "gpu": None}}
    result = {"seeds": [], "summary": summary, "paper_foreground_ratio": 1.283}
    (tmp_path / "tokens.json").write_text(json.dumps(
        {"part": "tokens", "command": "python x", "settings": {}, "provenance": provenance, "result": result}))
    bench.write_markdown(tmp_path)
    report = (tmp_path / "benchmark.md").read_text()
    assert ("| level | attention on objects | uniform token | ratio | ratio, fresh model | input pixels per token | "
            "tracking slope | tracking slope, fresh model |") in report
    assert ("| p2 | 51.00 (50.00 to 52.00) % | 40.00 (40.00 to 40.00) % | 1.275 (1.250 to 1.300) | "
            "1.110 (1.100 to 1.120) | 320 (300 to 340) | 0.70 (0.60 to 0.80) | 0.35 (0.30 to 0.40) |") in report


def test_quick_sizes_replace_defaults_but_not_explicit_options():
    bench = _bench()
    args = bench.parse_args(["--quick", "--epochs", "3"])
    assert args.train_scenes == bench.QUICK["train_scenes"] and args.epochs == 3
    assert args.seed_list == [0, 1]


@pytest.mark.parametrize("argv, message", [(["--seeds", "0,x"], "--seeds must be integers"),
                                           (["--shift-positions", "1"], "--shift-positions must be at least 2"),
                                           (["--epochs", "0"], "--epochs must be at least 1")])
def test_bad_options_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit):
        _bench().parse_args(argv)
    assert message in capsys.readouterr().err


def test_an_unknown_part_fails_before_anything_is_written(tmp_path, capsys):
    assert _bench().main(["--out", str(tmp_path / "out"), "--parts", "segmentation,speed"]) == 2
    assert "unknown part(s) speed" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_report_gives_each_difference_with_its_seed_range(tmp_path):
    bench = _bench()
    rows = {"fpn": [{"mean_iou": 0.40, "pixel_accuracy": 0.80, "images_per_second": 100.0, "macs": 4e8},
                    {"mean_iou": 0.42, "pixel_accuracy": 0.82, "images_per_second": 110.0, "macs": 4e8}],
            "vt_fpn": [{"mean_iou": 0.43, "pixel_accuracy": 0.83, "images_per_second": 120.0, "macs": 3e8},
                       {"mean_iou": 0.44, "pixel_accuracy": 0.81, "images_per_second": 110.0, "macs": 3e8}]}
    result = {"rows": rows, "width": 0.25, "epochs": 2, "seeds": [0, 1],
              "macs": {"fpn": {"total": 4e8, "fpn_module": 2e8}, "vt_fpn": {"total": 3e8, "fpn_module": 1e8}},
              "vt_fpn_to_fpn_macs": {"total": 0.75, "fpn_module": 0.5},
              "differences": {k: bench.difference(rows["fpn"], rows["vt_fpn"], k)
                              for k in ("mean_iou", "pixel_accuracy")},
              "images_per_second_ratio_runs": bench.ratio(rows["fpn"], rows["vt_fpn"], "images_per_second"),
              "alternating_speed": {"ratio_b_to_a": bench.spread([1.1, 1.3])}}
    provenance = {"date": "2026-12-03", "backend": "tensorflow", "git_commit": "abc",
                  "hardware": {"cpu": "Test CPU", "cpu_cores": 2, "gpu": None}}
    (tmp_path / "segmentation.json").write_text(json.dumps(
        {"part": "segmentation", "command": "python x", "settings": {}, "provenance": provenance, "result": result}))
    bench.write_markdown(tmp_path)
    report = (tmp_path / "benchmark.md").read_text()
    assert "| fpn | 41.00 (40.00 to 42.00) % | 81.00 (80.00 to 82.00) % | 105 (100 to 110) | 400.0 M |" in report
    assert "vt_fpn - fpn mean_iou: 2.50 (2.00 to 3.00) points" in report
    assert "pixel_accuracy: 1.00 (-1.00 to 3.00) points" in report
    assert ("vt_fpn / fpn images/s: 1.100 (1.000 to 1.200) in the runs, 1.200 (1.100 to 1.300) in the alternating"
            in report)
    assert "FPN-module MACs: fpn 200.0 M, vt_fpn 100.0 M (vt_fpn / fpn: 0.500; total 0.750)" in report


def _tiny_argv(tiny_cifar, out):
    source, _ = tiny_cifar.image_folder(per_class=(3, 2))
    # Width 0.25: resnet18 at width 0.125 on 64x64 inputs crashes TensorFlow's oneDNN kernels (segfault).
    return ["--quick", "--out", str(out), "--data", str(source), "--train-scenes", "8", "--test-scenes", "4",
            "--batch-size", "4", "--width", "0.25", "--seeds", "0", "--speed-rounds", "1", "--speed-steps", "1",
            "--token-scenes", "4", "--shift-objects", "1", "--shift-positions", "2"]


def test_segmentation_and_tokens_run_resume_and_record_on_a_tiny_data_set(tiny_cifar, tmp_path, capsys):
    """Needs the merged scenes, fpn and engine branches (see the module docstring)."""
    out = tmp_path / "scenes"
    argv = [*_tiny_argv(tiny_cifar, out), "--parts", "tokens,segmentation"]  # run in order: segmentation first
    assert _bench().main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("[segmentation ") == 2 and printed.count("[tokens] seed 0 level") >= 1
    for part in ("segmentation", "tokens"):
        record = json.loads((out / f"{part}.json").read_text())
        assert record["provenance"]["hardware"]["cpu_cores"] >= 1 and record["settings"]["train_scenes"] == 8
    seg = json.loads((out / "segmentation.json").read_text())["result"]
    assert [r["run_dir"] for r in seg["rows"]["fpn"]] == [str(out / "runs" / "segmentation" / "fpn-s0")]
    assert 0 <= seg["rows"]["vt_fpn"][0]["mean_iou"] <= 1 and seg["macs"]["vt_fpn"]["fpn_module"] > 0
    tokens = json.loads((out / "tokens.json").read_text())["result"]
    assert tokens["summary"] and all(np.isfinite(s["foreground_share"]["mean"]) for s in tokens["summary"].values())
    for level, s in tokens["summary"].items():  # the fresh model's numbers beside the trained one's
        assert np.isfinite(s["fresh"]["foreground_ratio"]["mean"]) and np.isfinite(s["fresh"]["tracking_slope"]["mean"])
        entry = tokens["seeds"][0]["levels"][level]
        assert set(entry) == {"trained", "fresh"}
        trained, fresh = (entry[w]["foreground"]["fraction"]["ratio"] for w in ("trained", "fresh"))
        assert s["ratio_trained_to_fresh"]["values"] == pytest.approx([trained / fresh])
    assert "; fresh " in printed
    assert "## Tokens of the trained VT-FPN" in (out / "benchmark.md").read_text()
    # A second run reads the finished runs back instead of training again.
    metrics = (out / "runs" / "segmentation" / "vt_fpn-s0" / "metrics.json").read_text()
    assert _bench().main([*argv, "--parts", "segmentation"]) == 0
    assert (out / "runs" / "segmentation" / "vt_fpn-s0" / "metrics.json").read_text() == metrics


def test_classification_of_scenes_runs_and_records_on_a_tiny_data_set(tiny_cifar, tmp_path, capsys):
    """Needs the merged scenes branch (load_scenes) and the engine's compile_for_training."""
    out = tmp_path / "scenes"
    assert _bench().main([*_tiny_argv(tiny_cifar, out), "--parts", "classification"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("[classification ") == 2 and "[classification] alternating probe" in printed  # two runs, the probe
    result = json.loads((out / "classification.json").read_text())["result"]
    assert result["rows"]["vt_resnet18"][0]["train_images"] == 8
    assert result["differences"]["top1"]["difference"]["values"] == [
        result["rows"]["vt_resnet18"][0]["top1"] - result["rows"]["resnet18"][0]["top1"]]
    assert len(result["alternating_speed"]["ratio_b_to_a"]["values"]) == 1
