"""Every panel displays as its widget with the installed ipywidgets, 7.7 (what Colab
ships) or 8: the CI's Colab step runs this file again with ipywidgets==7.7.1.

A panel is shown by ``display(panel)`` or as a cell's last value; both go through
IPython's display formatter, which is what is called here, in an IPython shell
without a kernel (the widget-view output is published, not rendered).
"""

from __future__ import annotations

import ipywidgets
import numpy as np
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.display import display
from IPython.utils.capture import capture_output

from vt_edu.explorer import TokenExplorer
from vt_edu.scene_explorer import SceneTokenExplorer
from vt_edu.widgets import ExperimentPanel, SchedulePanel

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _token_explorer():
    rng = np.random.default_rng(0)
    count, height, width, tokens = 2, 2, 2, 3
    attention = rng.dirichlet(np.ones(height * width), size=(count, tokens)).transpose(0, 2, 1)
    mixing = rng.dirichlet(np.ones(tokens), size=(count, tokens))
    maps = {"feature_map": np.zeros((count, height, width, 4)), "logits": rng.normal(size=(count, 2)),
            "modules": [{"tokenizer": attention, "transformer": mixing}]}
    images = rng.integers(0, 256, size=(count, 8, 8, 3), dtype=np.uint8)
    return TokenExplorer(images, np.array([0, 1]), maps, ["a", "b"])


def _scene_token_explorer():
    rng = np.random.default_rng(0)
    scenes = rng.integers(0, 256, size=(2, 8, 8, 3), dtype=np.uint8)
    masks = np.zeros((2, 8, 8), np.uint8)
    masks[:, 2:6, 2:6] = 1
    attention = rng.dirichlet(np.ones(4), size=(2, 3)).transpose(0, 2, 1)  # 2x2 positions, 3 tokens
    return SceneTokenExplorer(scenes, masks, [{"tokenizer": attention, "projector": attention}], ["a"])


PANELS = {
    "SchedulePanel": lambda tmp_path: SchedulePanel(),
    "ExperimentPanel": lambda tmp_path: ExperimentPanel(run_root=tmp_path),
    "TokenExplorer": lambda tmp_path: _token_explorer(),
    "SceneTokenExplorer": lambda tmp_path: _scene_token_explorer(),
}


@pytest.mark.parametrize("name", sorted(PANELS))
def test_a_panel_displays_as_its_widget(name, tmp_path):
    InteractiveShell.instance()  # display() publishes only through a shell
    panel = PANELS[name](tmp_path)
    with capture_output() as captured:
        display(panel)
    bundles = [output.data for output in captured.outputs]
    views = [bundle[WIDGET_VIEW] for bundle in bundles if WIDGET_VIEW in bundle]
    assert [view["model_id"] for view in views] == [panel.widget.model_id], (
        f"ipywidgets {ipywidgets.__version__}: {name} displayed {bundles}; stderr: {captured.stderr}"
    )
