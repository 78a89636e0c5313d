"""The recorded benchmark (``results/cpu-benchmark``) read back for the chapters.

The files the chapters read also travel with the package, in ``vt_edu/results``
(:func:`packaged_files` says which; ``python -m vt_edu.recorded`` copies them there,
and a test checks that the copy equals ``results/``), so that a chapter shows the same
recorded numbers in a checkout and in Colab, where only the installed package exists.

``benchmarks/cpu_benchmark.py`` writes one JSON file per part (``cnn``, ``vt``,
``target``, ``ablations``, ``backends``), each with its settings, provenance and
result. The chapters show these numbers and state what they say; the sentences are
built here from the files, so a re-recorded benchmark rewrites them and the text can
never disagree with the table beside it.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["PACKAGED_RESULTS", "PARTS", "STUDENTS", "ablation_verdicts", "copy_to_package", "find_results",
           "load_benchmark", "packaged_files", "run_history", "summary"]

PARTS = ("cnn", "vt", "target", "ablations", "backends")
# What the students reported after 10 epochs of their recipe (Adam 1e-3, batch 256).
STUDENTS = {"cnn": 0.6937, "vit": 0.7045}
MODEL_NAMES = {"cnn": "the students' CNN", "resnet18": "ResNet-18", "vt_resnet18": "VT-ResNet-18", "vit": "ViT"}
# The copy of the recorded files inside the package. It is laid out like ``results/``
# and sits one level below the package's folder as ``results/`` sits below the
# repository root, so run folders recorded as ``results/...`` resolve in both.
PACKAGED_RESULTS = Path(__file__).resolve().parent / "results"


def find_results(start=None) -> Path | None:
    """The repository's ``results/`` folder: in ``start`` (default: the working folder),
    one of its parents, or beside the installed package; else the copy inside the
    package (:data:`PACKAGED_RESULTS`); None if there is none."""
    here = Path(start or Path.cwd()).resolve()
    package_root = Path(__file__).resolve().parents[1]
    for folder in (here / "results", *(p / "results" for p in here.parents), package_root / "results",
                   PACKAGED_RESULTS):
        if folder.is_dir():
            return folder
    return None


def _run_dirs(value):
    """Every ``run_dir`` string anywhere in a part record."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "run_dir" and isinstance(item, str):
                yield item
            else:
                yield from _run_dirs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _run_dirs(item)


def packaged_files(results_dir, name: str = "cpu-benchmark") -> list:
    """The files of ``results_dir`` that travel with the package: the benchmark's part
    files and the ``.json``/``.csv`` files of every run folder they name.

    Returns:
        Sorted paths relative to ``results_dir`` (``[]`` when nothing is recorded).
    """
    results_dir = Path(results_dir)
    files = set()
    for part_name in PARTS:
        path = results_dir / name / f"{part_name}.json"
        if not path.is_file():
            continue
        files.add(path.relative_to(results_dir))
        for run_dir in _run_dirs(json.loads(path.read_text())):
            # run_dir is relative to the repository root, the parent of results/.
            folder = results_dir.parent / run_dir
            files.update(p.relative_to(results_dir) for p in folder.glob("*") if p.suffix in (".json", ".csv"))
    return sorted(files)


def copy_to_package(results_dir) -> list:
    """Replace :data:`PACKAGED_RESULTS` by a copy of :func:`packaged_files` of ``results_dir``.

    Returns:
        The copied paths, relative to ``results_dir``.
    """
    import shutil

    files = packaged_files(results_dir)
    for name in {path.parts[0] for path in files}:
        shutil.rmtree(PACKAGED_RESULTS / name, ignore_errors=True)
    for path in files:
        (PACKAGED_RESULTS / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(results_dir) / path, PACKAGED_RESULTS / path)
    return files


def load_benchmark(results_dir, name: str = "cpu-benchmark") -> dict:
    """The part files of ``<results_dir>/<name>`` as ``{part: record}`` (``{}`` if none)."""
    folder = Path(results_dir) / name if results_dir is not None else None
    if folder is None or not folder.is_dir():
        return {}
    parts = {}
    for part in PARTS:
        path = folder / f"{part}.json"
        if path.is_file():
            record = json.loads(path.read_text())
            record["folder"] = str(folder)
            parts[part] = record
    return parts


def run_history(results_dir, run_dir) -> list:
    """Rows of a recorded run's ``history.csv``; ``run_dir`` as the benchmark recorded it,
    relative to the repository root (the parent of ``results/``)."""
    from vt_edu.training.loop import read_history

    return read_history(Path(results_dir).parent / run_dir / "history.csv")


def _pct(x) -> str:
    return f"{100 * x:.2f} %"


def ablation_verdicts(ablations: dict) -> list:
    """One sentence per ablation variant: its difference to the paper's configuration,
    compared with the seed noise measured in the same run, and the paper's direction."""
    rows = {r["variant"]: r for r in ablations["rows"]}
    base = rows.get("paper")
    if base is None:
        return []
    noise = ablations["seed_noise_top1"]
    # The direction the paper reports on ImageNet (Wu et al., Section 5): a change that
    # removes a part of VT costs accuracy; more tokens than 16 help little.
    expected = {"filter-only": "lower", "pooling": "lower", "no-projector": "lower", "tokens-4": "lower",
                "tokens-64": "about the same"}
    sentences = []
    for key, expectation in expected.items():
        if key not in rows:
            continue
        diff = rows[key]["top1"] - base["top1"]
        if abs(diff) <= noise:
            seen = "within the seed noise"
            agrees = expectation == "about the same"
        else:
            seen = "lower" if diff < 0 else "higher"
            agrees = seen == expectation
        epochs = rows[key]["epochs_completed"], base["epochs_completed"]
        confound = (f" It trained {epochs[0]} epochs against the baseline's {epochs[1]} in the same time, so the "
                    "difference mixes the change with the epochs." if epochs[0] != epochs[1] else "")
        sentences.append(
            f"{rows[key]['label']}: {_pct(rows[key]['top1'])}, {100 * diff:+.2f} points against the paper's "
            f"configuration ({seen}; the paper's direction: {expectation}; "
            f"{'consistent' if agrees else 'not reproduced here'}).{confound}"
        )
    return sentences


def summary(parts: dict) -> str:
    """What the recorded benchmark says about the students' CNN, ResNet-18,
    VT-ResNet-18 and ViT on CIFAR-10, in numbers from its files."""
    if not parts:
        return "No benchmark is recorded in this copy of the book, so there are no full-scale numbers to compare."
    text = []
    hardware = next(iter(parts.values()))["provenance"]["hardware"]
    device = hardware.get("gpu") or f"a {hardware.get('cpu_cores')}-core {hardware.get('cpu')} CPU"
    text.append(f"Recorded on {device} with CIFAR-10's 50,000 training and 10,000 test images.")
    if "cnn" in parts:
        c = parts["cnn"]["result"]
        text.append(
            f"The students' CNN with their recipe reached {_pct(c['top1'])} after {c['epochs_completed']} epochs "
            f"(they reported {_pct(c['students_top1'])}: {100 * c['difference_to_students']:+.2f} points) "
            f"in {c['train_seconds'] / 60:.1f} minutes, with {c['macs'] / 1e6:.1f} M MACs per image."
        )
    if "vt" in parts:
        v = parts["vt"]["result"]
        by_model = {r["model"]: r for r in v["rows"]}
        listed = ", ".join(
            f"{MODEL_NAMES.get(m, m)} {_pct(r['top1'])} ({r['epochs_completed']} epochs, {r['macs'] / 1e6:.1f} M MACs, "
            f"{r['images_per_second']:.0f} images/s)" for m, r in by_model.items()
        )
        text.append(f"With the same recipe and {v['minutes']:g} minutes of training each: {listed}.")
        if "vt_resnet18" in by_model and "resnet18" in by_model:
            vt, rn = by_model["vt_resnet18"], by_model["resnet18"]
            text.append(
                f"At width {v['width']:g}, VT-ResNet-18 scored {100 * (vt['top1'] - rn['top1']):+.2f} points against "
                f"ResNet-18 with {v['vt_to_resnet_macs']:.2f} times its MACs and {v['vt_to_resnet_seconds_per_image']:.2f} "
                "times its training time per image."
            )
            if v["vt_to_resnet_macs"] >= 1:
                text.append(
                    "The paper's saving does not appear on 32x32 images: ResNet's last stage there already works on a "
                    "4x4 map (16 positions, as many as the 16 tokens), unlike the 7x7 to 14x14 maps of ImageNet."
                )
        if "vit" in by_model:
            vit = by_model["vit"]
            text.append(
                f"The ViT reached {_pct(vit['top1'])} in that time (the students reported {_pct(STUDENTS['vit'])} after "
                f"10 epochs of their recipe), with {vit['macs'] / 1e6:.1f} M MACs per image."
            )
    if "target" in parts:
        t = parts["target"]["result"]
        # Older part files name no recipe; the benchmark's default then was `fast`, unchanged.
        recipe = f"the `{t.get('recipe', 'fast')}` recipe" + (
            f" with {', '.join(t['recipe_changes'])}" if t.get("recipe_changes") else "")
        text.append(
            f"Given {t['target_minutes']:g} minutes, VT-ResNet-18 at width {parts['target']['settings']['width']:g} "
            f"trained with {recipe} reached {_pct(t['top1'])} ({t['epochs_completed']} epochs, "
            f"{t['train_seconds'] / 60:.1f} minutes of training): the {100 * t['target_top1']:.0f} % target was "
            f"{'reached' if t['reached'] else 'missed'}"
            + (f" (by time: {t['train_seconds']:.2f} s of training is past the {t['target_minutes']:g}-minute budget)."
               if not t["reached"] and t["top1"] >= t["target_top1"] else ".")
        )
        if "host_images_per_second" in t:  # part files before the probe have none
            text.append(
                f"Before that run the machine trained this model at {t['host_images_per_second']:.0f} images/s "
                "(machines of the same name here have ranged from about 150 to 380 images/s from day to day, "
                "and the epochs that fit in an hour with them)."
            )
        if "host_images_per_second_fast_paths" in t:
            text.append(
                f"The run trained with the PyTorch fast paths of `vt_edu.torch_fast_paths` (fused BatchNorm, no "
                f"copies of convolution inputs), at {t['host_images_per_second_fast_paths']:.0f} images/s in the same "
                f"probe and {t['images_per_second']:.0f} images/s over the run."
            )
        if "top1_flip_tta" in t:
            text.append(
                f"Classifying each test image and its mirror image and averaging the two predictions (flip "
                f"test-time augmentation, no extra training) gives {_pct(t['top1_flip_tta'])}."
            )
    return " ".join(text)


if __name__ == "__main__":  # python -m vt_edu.recorded: after re-recording the benchmark
    _source = Path(__file__).resolve().parents[1] / "results"
    print(f"copied {len(copy_to_package(_source))} files from {_source} to {PACKAGED_RESULTS}")
