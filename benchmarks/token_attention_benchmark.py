"""Benchmark of issue 14, "let the token attention learn" (a script, not a test).

Chapter 11 found the token-token attention of the trained demo VT-ResNet-18 uniform: every
token listens to all 16 with weight 1/16. This script trains VT-ResNet-18 with each
candidate setting of the token transformer (:data:`CANDIDATES`), the same width, recipe,
data and epochs, seeds interleaved (every candidate of seed 0, then of seed 1, ...), and
measures on the same test images, after training and for the same model untrained:

* ``effective_tokens``: the effective number of tokens a token listens to, ``e^H`` of each
  row of the transformer's ``L x L`` attention (:func:`vt_edu.analysis.effective_count`),
  mean over tokens and images; ``L`` = uniform, 1 = one partner;
* ``self_weight``: the weight a token puts on itself (uniform: ``1/L``);
* ``effective_pixels``: median effective number of pixels a token reads (tokenizer);
* ``projector_largest``: median over pixels of the largest projector weight (module 1);
* ``logit_scale`` of the cosine candidate.

Choice of the default (fixed before the recorded runs): a candidate qualifies if no seed
diverged and its mean top-1 is not below ``stable``'s (the book's first default) by more than
the seed spread (the largest max - min of any candidate). Its attention counts as learned
if in every seed, after training, a token listens to at most :data:`LEARNED_FRACTION` of
the ``L`` tokens (mean ``effective_tokens`` over the modules) *and* to at least
:data:`LEARNED_MARGIN` tokens fewer than the same model untrained: attention that stays
near ``L`` only adds the mean token (chapter 11), and attention that was sharp at the start
and that training flattened was not learned. Among the qualified candidates whose
attention learned, the least uniform becomes the default; if there is none the default
stays.

Writes ``<out>/token_attention.json`` (settings, rows, choice, provenance as the other
benchmarks) and ``<out>/benchmark.md``. Run folders under ``<out>/runs`` resume when the
same command is run again.

Smoke test (a minute)::

    .venv/bin/python benchmarks/token_attention_benchmark.py --quick --out /tmp/attention-smoke
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from vt_edu.recorded import spread

#: name -> (vt_resnet18 options, what it changes). Every option that tells the candidates
#: apart is spelled out, so a name means the same model whatever the library's defaults are.
CANDIDATES = {
    "stable": ({"init": "stable", "cosine_attention": False},
               "K, Q at 0.1 x Glorot, plain dot-product logits (the book's first default)"),
    "paper-init": ({"init": "paper", "cosine_attention": False}, "plain Glorot start of every matrix (no identity residual branches)"),
    "scaled": ({"scale_attention": True, "cosine_attention": False}, "logits / sqrt(C_T), as the standard transformer"),
    "pre-norm": ({"transformer_norm": "pre", "cosine_attention": False}, "LayerNorm before attention and feed-forward"),
    "cosine": ({"init": "stable", "cosine_attention": True}, "learned scale x cosine logits (Swin V2)"),
}
BASELINE = "stable"
#: Attention counts as learned when a token listens to at most this fraction of the L tokens.
LEARNED_FRACTION = 0.9
#: ... and, in every seed, at least this many tokens fewer than the same model untrained.
LEARNED_MARGIN = 1.0
QUICK = {"train_images": 256, "test_images": 128, "epochs": 1, "batch_size": 32, "analysis_images": 64}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="See the module docstring for the choice rule and the smoke-test command.")
    p.add_argument("--out", default="results/token-attention", help="output folder (default: results/token-attention).")
    p.add_argument("--data", default=None, help="CIFAR-10 source; default: VT_EDU_DATA, else the download.")
    p.add_argument("--candidates", default=",".join(CANDIDATES), help="which candidates (default: all).")
    p.add_argument("--width", type=float, default=0.25, help="width of every model (default 0.25).")
    p.add_argument("--recipe", default="fast", help="training recipe (default: fast).")
    p.add_argument("--epochs", type=int, default=8, help="epochs of every run (default 8).")
    p.add_argument("--batch-size", type=int, default=None, help="batch size (default: the recipe's).")
    p.add_argument("--train-images", type=int, default=10000, help="training images (default 10000).")
    p.add_argument("--test-images", type=int, default=2000, help="test images (default 2000).")
    p.add_argument("--analysis-images", type=int, default=1000, help="test images for the attention statistics.")
    p.add_argument("--seeds", default="0,1", help="seeds, comma-separated (default 0,1).")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: {', '.join(f'{k}={v}' for k, v in QUICK.items())}.")
    args = p.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    args.seed_list = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.candidate_list = [c.strip() for c in args.candidates.split(",") if c.strip()]
    unknown = [c for c in args.candidate_list if c not in CANDIDATES]
    if unknown:
        p.error(f"unknown candidate(s) {', '.join(unknown)}; choose from {', '.join(CANDIDATES)}")
    if BASELINE not in args.candidate_list:
        p.error(f"the candidates must include {BASELINE!r}, the default every other is compared with")
    return args


def attention_statistics(model, images) -> list:
    """Per VT module: the statistics of the module docstring on ``images``."""
    import numpy as np

    from vt_edu import analysis
    from vt_edu.models.attention import vt_resnet_attention, vt_modules

    maps = vt_resnet_attention(model, images)
    stats = []
    for module, parts in zip(maps["modules"], vt_modules(model)):
        mixing = module["transformer"]  # (B, L, L)
        row = {"effective_tokens": float(analysis.effective_count(mixing, axis=-1).mean()),
               "self_weight": float(np.diagonal(mixing, axis1=1, axis2=2).mean()),
               "tokens": int(mixing.shape[-1]),
               "effective_pixels": float(np.median(analysis.effective_count(module["tokenizer"], axis=1))),
               "pixels": int(module["tokenizer"].shape[1])}
        if "projector" in module:
            row["projector_largest"] = float(np.median(module["projector"].max(axis=-1)))
        scale = parts.transformer.logit_scale()
        if scale is not None:
            row["logit_scale"] = [float(s) for s in np.asarray(scale)]
        stats.append(row)
    return stats


def run_candidate(name, seed, args, out, data, images) -> dict:
    import keras

    import vt_edu.models  # noqa: F401 - registers the layers that model.keras names
    from vt_edu.training import RunConfig, TrainingError, train
    from vt_edu.training.run_folder import RunFolder

    options, _ = CANDIDATES[name]
    run_dir = out / "runs" / f"{name}-s{seed}"
    config = RunConfig("vt_resnet18", "cifar10", recipe=args.recipe, epochs=args.epochs, batch_size=args.batch_size,
                       seed=seed, width=args.width, model_options=options or None,
                       max_train_images=args.train_images, max_test_images=args.test_images, given_data=True)
    row = {"candidate": name, "seed": seed, "run_dir": str(run_dir)}
    try:
        metrics = train(config, data=data, run_dir=run_dir, verbose=0).metrics
    except TrainingError as error:
        return row | {"diverged": True, "error": str(error)}
    row |= {"diverged": False, "top1": metrics["top1"], "best_top1": metrics["best_top1"],
            "test_loss": metrics["test_loss"], "images_per_second": metrics["images_per_second"],
            "epochs": metrics["epochs_completed"]}
    trained = keras.models.load_model(run_dir / "model.keras", compile=False)
    row["trained"] = attention_statistics(trained, images)
    row["fresh"] = attention_statistics(RunFolder(run_dir).untrained_model(), images)
    return row


def mean_tokens(row, which: str) -> float:
    """Effective number of tokens of a run, mean over its modules; ``which``: trained or fresh."""
    return statistics.fmean(m["effective_tokens"] for m in row[which])


def choose(rows, candidates) -> dict:
    """The rule of the module docstring, on the finished rows."""
    by = {c: [r for r in rows if r["candidate"] == c] for c in candidates}
    summary = {}
    for c, rs in by.items():
        ok = [r for r in rs if not r["diverged"]]
        s = {"diverged_seeds": [r["seed"] for r in rs if r["diverged"]]}
        if ok:
            s["top1"] = spread(r["top1"] for r in ok)
            s["effective_tokens"] = spread(mean_tokens(r, "trained") for r in ok)
            s["fresh_effective_tokens"] = spread(mean_tokens(r, "fresh") for r in ok)
            s["learned"] = len(ok) == len(rs) and all(
                mean_tokens(r, "trained") <= LEARNED_FRACTION * r["trained"][0]["tokens"]
                and mean_tokens(r, "trained") <= mean_tokens(r, "fresh") - LEARNED_MARGIN for r in ok)
        summary[c] = s
    base = summary[BASELINE]
    noise = max(s["top1"]["max"] - s["top1"]["min"] for s in summary.values() if "top1" in s)
    qualified = [c for c, s in summary.items()
                 if not s["diverged_seeds"] and "top1" in s and s["top1"]["mean"] >= base["top1"]["mean"] - noise]
    learners = [c for c in qualified if summary[c]["learned"]]
    winner = min(learners, key=lambda c: summary[c]["effective_tokens"]["mean"]) if learners else BASELINE
    return {"summary": summary, "seed_noise_top1": noise, "qualified": qualified, "attention_learned": learners,
            "learned_fraction": LEARNED_FRACTION, "learned_margin": LEARNED_MARGIN,
            "default": winner}


def write_markdown(out, record):
    r = record["result"]
    p = record["provenance"]
    hw = p["hardware"]
    s = r["choice"]["summary"]
    lines = ["# Token attention benchmark", "",
             "Written by `benchmarks/token_attention_benchmark.py`. VT-ResNet-18, width "
             f"{r['width']:g}, recipe {r['recipe']}, {r['epochs']} epochs on {r['train_images']:,} training images, "
             f"top-1 on {r['test_images']:,} test images, attention statistics on {r['analysis_images']:,} of them; "
             f"seeds {', '.join(map(str, r['seeds']))}. Values: mean (min to max) over the seeds.", "",
             f"_{p['date']}, {hw['cpu']} ({hw['cpu_cores']} cores), Keras backend {p['backend']}, commit "
             f"{p['git_commit']}; `{record['command']}`_", "",
             "| candidate | what it changes | diverged | top-1 | effective tokens (of 16), trained | untrained |",
             "|---|---|---|---:|---:|---:|"]
    for c in r["candidates"]:
        v = s[c]
        f = (lambda x, k=1, d=2: f"{k * x['mean']:.{d}f} ({k * x['min']:.{d}f} to {k * x['max']:.{d}f})")
        lines.append(f"| {c} | {CANDIDATES[c][1]} | {', '.join(map(str, v['diverged_seeds'])) or 'no'} | "
                     + (f"{f(v['top1'], 100)} % | {f(v['effective_tokens'])} | {f(v['fresh_effective_tokens'])} |"
                        if "top1" in v else "- | - | - |"))
    ch = r["choice"]
    lines += ["", f"Seed spread of top-1: {100 * ch['seed_noise_top1']:.2f} points. Qualified (no divergence, top-1 "
              f"within the spread of `{BASELINE}`): {', '.join(ch['qualified']) or 'none'}. Attention learned (a token "
              f"listens to at most {LEARNED_FRACTION:.0%} of the tokens after training and to at least "
              f"{LEARNED_MARGIN:g} fewer than untrained, every seed): "
              f"{', '.join(ch['attention_learned']) or 'none'}. Default by the rule: "
              f"**{ch['default']}**.", ""]
    (out / "benchmark.md").write_text("\n".join(lines) + "\n")


def main(argv=None):
    args = parse_args(argv)
    from vt_edu.data import channel_stats, load_cifar, normalize
    from vt_edu.training.provenance import provenance
    from vt_edu.training.recipes import RecipeError, get_recipe

    try:
        get_recipe(args.recipe)
    except RecipeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # Every run gets the same arrays; its RunConfig draws the class-balanced subsets
    # (the same for every candidate of a seed).
    data = load_cifar("cifar10", source=args.data)
    (x_train, _), (x_test, _), _ = data
    mean, std = channel_stats(x_train)
    images = normalize(x_test[: args.analysis_images], mean, std)
    rows = []
    total = len(args.seed_list) * len(args.candidate_list)
    for seed in args.seed_list:
        for name in args.candidate_list:
            t0 = time.perf_counter()
            row = run_candidate(name, seed, args, out, data, images)
            rows.append(row)
            said = ("DIVERGED: " + row["error"] if row["diverged"] else
                    f"top-1 {100 * row['top1']:.2f} %, effective tokens "
                    + ", ".join(f"m{i} {m['effective_tokens']:.2f} (untrained {f['effective_tokens']:.2f})"
                                for i, (m, f) in enumerate(zip(row["trained"], row["fresh"]), start=1)))
            print(f"[{len(rows)}/{total}] {name} seed {seed}: {said} ({time.perf_counter() - t0:.0f} s)", flush=True)
    result = {"model": "vt_resnet18", "width": args.width, "recipe": args.recipe, "epochs": args.epochs,
              "train_images": args.train_images, "test_images": args.test_images,
              "analysis_images": len(images), "seeds": args.seed_list, "candidates": args.candidate_list,
              "options": {c: CANDIDATES[c][0] for c in args.candidate_list}, "rows": rows,
              "choice": choose(rows, args.candidate_list)}
    settings = {k: v for k, v in vars(args).items() if k not in ("seed_list", "candidate_list")}
    record = {"part": "token_attention", "command": " ".join([Path(sys.executable).name, *sys.argv]),
              "settings": settings, "provenance": provenance(), "result": result}
    (out / "token_attention.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    write_markdown(out, record)
    print(f"Written: {out / 'token_attention.json'}, {out / 'benchmark.md'}; default by the rule: "
          f"{result['choice']['default']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
