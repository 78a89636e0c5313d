"""The recorded benchmarks (``results/cpu-benchmark``, ``results/scenes``) read back for the chapters.

The files the chapters read also travel with the package, in ``vt_edu/results``
(:func:`packaged_files` says which; ``python -m vt_edu.recorded`` copies them there,
and a test checks that the copy equals ``results/``), so that a chapter shows the same
recorded numbers in a checkout and in Colab, where only the installed package exists.

``benchmarks/cpu_benchmark.py`` writes one JSON file per part (``cnn``, ``vt``,
``target``, ``ablations``, ``backends``), each with its settings, provenance and
result. The chapters show these numbers and state what they say; the sentences are
built here from the files, so a re-recorded benchmark rewrites them and the text can
never disagree with the table beside it.

``benchmarks/matched_benchmark.py`` writes ``results/matched/matched.json``, the matched
experiment of chapter 10 (:func:`matched_results`, :func:`matched_table`,
:func:`matched_summary`): one row per model and seed, each with its own provenance.

``benchmarks/token_attention_benchmark.py`` writes ``results/token-attention``
(:func:`token_attention_summary`; chapter 11).

``benchmarks/scenes_benchmark.py`` writes ``results/scenes`` the same way, with the parts
:data:`SCENE_PARTS` (:func:`load_scenes_benchmark`, :func:`scenes_summary`; chapters 13
and 14). Its part files give every seed's value and, for every difference, its values per
seed with their min and max (``{"values", "mean", "min", "max"}``).
"""

from __future__ import annotations

import json
from pathlib import Path

from vt_edu.names import DEFAULT_NUM_TOKENS
from vt_edu.training.speed import spread  # the one definition of a spread over seeds or rounds

__all__ = ["BENCHMARKS", "MATCHED_LABELS", "MATCHED_SEEDS", "MATCHED_TARGET_TOP1", "PACKAGED_RESULTS", "PACKAGED_WEIGHTS_LIMIT", "PARTS", "SCENE_PARTS",
           "STUDENTS", "ablation_verdicts", "compare_seeds", "copy_to_package", "find_results", "load_benchmark",
           "load_scenes_benchmark", "matched_results", "matched_summary", "matched_table", "packaged_files",
           "recorded_vt_fpn", "run_history", "scenes_summary", "spread", "token_attention_summary"]

PARTS = ("cnn", "vt", "target", "ablations", "backends")
SCENE_PARTS = ("segmentation", "classification", "tokens")
ATTENTION_PARTS = ("token_attention",)
MATCHED_PARTS = ("matched",)
#: The token attention benchmark's name for the default setting of VT-ResNet's transformer.
BASELINE_SETTING = "stable"
#: Each recorded benchmark's folder under ``results/`` and its part files.
BENCHMARKS = {"cpu-benchmark": PARTS, "scenes": SCENE_PARTS, "token-attention": ATTENTION_PARTS,
              "matched": MATCHED_PARTS}
#: The token part's trained VT-FPNs travel with the package only up to this size (bytes).
PACKAGED_WEIGHTS_LIMIT = 1_000_000
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


def packaged_files(results_dir, name: str | None = None) -> list:
    """The files of ``results_dir`` that travel with the package: each benchmark's part
    files, the ``.json``/``.csv`` files of every run folder they name, and the
    ``model.keras`` of each run the scenes' token part analysed, if it is at most
    :data:`PACKAGED_WEIGHTS_LIMIT` bytes.

    Args:
        name: one benchmark of :data:`BENCHMARKS` (default: all of them).

    Returns:
        Sorted paths relative to ``results_dir`` (``[]`` when nothing is recorded).
    """
    results_dir = Path(results_dir)
    files = set()
    for benchmark, parts in BENCHMARKS.items():
        if name is not None and benchmark != name:
            continue
        for part_name in parts:
            path = results_dir / benchmark / f"{part_name}.json"
            if not path.is_file():
                continue
            files.add(path.relative_to(results_dir))
            record = json.loads(path.read_text())
            for run_dir in _run_dirs(record):
                # run_dir is relative to the repository root, the parent of results/.
                folder = results_dir.parent / run_dir
                files.update(p.relative_to(results_dir) for p in folder.glob("*") if p.suffix in (".json", ".csv"))
                weights = folder / "model.keras"
                if part_name == "tokens" and weights.is_file() and weights.stat().st_size <= PACKAGED_WEIGHTS_LIMIT:
                    files.add(weights.relative_to(results_dir))
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
    """The part files of ``<results_dir>/<name>`` (a benchmark of :data:`BENCHMARKS`) as
    ``{part: record}`` (``{}`` if none)."""
    folder = Path(results_dir) / name if results_dir is not None else None
    if folder is None or not folder.is_dir():
        return {}
    parts = {}
    for part in BENCHMARKS[name]:
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


# ------------------------------------------------------------------ results/scenes
def load_scenes_benchmark(results_dir) -> dict:
    """The scenes benchmark's part files (:data:`SCENE_PARTS`) as ``{part: record}`` (``{}`` if none)."""
    return load_benchmark(results_dir, "scenes")


def recorded_vt_fpn(results_dir, parts: dict, seed: int | None = None):
    """The ``model.keras`` of a VT-FPN that the token part analysed (its first seed unless
    ``seed`` is given), or None where it is not recorded (weights over
    :data:`PACKAGED_WEIGHTS_LIMIT` do not travel with the package)."""
    if "tokens" not in parts or results_dir is None:
        return None
    for entry in parts["tokens"]["result"]["seeds"]:
        if seed is None or entry["seed"] == seed:
            path = Path(results_dir).parent / entry["run_dir"] / "model.keras"
            return path if path.is_file() else None
    return None


def _seeds(s, scale: float = 100.0, digits: int = 2, unit: str = "", over: str = "seeds") -> str:
    """A spread over seeds (or over the ``rounds`` of a side-by-side timing) as
    ``mean (min to max over n seeds)``, or the one value when there is one."""
    if len(s["values"]) == 1:
        return f"{scale * s['mean']:.{digits}f}{unit}"
    return (f"{scale * s['mean']:.{digits}f}{unit} ({scale * s['min']:.{digits}f} to "
            f"{scale * s['max']:.{digits}f}{unit} over {len(s['values'])} {over})")


def _points(d) -> str:
    """A difference of two models in points, with its per-seed range."""
    diff = d["difference"]
    if len(diff["values"]) == 1:
        return f"{100 * diff['mean']:+.2f} points"
    return f"{100 * diff['mean']:+.2f} points ({100 * diff['min']:+.2f} to {100 * diff['max']:+.2f} per seed)"


def _speed_sentence(result, b_label: str, a_label: str) -> str:
    alternating = result["alternating_speed"]["ratio_b_to_a"]
    return (f"{b_label} trains at {_seeds(alternating, 1, 2, over='rounds')} times {a_label}'s images/s measured "
            "side by side (alternating rounds of training steps; in the whole runs "
            f"{_seeds(result['images_per_second_ratio_runs'], 1, 2)})")


def _fresh_sentence(level_summary) -> str:
    """The trained ratio against an untrained VT-FPN's (same options and seed): random
    tokenizer filters already favour objects, so only the distance from it is training's."""
    fresh, change = level_summary["fresh"]["foreground_ratio"], level_summary["ratio_trained_to_fresh"]
    if change["min"] > 1.01:
        verdict = "training raised it"
    elif change["max"] < 0.99:
        verdict = "training lowered it"
    else:
        verdict = "training did not move it consistently (within 1 % or the seeds disagree)"
    return (f"An untrained VT-FPN of the same options and seed scores {_seeds(fresh, 1, 2)} times the "
            f"uniform share; the trained ratio is {_seeds(change, 1, 3)} times the untrained one, so {verdict}.")


def scenes_summary(parts: dict) -> str:
    """What the recorded scenes benchmark says, in numbers from its files: FPN vs VT-FPN,
    ResNet-18 vs VT-ResNet-18 on 64x64 scenes, and the trained VT-FPN's tokens (against a
    uniform token's share and, where recorded, an untrained VT-FPN's).

    Returns:
        Markdown: a paragraph per comparison, then one bullet per FPN level for the tokens.
    """
    if not parts:
        return ("No scenes benchmark is recorded in this copy of the book, so there are no full-scale numbers to "
                "compare.")
    text = []  # sentences of one paragraph; a finished paragraph goes to `paragraphs`
    paragraphs = []
    hardware = next(iter(parts.values()))["provenance"]["hardware"]
    device = hardware.get("gpu") or f"a {hardware.get('cpu_cores')}-core {hardware.get('cpu')} CPU"
    first = next(iter(parts.values()))["result"]
    if "scenes" in first:
        sc = first["scenes"]
        text.append(f"Recorded on {device} with {sc['num_train']:,} training and {sc['num_test']:,} test scenes of "
                    f"{sc['canvas_size']}x{sc['canvas_size']} pixels.")
    else:
        text.append(f"Recorded on {device}.")
    if "segmentation" in parts:
        r = parts["segmentation"]["result"]
        miou = r["differences"]["mean_iou"]  # a: the FPN, b: the VT-FPN
        macs = r["vt_fpn_to_fpn_macs"]
        text.append(
            f"At width {r['width']:g} after {r['epochs']} epochs with the same recipe, the FPN reached a mean IoU of "
            f"{_seeds(miou['a'], unit=' %')} and the VT-FPN {_seeds(miou['b'], unit=' %')}: "
            f"{_points(miou)} (pixel accuracy {_points(r['differences']['pixel_accuracy'])})."
        )
        text.append(
            f"The VT-FPN's FPN module needs {macs['fpn_module']:.2f} times the FPN's MACs "
            f"({r['macs']['vt_fpn']['fpn_module'] / 1e6:.1f} M against {r['macs']['fpn']['fpn_module'] / 1e6:.1f} M; "
            f"the whole model {macs['total']:.2f} times), and the "
            + _speed_sentence(r, "VT-FPN", "the FPN") + "."
        )
    paragraphs.append(" ".join(text))
    text = []
    if "classification" in parts:
        r = parts["classification"]["result"]
        top1 = r["differences"]["top1"]
        mac_ratio = r["vt_to_resnet_macs"]
        time_ratio = r["vt_to_resnet_seconds_per_image_alternating"]
        saving = mac_ratio < 1
        shows = time_ratio["max"] < 1 if saving else time_ratio["min"] > 1
        side = r["scenes"]["canvas_size"] // 4  # the VT modules read stage 3 of a CIFAR ResNet: stride 4
        text.append(
            f"Classifying the same scenes (label: the class covering the most pixels; VT modules on a {side}x{side} "
            f"map, {side * side} positions for {DEFAULT_NUM_TOKENS} tokens), ResNet-18 reached "
            f"{_seeds(top1['a'], unit=' %')} and VT-ResNet-18 {_seeds(top1['b'], unit=' %')}: {_points(top1)}, with "
            f"{mac_ratio:.2f} times the MACs and {_seeds(time_ratio, 1, 2, over='rounds')} times the training time "
            "per image (side by side)."
        )
        verb = "a saving" if saving else "an extra cost"
        text.append(
            f"The MACs promise {verb} of {100 * abs(1 - mac_ratio):.0f} %; on this CPU the clock "
            + ("shows it in every round of the side-by-side timing." if shows
               else "does not show it consistently (the side-by-side rounds disagree or go the other way).")
        )
    paragraphs.append(" ".join(text))
    text = []
    if "tokens" in parts:
        t = parts["tokens"]["result"]
        for level, s in t["summary"].items():
            ratio = s["foreground_ratio"]
            fresh = s.get("fresh")  # files recorded before the untrained baseline lack it
            text.append(
                f"Level {level}: the trained VT-FPN's tokens put {_seeds(s['foreground_share'], unit=' %')} of their "
                f"attention on object pixels, which cover {_seeds(s['uniform_share'], unit=' %')} of a scene: "
                f"{_seeds(ratio, 1, 2)} times a uniform token's share ({100 * (ratio['mean'] - 1):+.1f} %; the paper "
                f"reports {100 * (t['paper_foreground_ratio'] - 1):+.1f} %)."
                + (" " + _fresh_sentence(s) if fresh else "")
                + f" A token reads about {_seeds(s['effective_input_pixels_per_token'], 1, 0)} input pixels, and its "
                f"centre of attention moves {_seeds(s['tracking_slope'], 1, 2)} times as far as an object that is "
                "moved" + (f" (untrained: {_seeds(fresh['tracking_slope'], 1, 2)})." if fresh else ".")
            )
    if text:  # one bullet per level: a paragraph of four levels' numbers is unreadable
        paragraphs.append("The trained VT-FPN's tokens, level by level:\n\n" + "\n".join(f"- {s}" for s in text))
    return "\n\n".join(p for p in paragraphs if p)


# ------------------------------------------------------------ results/token-attention
def _listens(rows, which: str, module: int) -> dict:
    """Effective number of tokens of ``module`` over the rows (seeds), as a :func:`spread`."""
    return spread(r[which][module]["effective_tokens"] for r in rows)


def _range(s, scale: float = 1.0, digits: int = 1) -> str:
    """``mean±h``, ``h`` half the range (max - min) over the seeds: a spread short enough for
    a table cell on a phone (with two seeds, exactly the interval from min to max)."""
    return f"{scale * s['mean']:.{digits}f}±{scale * (s['max'] - s['min']) / 2:.{digits}f}"


def token_attention_summary(parts: dict) -> str:
    """What ``results/token-attention`` says: for every candidate setting of VT-ResNet's token
    transformer, top-1 and how many tokens a token listens to, trained and untrained, then
    the default the benchmark's rule picks and whether ``vt_edu`` uses it.

    Returns:
        Markdown: a paragraph, a table, a paragraph.
    """
    if "token_attention" not in parts:
        return "The token attention benchmark is not recorded in this copy of the book."
    from vt_edu.models import MODELS

    record = parts["token_attention"]
    r, choice = record["result"], record["result"]["choice"]
    hardware = record["provenance"]["hardware"]
    lines = [f"Recorded on {hardware['cpu']} ({hardware['cpu_cores']} cores): VT-ResNet-18 at width {r['width']:g} "
             f"with the {r['recipe']} recipe for {r['epochs']} epochs on {r['train_images']:,} training images, "
             f"top-1 on {r['test_images']:,} test images, the attention measured on {r['analysis_images']:,} of them, "
             f"seeds {', '.join(map(str, r['seeds']))}. In the table, a token *listens to* the effective number of "
             "tokens of its row of the transformer's attention (16 = uniform), after training and before it (the same "
             "model untrained); values are the mean ± half the range over the seeds.", "",
             "| setting, module | top-1 % | after training | before training |", "|---|---:|---:|---:|"]
    verdicts = []
    for name in r["candidates"]:
        rows = [x for x in r["rows"] if x["candidate"] == name and not x["diverged"]]
        if not rows:
            lines.append(f"| `{name}` | diverged | | |")
            continue
        modules = range(len(rows[0]["trained"]))
        for m in modules:  # a row per module: a column per module does not fit a phone
            top1 = _range(choice["summary"][name]["top1"], 100) if m == 0 else ""
            lines.append(f"| `{name}`, {m + 1} | {top1} | {_range(_listens(rows, 'trained', m))} | "
                         f"{_range(_listens(rows, 'fresh', m))} |")
        summary = choice["summary"][name]  # module means, over the seeds: the benchmark's own
        verdicts.append((name, summary["effective_tokens"]["mean"], summary["fresh_effective_tokens"]["mean"]))
    flattened = [n for n, t, f in verdicts if t > f + 0.5]
    sharpened = [n for n, t, f in verdicts if t < f - 0.5]
    text = []
    if flattened:
        text.append(f"Training made the attention more uniform with {', '.join(f'`{n}`' for n in flattened)}")
    if sharpened:
        text.append(f"sharper with {', '.join(f'`{n}`' for n in sharpened)}")
    paragraph = ("; ".join(text) + " (module mean, seeds averaged, a change of more than half a token). ") if text else ""
    pick = choice["default"]
    defaults = MODELS["vt_resnet18"].defaults
    built = [n for n in r["candidates"] if all(defaults.get(k) == v for k, v in r["options"][n].items())]
    margin = choice.get("learned_margin")
    rule = (f"The rule fixed before the runs keeps a setting with no diverged seed and a top-1 at most the seed "
            f"spread ({100 * choice['seed_noise_top1']:.1f} points) below `{BASELINE_SETTING}`'s, and among those "
            f"whose trained tokens listen, in every seed, to at most {choice['learned_fraction']:.0%} of the tokens"
            + (f" and to at least {margin:g} fewer than the same model untrained" if margin else "")
            + " takes the least uniform. ")
    if not choice["attention_learned"]:
        rule += f"No setting passed, so the default stays `{BASELINE_SETTING}`."
    else:
        rule += f"Passed: {', '.join(f'`{n}`' for n in choice['attention_learned'])}; the rule picks `{pick}`."
    rule += (f" `vt_edu` builds `{pick}` by default." if built == [pick] else
             f" `vt_edu` builds {f'`{built[0]}`' if built else 'none of these settings'} by default, not `{pick}`.")
    paragraph += rule
    options = "; ".join(f"`{n}`: " + (", ".join(f"{k}={v}" for k, v in r["options"][n].items()) or "no options, the defaults when recorded")
                        for n in r["candidates"])
    return "\n".join(lines) + f"\n\nOptions of `vt_resnet18`: {options}.\n\n" + paragraph


# ------------------------------------------------------------------ results/matched
#: VT-ResNet-18's target in the matched experiment: plain top-1 on every seed, within its epochs.
MATCHED_TARGET_TOP1 = 0.85
#: The seeds every model of the matched experiment trains with.
MATCHED_SEEDS = (0, 1)
#: The matched experiment's models as chapter 10 names them, in its order.
MATCHED_LABELS = {"students-cnn": "students' CNN", "students-vit": "students' ViT", "resnet18": MODEL_NAMES["resnet18"],
                  "vt_resnet18": MODEL_NAMES["vt_resnet18"], "vit": "ViT (the book's)"}


def matched_results(record) -> dict:
    """The matched experiment (``results/matched/matched.json``) per model, seeds gathered.

    Returns:
        ``{model: {"label", "rows", "seeds", "recipe", "epochs", "top1", "top1_flip_tta", "top5",
        "params", "macs", "time_per_image"}}`` in :data:`MATCHED_LABELS` order; accuracies are
        :func:`spread` over the seeds; ``time_per_image`` is the model's training time per image
        over ResNet-18's, per round of the side-by-side timing (None where it was not timed).
    """
    speed = (record.get("speed") or {}).get("ratio_to_first", {})
    reference = (record.get("speed") or {}).get("reference")
    out = {}
    for model in sorted({r["model"] for r in record["rows"]},
                        key=lambda m: list(MATCHED_LABELS).index(m) if m in MATCHED_LABELS else len(MATCHED_LABELS)):
        rows = sorted((r for r in record["rows"] if r["model"] == model), key=lambda r: r["seed"])
        first = rows[0]
        recipe = first["recipe"] + "".join(f", {k}={v:g}" for k, v in first["recipe_changes"].items())
        if model == reference:
            time_per_image = spread([1.0])
        elif model in speed:
            time_per_image = spread(1 / v for v in speed[model]["values"])
        else:
            time_per_image = None
        out[model] = {"label": MATCHED_LABELS.get(model, model), "rows": rows, "seeds": [r["seed"] for r in rows],
                      "recipe": recipe, "epochs": first["epochs_completed"], "matched": first["matched"],
                      "top1": spread(r["top1"] for r in rows), "top1_flip_tta": spread(r["top1_flip_tta"] for r in rows),
                      "top5": spread(r["top5"] for r in rows), "params": first["params"], "macs": first["macs"],
                      "time_per_image": time_per_image}
    return out


def matched_table(record) -> str:
    """The matched experiment as one Markdown table: a row per model, accuracies over its seeds."""
    lines = ["| model | recipe | epochs | seeds | top-1 % | M MACs | time per image |", "|---|---|---:|---:|---:|---:|---:|"]
    for m in matched_results(record).values():
        time_per_image = _range(m["time_per_image"], 1, 2) + "x" if m["time_per_image"] else "not timed"
        top1 = _range(m["top1"], 100, 2) if len(m["seeds"]) > 1 else f"{100 * m['top1']['mean']:.2f}"
        lines.append(f"| {m['label']} | {m['recipe']} | {m['epochs']} | {len(m['seeds'])} | {top1} | "
                     f"{m['macs'] / 1e6:.1f} | {time_per_image} |")
    return "\n".join(lines)


def compare_seeds(a: dict, b: dict) -> dict:
    """``b - a`` in top-1 for two :func:`matched_results` entries: per seed both ran, the mean,
    the seed spread (the larger of the two models' max - min over their seeds) and whether the
    difference exceeds it (``distinguishable``; False with a single seed, which has no spread)."""
    seeds = [s for s in a["seeds"] if s in b["seeds"]]
    top1 = lambda m, s: next(r["top1"] for r in m["rows"] if r["seed"] == s)  # noqa: E731
    difference = spread(top1(b, s) - top1(a, s) for s in seeds) if seeds else spread(
        [b["top1"]["mean"] - a["top1"]["mean"]])
    noise = max(m["top1"]["max"] - m["top1"]["min"] for m in (a, b))
    several = min(len(a["seeds"]), len(b["seeds"])) > 1
    return {"difference": difference, "seed_spread": noise, "seeds": seeds,
            "distinguishable": several and abs(difference["mean"]) > noise}


def _versus(a: dict, b: dict) -> str:
    """A sentence part: b's top-1 difference to a's with the seed spread, and the verdict."""
    c = compare_seeds(a, b)
    d = c["difference"]
    per_seed = ", ".join(f"{100 * v:+.2f}" for v in d["values"])
    text = f"{100 * d['mean']:+.2f} points against {a['label']} (per seed: {per_seed})"
    if min(len(a["seeds"]), len(b["seeds"])) < 2:
        return text + ", from one seed: no seed spread yet, so no verdict"
    text += f", seed spread {100 * c['seed_spread']:.2f} points: "
    if not c["distinguishable"]:
        return text + "not distinguishable"
    return text + ("better" if d["mean"] > 0 else "worse") + " by more than the spread"


def matched_summary(record) -> str:
    """What the matched experiment says, in numbers from its file: the VT-ResNet target, VT-ResNet
    against ResNet-18 (accuracy with the seed spread, MACs, time per image measured side by side),
    the students' models against what they reported, the patch-token ViT, and what is not recorded yet.

    Returns:
        Markdown: a bulleted list.
    """
    results = matched_results(record)
    said = []
    vt, rn = results.get("vt_resnet18"), results.get("resnet18")
    if vt:
        target = MATCHED_TARGET_TOP1
        missed = [r["seed"] for r in vt["rows"] if r["top1"] < target]
        said.append(f"VT-ResNet-18 reached {_seeds(vt['top1'], unit=' %')} plain top-1 after {vt['epochs']} epochs: the "
                    f"{100 * target:.0f} % target is " + (f"met on every seed ({len(vt['seeds'])})" if not missed else
                                                         f"missed on seed{'s' * (len(missed) > 1)} "
                                                         f"{', '.join(map(str, missed))}")
                    + f". With flip test-time augmentation: {_seeds(vt['top1_flip_tta'], unit=' %')}.")
    if vt and rn:
        text = f"VT-ResNet-18 with the same recipe and epochs as ResNet-18: {_versus(rn, vt)}."
        text += (f" It has {vt['params'] / rn['params']:.2f} times ResNet-18's parameters and "
                 f"{vt['macs'] / rn['macs']:.2f} times its MACs")
        if vt["time_per_image"] and rn["time_per_image"]:
            text += (f", and trains at {_seeds(vt['time_per_image'], 1, 2, over='rounds')} times its time per image "
                     "(the two timed in alternation in one process)")
        said.append(text + ".")
    for model, key in (("students-cnn", "cnn"), ("students-vit", "vit")):
        if model in results:
            m = results[model]
            said.append(f"The {m['label']}, trained as the students did ({m['recipe']}, {m['epochs']} epochs): "
                        f"{_seeds(m['top1'], unit=' %')} against the {_pct(STUDENTS[key])} they reported "
                        f"({100 * (m['top1']['mean'] - STUDENTS[key]):+.2f} points).")
    if "vit" in results and vt:
        said.append(f"The book's ViT with the matched recipe and epochs: {_seeds(results['vit']['top1'], unit=' %')}, "
                    f"{_versus(vt, results['vit'])}.")
    missing = []
    for model, label in MATCHED_LABELS.items():
        seeds = [s for s in MATCHED_SEEDS if model not in results or s not in results[model]["seeds"]]
        if seeds:
            missing.append(f"{label} (seed{'s' * (len(seeds) > 1)} {', '.join(map(str, seeds))})")
    if missing:
        said.append(f"Not recorded yet: {', '.join(missing)}.")
    return "\n".join(f"* {s}" for s in said) if said else "The matched experiment is not recorded in this copy of the book."


if __name__ == "__main__":  # python -m vt_edu.recorded: after re-recording the benchmark
    _source = Path(__file__).resolve().parents[1] / "results"
    print(f"copied {len(copy_to_package(_source))} files from {_source} to {PACKAGED_RESULTS}")
