"""The numbers book/intro.md states are the ones the book's code holds (issue 19)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from vt_edu.flops import PAPER_TABLE2

BOOK = Path(__file__).resolve().parents[1] / "book"
INTRO = (BOOK / "intro.md").read_text()


def _one(pattern: str) -> re.Match:
    text = " ".join(INTRO.split())  # the sentence may be wrapped anywhere
    found = re.findall(pattern, text)
    assert len(found) == 1, f"intro.md should state this once: {pattern!r}; found {found}"
    return re.search(pattern, text)


def test_intro_quotes_table_2_as_chapter_8_holds_it():
    match = _one(r"VT-ResNet-18 (\d+\.\d+) G multiply-accumulates against (\d+\.\d+) G for ResNet-18")
    vt, resnet = (float(g) for g in match.groups())
    assert vt == round(PAPER_TABLE2["vt_resnet18"]["macs"] / 1e9, 2)
    assert resnet == round(PAPER_TABLE2["resnet18"]["macs"] / 1e9, 2)
    assert vt < resnet  # "fewer operations"


def test_intro_quotes_the_students_results_as_chapter_10_plots_them():
    match = _one(r"a ViT, reached (\d+\.\d+) % on CIFAR-10 after 10 epochs against (\d+\.\d+) % for their CNN")
    vit, cnn = (float(g) / 100 for g in match.groups())
    chapter_10 = "\n".join(c.source for c in nbformat.read(BOOK / "10_experiment.ipynb", as_version=4).cells)
    assert f"\"students' ViT, 10 epochs\": {vit:.4f}" in chapter_10
    assert f"\"students' CNN, 10 epochs\": {cnn:.4f}" in chapter_10


def test_intro_promises_no_equal_budget_that_chapter_10_does_not_set():
    # Chapter 10 trains its four models with the same data, recipe and epochs, not the same time budget.
    assert "same budget" not in " ".join(INTRO.split())
    _one(r"trained with the same data, recipe and epochs")
