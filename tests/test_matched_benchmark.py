"""benchmarks/matched_benchmark.py: the runs it configures, the record it keeps across
invocations, and the whole script on a tiny data set (training, read-back, the side-by-side timing)."""

from __future__ import annotations

import json

import pytest

from script_loader import load_script

bench = load_script("benchmarks/matched_benchmark.py")


def test_matched_models_share_recipe_epochs_and_batch_and_the_students_train_as_they_did():
    args = bench.parse_args(["--epochs", "20"])
    configs = {name: bench.run_config(name, 1, args, fast_paths=False) for name in bench.MODELS}
    matched = [configs[name] for name in bench.MATCHED]
    assert {(c.recipe.name, c.recipe.clip_norm, c.epochs, c.batch_size, c.seed) for c in matched} == {("fast", 5.0, 20, 128, 1)}
    assert configs["resnet18"].width == configs["vt_resnet18"].width == 0.25 and configs["vit"].width is None
    students = configs["students-cnn"]
    assert (students.recipe.name, students.epochs, students.batch_size, students.width) == ("seed", 10, 256, None)


def test_every_vt_resnet_names_its_token_attention():
    # A name must keep meaning the same model when a library default changes.
    assert bench.MODELS["vt_resnet18"][1] == {"cosine_attention": True}


def test_a_new_run_replaces_only_its_own_model_and_seed(tmp_path):
    row = lambda model, seed, top1: {"model": model, "seed": seed, "top1": top1}  # noqa: E731
    bench.store_row(tmp_path, row("vt_resnet18", 0, 0.80))
    bench.store_row(tmp_path, row("resnet18", 1, 0.81))
    bench.store_row(tmp_path, row("resnet18", 0, 0.82))
    record = bench.store_row(tmp_path, row("vt_resnet18", 0, 0.85))
    assert [(r["model"], r["seed"], r["top1"]) for r in record["rows"]] == [
        ("resnet18", 0, 0.82), ("resnet18", 1, 0.81), ("vt_resnet18", 0, 0.85)]
    # A finished run read back by another command keeps the command that trained it.
    bench.store_row(tmp_path, row("resnet18", 1, 0.81) | {"command": "train it"})
    record = bench.store_row(tmp_path, row("resnet18", 1, 0.81) | {"command": "read it", "trained_now": False})
    assert [r["command"] for r in record["rows"] if r["seed"] == 1] == ["train it"]
    assert all("trained_now" not in r for r in record["rows"])
    assert json.loads((tmp_path / "matched.json").read_text()) == record
    assert not list(tmp_path.glob("*.tmp"))


def test_unknown_models_are_refused(capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(["--models", "resnet18,resnet50"])
    assert "unknown model(s) resnet50" in capsys.readouterr().err


def test_the_whole_script_on_a_tiny_data_set(tiny_cifar, tmp_path, capsys):
    source, _ = tiny_cifar.image_folder(per_class=(4, 2))  # 40 training, 20 test images
    out = tmp_path / "matched"
    argv = ["--data", str(source), "--out", str(out), "--models", "resnet18,vt_resnet18", "--seeds", "0",
            "--epochs", "1", "--batch-size", "8", "--width", "0.125"]
    assert bench.main(argv) == 0
    record = json.loads((out / "matched.json").read_text())
    assert [(r["model"], r["seed"], r["epochs_completed"]) for r in record["rows"]] == [
        ("resnet18", 0, 1), ("vt_resnet18", 0, 1)]
    row = record["rows"][1]
    assert row["options"] == {"cosine_attention": True} and row["recipe_changes"] == {"clip_norm": 5.0}
    assert 0 <= row["top1"] <= 1 and 0 <= row["top1_flip_tta"] <= 1 and row["test_images"] == 20
    assert {"date", "backend", "hardware", "versions", "git_commit"} <= set(row["provenance"])
    assert (out / "runs" / "vt_resnet18-s0" / "history.csv").is_file()
    # Run again: the finished runs are read back, not trained again, and give the same rows.
    assert bench.main(argv) == 0
    again = json.loads((out / "matched.json").read_text())
    assert [r["top1"] for r in again["rows"]] == [r["top1"] for r in record["rows"]]
    assert [r["provenance"]["date"] for r in again["rows"]] == [r["provenance"]["date"] for r in record["rows"]]
    # The side-by-side timing joins the same record, ResNet-18 the reference.
    assert bench.main(argv + ["--speed", "--speed-rounds", "2", "--speed-steps", "1"]) == 0
    record = json.loads((out / "matched.json").read_text())
    assert record["speed"]["reference"] == "resnet18" and len(record["rows"]) == 2
    import keras

    if keras.backend.backend() != "torch":  # the PyTorch twins are timed on the PyTorch backend only
        assert "keras_to_twin" not in record["speed"]
    assert len(record["speed"]["ratio_to_first"]["vt_resnet18"]["values"]) == 2
    report = (out / "benchmark.md").read_text()
    assert "| VT-ResNet-18 | fast, clip_norm=5 | 1 | 1 |" in report
    assert "times its time per image" in report and "from one seed: no seed spread yet" in report


def test_the_speed_report_gives_every_ratio_with_its_rounds():
    r = lambda *v: {"values": list(v), "mean": sum(v) / len(v), "min": min(v), "max": max(v)}  # noqa: E731
    speed = {"reference": "resnet18", "torch_fast_paths": True, "rounds": 2, "steps": 10, "batch_size": 128,
             "command": "python benchmarks/matched_benchmark.py --speed",
             "provenance": {"date": "2026-12-03", "backend": "torch", "hardware": {"cpu": "Test CPU", "cpu_cores": 2}},
             "ratio_to_first": {"vt_resnet18": r(0.9, 1.0)},
             "keras_to_twin": {"resnet18": r(0.6, 0.7), "vt_resnet18": r(0.85, 0.95)}}
    text = "\n".join(bench.speed_lines(speed))
    assert "| vt_resnet18 | 0.950 (0.900 to 1.000) |" in text
    assert "over its plain-PyTorch twin: resnet18 0.650 (0.600 to 0.700); vt_resnet18 0.900 (0.850 to 0.950)." in text
    assert "without the fast paths" not in text  # not measured: not claimed
    assert bench.speed_lines(None) == []


def test_the_readme_states_the_recorded_matched_experiment():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    record = json.loads((root / "results" / "matched" / "matched.json").read_text())
    readme = " ".join((root / "README.md").read_text().split())
    # Regenerate with `python benchmarks/matched_benchmark.py --report` after recording.
    assert bench.readme_paragraph(record) in readme
