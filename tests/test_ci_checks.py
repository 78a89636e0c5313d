"""The checks of CI's Colab step (.ci/): what they accept and what they refuse."""

from __future__ import annotations

import json

from script_loader import load_script


def _load(name):
    return load_script(f".ci/{name}.py")


def test_installing_must_not_change_a_preinstalled_package(tmp_path, capsys):
    check = _load("check_preinstalled")
    pins = tmp_path / "pins.txt"
    pins.write_text("# Colab\nipywidgets==7.7.1\nKeras==3.13.2  # pinned\n")
    before = tmp_path / "before.txt"
    before.write_text("ipywidgets==7.7.1\nkeras==3.13.2\nrich==15.0.0\n")
    same = tmp_path / "same.txt"
    same.write_text(before.read_text() + "matplotlib==3.11.2\nvt-edu @ file:///repo\n")
    assert check.main(str(pins), str(before), str(same)) == 0
    # What ipywidgets>=8.1 in pyproject.toml did to Colab's widgets.
    upgraded = tmp_path / "upgraded.txt"
    upgraded.write_text("ipywidgets==8.1.9\nkeras==3.13.2\n")
    assert check.main(str(pins), str(before), str(upgraded)) == 1
    err = capsys.readouterr().err
    assert "ipywidgets: 7.7.1 before `pip install .`, 8.1.9 after" in err and "rich: 15.0.0 before" in err
    # A pin that was not installed as pinned is reported before anything is compared.
    assert check.main(str(pins), str(upgraded), str(upgraded)) == 1
    assert "ipywidgets: pinned 7.7.1, installed 8.1.9" in capsys.readouterr().err


def test_executed_chapters_must_show_the_recorded_results(tmp_path):
    check = _load("check_outputs")
    notebook = {"cells": [
        {"cell_type": "code", "source": ["print('No recorded run')"], "outputs": [
            {"output_type": "stream", "name": "stdout", "text": ["runs/cnn-seed/metrics.json: top-1 70 %\n"]},
            {"output_type": "display_data", "data": {"text/markdown": ["| Recorded on | x |"]}}]},
    ]}
    path = tmp_path / "chapter.ipynb"
    path.write_text(json.dumps(notebook))
    # Code is not output: the sentence in the source does not count.
    assert check.main(str(path), "cnn-seed/metrics.json", "Recorded on", "!No recorded") == 0
    assert check.main(str(path), "!metrics.json") == 1
    assert check.main(str(path), "Nothing like this") == 1
