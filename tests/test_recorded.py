"""vt_edu.recorded: the benchmark's part files read back and put into sentences."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vt_edu.recorded import (
    PACKAGED_RESULTS,
    PACKAGED_WEIGHTS_LIMIT,
    PARTS,
    SCENE_PARTS,
    ablation_verdicts,
    find_results,
    load_benchmark,
    load_scenes_benchmark,
    packaged_files,
    recorded_vt_fpn,
    run_history,
    matched_summary,
    matched_table,
    scenes_summary,
)

PROVENANCE = {"date": "2026-11-24", "backend": "torch", "hardware": {"cpu": "Test CPU", "cpu_cores": 2, "gpu": None},
              "git_commit": "abc"}


def _run(model, top1, macs, seconds=600.0, epochs=10, ips=300.0):
    return {"model": model, "top1": top1, "top5": 0.99, "epochs_completed": epochs, "epochs_requested": epochs,
            "train_seconds": seconds, "images_per_second": ips, "params": 1e6, "macs": macs,
            "run_dir": f"results/bench/runs/{model}"}


@pytest.fixture
def results(tmp_path):
    folder = tmp_path / "results" / "cpu-benchmark"
    folder.mkdir(parents=True)
    parts = {
        "cnn": {**_run("cnn", 0.70, 4.5e6), "students_top1": 0.6937, "difference_to_students": 0.0063},
        "vt": {"rows": [_run("resnet18", 0.80, 35e6, ips=310.0), _run("vt_resnet18", 0.81, 37e6, ips=300.0),
                        _run("vit", 0.55, 58e6, ips=200.0)],
               "minutes": 8, "width": 0.25, "vt_to_resnet_seconds_per_image": 1.033, "vt_to_resnet_macs": 1.057},
        "target": {**_run("vt_resnet18", 0.86, 37e6, seconds=3400.0), "target_top1": 0.85, "target_minutes": 60,
                   "reached": True, "top1_flip_tta": 0.8712},
    }
    for name, result in parts.items():
        record = {"part": name, "settings": {"width": 0.25}, "provenance": PROVENANCE, "result": result}
        (folder / f"{name}.json").write_text(json.dumps(record))
    run = tmp_path / "results" / "bench" / "runs" / "cnn"
    run.mkdir(parents=True)
    (run / "history.csv").write_text("epoch,val_accuracy,train_seconds\n1,0.5,60.5\n2,0.6,61\n")
    return tmp_path / "results"


def test_no_recorded_benchmark_reads_as_empty(tmp_path):
    assert load_benchmark(tmp_path) == {} and load_benchmark(None) == {}


def test_run_history_reads_the_recorded_run_folder(results):
    rows = run_history(results, "results/bench/runs/cnn")
    assert rows == [{"epoch": 1.0, "val_accuracy": 0.5, "train_seconds": 60.5},
                    {"epoch": 2.0, "val_accuracy": 0.6, "train_seconds": 61.0}]
    assert run_history(results, "results/bench/runs/missing") == []


def test_find_results_looks_in_the_folder_and_its_parents(results):
    assert find_results(results.parent / "book" / "deeper") == results


def _ablations(**top1):
    labels = {"paper": "paper", "filter-only": "filter only", "pooling": "pooling", "no-projector": "no projector",
              "tokens-64": "L=64"}
    return {"rows": [{"variant": k, "label": labels[k], "top1": v, "epochs_completed": 5 if k == "pooling" else 4}
                     for k, v in top1.items()],
            "seed_noise_top1": 0.01}


def test_ablation_verdicts_compare_each_change_with_the_seed_noise_and_the_papers_direction():
    verdicts = ablation_verdicts(_ablations(paper=0.60, **{"filter-only": 0.595, "pooling": 0.55,
                                                           "no-projector": 0.63, "tokens-64": 0.605}))
    text = "\n".join(verdicts)
    assert "filter only: 59.50 %, -0.50 points against the paper's configuration (within the seed noise; " \
           "the paper's direction: lower; not reproduced here)" in text
    assert "pooling: 55.00 %, -5.00 points" in text and "(lower; the paper's direction: lower; consistent)" in text
    assert "no projector: 63.00 %, +3.00 points" in text and "(higher; the paper's direction: lower; not reproduced" in text
    assert "L=64: 60.50 %, +0.50 points" in text and "the paper's direction: about the same; consistent" in text
    # Only the pooling run trained a different number of epochs in the same time: it says so.
    assert text.count("so the difference mixes the change with the epochs") == 1
    assert "It trained 5 epochs against the baseline's 4 in the same time" in verdicts[1]
    assert ablation_verdicts({"rows": [], "seed_noise_top1": 0.0}) == []


# ------------------------------------------------------------ the copy in the package
REPOSITORY_RESULTS = Path(__file__).resolve().parents[1] / "results"


def test_the_package_carries_an_exact_copy_of_what_the_chapters_read():
    expected = packaged_files(REPOSITORY_RESULTS)
    shipped = sorted(p.relative_to(PACKAGED_RESULTS) for p in PACKAGED_RESULTS.rglob("*")
                     if p.is_file() and p.suffix in (".json", ".csv", ".keras"))
    stale = [str(p) for p in expected if (REPOSITORY_RESULTS / p).read_bytes() != (PACKAGED_RESULTS / p).read_bytes()
             if (PACKAGED_RESULTS / p).is_file()]
    hint = "run `python -m vt_edu.recorded` to copy results/ into vt_edu/results"
    assert shipped == expected, hint
    assert not stale, f"{stale} differ; {hint}"
    # Every part file and every run folder a part file names.
    assert {p.name for p in expected if len(p.parts) == 2 and p.parts[0] == "cpu-benchmark"} == {
        f"{part}.json" for part in PARTS}
    assert Path("cpu-benchmark/runs/cnn-seed/metrics.json") in expected


def test_the_packaged_copy_alone_gives_every_chapter_its_numbers():
    packaged, repository = load_benchmark(PACKAGED_RESULTS), load_benchmark(REPOSITORY_RESULTS)
    assert set(packaged) == set(PARTS)
    assert packaged == {k: v | {"folder": packaged[k]["folder"]} for k, v in repository.items()}
    matched = [load_benchmark(folder, "matched").get("matched") for folder in (PACKAGED_RESULTS, REPOSITORY_RESULTS)]
    if matched[1] is not None:  # recorded: the chapter's table and sentences are the same from both copies
        assert matched_table(matched[0]) == matched_table(matched[1])
        assert matched_summary(matched[0]) == matched_summary(matched[1])
    for part in packaged.values():
        for run_dir in {row["run_dir"] for row in part["result"].get("rows", [part["result"]]) if "run_dir" in row}:
            assert run_history(PACKAGED_RESULTS, run_dir) == run_history(REPOSITORY_RESULTS, run_dir) != []


def test_find_results_ends_at_the_packaged_copy(tmp_path, monkeypatch):
    import vt_edu.recorded as recorded

    # An installed package: no results/ above the working folder or beside the package.
    monkeypatch.setattr(recorded, "__file__", str(tmp_path / "site-packages" / "vt_edu" / "recorded.py"))
    assert find_results(tmp_path / "content") == PACKAGED_RESULTS


# ------------------------------------------------------------------ results/scenes
def _spread(*values):
    return {"values": list(values), "mean": sum(values) / len(values), "min": min(values), "max": max(values)}


def _pair(a, b):
    return {"a": _spread(*a), "b": _spread(*b), "difference": _spread(*(y - x for x, y in zip(a, b)))}


SCENES = {"num_train": 5000, "num_test": 1000, "canvas_size": 64, "max_objects": 3}


@pytest.fixture
def scene_results(tmp_path):
    folder = tmp_path / "results" / "scenes"
    folder.mkdir(parents=True)

    def run(model, seed):
        return {"model": model, "seed": seed, "run_dir": f"results/scenes/runs/x/{model}-s{seed}"}

    parts = {
        "segmentation": {
            "rows": {"fpn": [run("fpn", 0), run("fpn", 1)], "vt_fpn": [run("vt_fpn", 0), run("vt_fpn", 1)]},
            "macs": {"fpn": {"total": 400e6, "fpn_module": 200e6}, "vt_fpn": {"total": 260e6, "fpn_module": 60e6}},
            "vt_fpn_to_fpn_macs": {"total": 0.65, "fpn_module": 0.3},
            "differences": {"mean_iou": _pair([0.40, 0.42], [0.43, 0.44]),
                            "pixel_accuracy": _pair([0.80, 0.81], [0.82, 0.80])},
            "images_per_second_ratio_runs": _spread(1.2, 1.3),
            "alternating_speed": {"ratio_b_to_a": _spread(1.1, 1.25, 1.2)},
            "width": 0.25, "epochs": 10, "seeds": [0, 1], "scenes": SCENES},
        "classification": {
            "rows": {"resnet18": [run("resnet18", 0)], "vt_resnet18": [run("vt_resnet18", 0)]},
            "vt_to_resnet_macs": 0.8, "differences": {"top1": _pair([0.50], [0.49])},
            "vt_to_resnet_seconds_per_image_alternating": _spread(0.95, 1.05),
            "alternating_speed": {"ratio_b_to_a": _spread(1.05, 0.95)},
            "images_per_second_ratio_runs": _spread(1.0),
            "width": 0.25, "epochs": 10, "seeds": [0], "scenes": SCENES},
        "tokens": {
            "seeds": [{"seed": 0, "run_dir": "results/scenes/runs/segmentation/vt_fpn-s0", "levels": {}}],
            "summary": {"p4": {"foreground_ratio": _spread(1.5, 1.3), "foreground_share": _spread(0.6, 0.52),
                               "uniform_share": _spread(0.4), "effective_input_pixels_per_token": _spread(300.0, 340.0),
                               "tracking_slope": _spread(0.8, 0.6),
                               "fresh": {"foreground_ratio": _spread(1.2, 1.1), "tracking_slope": _spread(0.3, 0.1)},
                               "ratio_trained_to_fresh": _spread(1.25, 1.3 / 1.1)}},
            "paper_foreground_ratio": 1.283},
    }
    for name, result in parts.items():
        record = {"part": name, "settings": {}, "provenance": PROVENANCE, "result": result}
        (folder / f"{name}.json").write_text(json.dumps(record))
    run_dir = folder / "runs" / "segmentation" / "vt_fpn-s0"
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.json").write_text("{}")
    return tmp_path / "results"


def test_scenes_summary_gives_every_difference_with_its_seed_range(scene_results):
    parts = load_scenes_benchmark(scene_results)
    assert set(parts) == set(SCENE_PARTS) and load_benchmark(scene_results) == {}
    text = scenes_summary(parts)
    assert "2-core Test CPU CPU with 5,000 training and 1,000 test scenes of 64x64 pixels" in text
    assert "mean IoU of 41.00 % (40.00 to 42.00 % over 2 seeds) and the VT-FPN 43.50 % (43.00 to 44.00 % over " \
           "2 seeds): +2.50 points (+2.00 to +3.00 per seed) (pixel accuracy +0.50 points (-1.00 to +2.00 per seed))" \
           in text
    assert "FPN module needs 0.30 times the FPN's MACs (60.0 M against 200.0 M; the whole model 0.65 times)" in text
    assert "VT-FPN trains at 1.18 (1.10 to 1.25 over 3 rounds) times the FPN's images/s measured side by side " \
           "(alternating rounds of training steps; in the whole runs 1.25 (1.20 to 1.30 over 2 seeds))" in text
    # one seed: a value without a range; the clock disagrees with the MACs in one of the two rounds
    assert "ResNet-18 reached 50.00 % and VT-ResNet-18 49.00 %: -1.00 points, with 0.80 times the MACs" in text
    assert "VT modules on a 16x16 map, 256 positions for 16 tokens" in text
    assert "with 0.80 times the MACs and 1.00 (0.95 to 1.05 over 2 rounds) times the training time per image" in text
    assert "promise a saving of 20 %; on this CPU the clock does not show it consistently" in text
    assert "put 56.00 % (52.00 to 60.00 % over 2 seeds) of their attention on object pixels, which cover 40.00 %" \
           in text
    assert "1.40 (1.30 to 1.50 over 2 seeds) times a uniform token's share (+40.0 %; the paper reports +28.3 %)" in text
    assert "moves 0.70 (0.60 to 0.80 over 2 seeds) times as far as an object" in text
    assert ("An untrained VT-FPN of the same options and seed scores 1.15 (1.10 to 1.20 over 2 seeds) times the "
            "uniform share; the trained ratio is 1.216 (1.182 to 1.250 over 2 seeds) times the untrained one, so "
            "training raised it.") in text
    assert "times as far as an object that is moved (untrained: 0.20 (0.10 to 0.30 over 2 seeds))." in text


@pytest.mark.parametrize("change, verdict", [((0.9, 0.95), "training lowered it"),
                                             ((0.95, 1.05), "training did not move it consistently")])
def test_scenes_summary_says_when_training_did_not_raise_the_tokens_ratio(scene_results, change, verdict):
    parts = load_scenes_benchmark(scene_results)
    parts["tokens"]["result"]["summary"]["p4"]["ratio_trained_to_fresh"] = _spread(*change)
    text = scenes_summary(parts)
    assert f"times the untrained one, so {verdict}" in text and "training raised it" not in text


def test_scenes_summary_of_tokens_recorded_without_the_untrained_baseline(scene_results):
    parts = load_scenes_benchmark(scene_results)
    for key in ("fresh", "ratio_trained_to_fresh"):
        del parts["tokens"]["result"]["summary"]["p4"][key]
    text = scenes_summary(parts)
    assert "untrained" not in text
    assert "1.40 (1.30 to 1.50 over 2 seeds) times a uniform token's share (+40.0 %; the paper reports +28.3 %)." \
           " A token reads about 320 (300 to 340 over 2 seeds) input pixels" in text


def test_scenes_summary_says_when_the_clock_shows_the_mac_saving(scene_results):
    parts = load_scenes_benchmark(scene_results)
    parts["classification"]["result"]["vt_to_resnet_seconds_per_image_alternating"] = _spread(0.85, 0.9)
    assert "the clock shows it in every round of the side-by-side timing" in scenes_summary(parts)


def test_scenes_summary_without_a_benchmark_says_so(tmp_path):
    assert load_scenes_benchmark(tmp_path) == {} and load_scenes_benchmark(None) == {}
    assert "No scenes benchmark is recorded" in scenes_summary({})


def test_packaged_files_take_the_analysed_vt_fpn_only_when_it_is_small(scene_results):
    run_dir = scene_results / "scenes" / "runs" / "segmentation" / "vt_fpn-s0"
    weights = run_dir / "model.keras"
    assert recorded_vt_fpn(scene_results, load_scenes_benchmark(scene_results)) is None
    weights.write_bytes(b"0" * PACKAGED_WEIGHTS_LIMIT)
    files = packaged_files(scene_results)
    assert Path("scenes/runs/segmentation/vt_fpn-s0/model.keras") in files
    assert Path("scenes/runs/segmentation/vt_fpn-s0/metrics.json") in files
    assert {f"{part}.json" for part in SCENE_PARTS} <= {p.name for p in files}
    assert packaged_files(scene_results, "cpu-benchmark") == []
    assert recorded_vt_fpn(scene_results, load_scenes_benchmark(scene_results)) == weights
    assert recorded_vt_fpn(scene_results, load_scenes_benchmark(scene_results), seed=1) is None
    weights.write_bytes(b"0" * (PACKAGED_WEIGHTS_LIMIT + 1))
    assert Path("scenes/runs/segmentation/vt_fpn-s0/model.keras") not in packaged_files(scene_results)


def test_the_packaged_copy_gives_the_scenes_chapters_their_numbers():
    packaged, repository = load_scenes_benchmark(PACKAGED_RESULTS), load_scenes_benchmark(REPOSITORY_RESULTS)
    assert set(packaged) == set(repository)
    assert scenes_summary(packaged) == scenes_summary(repository)


def test_scenes_summary_gives_a_paragraph_per_comparison_and_a_bullet_per_level(scene_results):
    parts = load_scenes_benchmark(scene_results)
    paragraphs = scenes_summary(parts).split("\n\n")
    bullets = [line for line in paragraphs[-1].splitlines() if line.startswith("- ")]
    assert paragraphs[0].startswith("Recorded on") and "FPN" in paragraphs[0]
    assert paragraphs[1].startswith("Classifying the same scenes")
    assert [b.split(":")[0] for b in bullets] == [f"- Level {level}" for level in parts["tokens"]["result"]["summary"]]


def test_token_attention_summary_states_the_recorded_rows_and_the_rule():
    import copy

    from vt_edu import recorded

    parts = recorded.load_benchmark(recorded.find_results(), "token-attention")
    if not parts:
        pytest.skip("no token attention benchmark recorded")
    text = recorded.token_attention_summary(parts)
    result = parts["token_attention"]["result"]
    for name in result["candidates"]:
        runs = [r for r in result["rows"] if r["candidate"] == name]
        values = [r["trained"][0]["effective_tokens"] for r in runs]
        half = (max(values) - min(values)) / 2
        # module 1's row: the mean and half the range over the seeds
        assert f"| `{name}`, 1 | " in text and f"| {sum(values) / len(values):.1f}±{half:.1f} |" in text
    assert f"the rule picks `{result['choice']['default']}`" in text or "No setting passed" in text
    # No setting passes: the default stays, and the text says so.
    nothing = copy.deepcopy(parts)
    nothing["token_attention"]["result"]["choice"].update(attention_learned=[], default="stable")
    text = recorded.token_attention_summary(nothing)
    assert "No setting passed, so the default stays `stable`." in text and "picks" not in text
    assert recorded.token_attention_summary({}) == "The token attention benchmark is not recorded in this copy of the book."


# ------------------------------------------------------------------ results/matched
def _matched_row(model, seed, top1, matched=True, macs=35e6, params=7e5):
    return {"model": model, "seed": seed, "recipe": "fast" if matched else "seed",
            "recipe_changes": {"clip_norm": 5.0} if matched else {}, "epochs_completed": 20 if matched else 10,
            "matched": matched, "top1": top1, "top1_flip_tta": top1 + 0.01, "top5": 0.99, "params": params,
            "macs": macs, "run_dir": f"results/matched/runs/{model}-s{seed}", "provenance": PROVENANCE}


def _matched(vt=(0.851, 0.853), resnet=(0.84, 0.855), speed=True):
    rows = [_matched_row("resnet18", s, v) for s, v in enumerate(resnet)]
    rows += [_matched_row("vt_resnet18", s, v, macs=37e6, params=7.9e5) for s, v in enumerate(vt)]
    rows += [_matched_row("students-cnn", s, v, matched=False, macs=4.5e6) for s, v in enumerate((0.70, 0.71))]
    record = {"part": "matched", "rows": rows}
    if speed:
        record["speed"] = {"reference": "resnet18", "ratio_to_first": {"vt_resnet18": {"values": [0.8, 0.5]}}}
    return record


def test_matched_results_gather_the_seeds_of_each_model_in_the_chapters_order():
    from vt_edu.recorded import matched_results

    results = matched_results(_matched())
    assert list(results) == ["students-cnn", "resnet18", "vt_resnet18"]
    vt = results["vt_resnet18"]
    assert vt["seeds"] == [0, 1] and vt["top1"]["values"] == [0.851, 0.853] and vt["recipe"] == "fast, clip_norm=5"
    assert vt["time_per_image"]["values"] == pytest.approx([1.25, 2.0])  # 1 / images-per-second ratio, per round
    assert results["resnet18"]["time_per_image"]["values"] == [1.0]
    assert results["students-cnn"]["time_per_image"] is None


def test_a_difference_inside_the_seed_spread_is_not_distinguishable():
    from vt_edu.recorded import compare_seeds, matched_results, matched_summary

    results = matched_results(_matched())
    c = compare_seeds(results["resnet18"], results["vt_resnet18"])
    assert c["difference"]["values"] == pytest.approx([0.011, -0.002])  # per seed, VT minus ResNet
    assert c["seed_spread"] == pytest.approx(0.015)  # ResNet's 84.0 to 85.5
    assert not c["distinguishable"]
    text = matched_summary(_matched())
    assert "+0.45 points against ResNet-18 (per seed: +1.10, -0.20), seed spread 1.50 points: not distinguishable" in text
    assert "the 85 % target is met on every seed (2)" in text
    assert "1.13 times ResNet-18's parameters and 1.06 times its MACs" in text
    assert "trains at 1.62 (1.25 to 2.00 over 2 rounds) times its time per image" in text
    assert "70.50 % (70.00 to 71.00 % over 2 seeds) against the 69.37 % they reported (+1.13 points)" in text
    assert "Not recorded yet: students' ViT (seeds 0, 1), ViT (the book's) (seeds 0, 1)." in text


def test_a_difference_beyond_the_spread_gets_a_direction_and_a_missed_seed_is_named():
    from vt_edu.recorded import matched_summary, matched_table

    record = _matched(vt=(0.86, 0.845), resnet=(0.80, 0.805), speed=False)
    text = matched_summary(record)
    assert "seed spread 1.50 points: better by more than the spread" in text
    assert "the 85 % target is missed on seed 1" in text
    assert "time per image" not in text  # not timed side by side: no ratio is claimed
    table = matched_table(record)
    assert "| VT-ResNet-18 | fast, clip_norm=5 | 20 | 2 | 85.25±0.75 | 37.0 | not timed |" in table


def test_one_seed_gives_no_verdict():
    from vt_edu.recorded import matched_summary

    record = _matched()
    record["rows"] = [r for r in record["rows"] if r["seed"] == 0]
    assert "from one seed: no seed spread yet, so no verdict" in matched_summary(record)
    assert "Not recorded yet: students' CNN (seed 1), students' ViT (seeds 0, 1), ResNet-18 (seed 1)," in \
        matched_summary(record)
    assert "| ResNet-18 | fast, clip_norm=5 | 20 | 1 | 84.00 | 35.0 | 1.00±0.00x |" in matched_table(record)
