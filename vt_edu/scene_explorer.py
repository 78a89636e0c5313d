"""``SceneTokenExplorer``: step through scenes, FPN levels and tokens of a trained VT-FPN.

Chapter 14 asks whether visual tokens follow objects. One panel, four pictures of the
same (scene, level, token):

1. the scene with its objects' boxes;
2. its true mask, one colour per class, with a legend of the classes present;
3. where the token reads from: its tokenizer attention (a distribution over the level's
   ``H x W`` positions) upsampled over the scene, with the boxes, and how much of it
   falls on each class;
4. the projector's pixel-to-token map (the token each position reads most from), with
   the token's positions outlined.

The attention maps are given per FPN level (the ``attention`` argument), as a list of
dicts, or a dict whose ``"levels"`` entry is that list::

    [{"size": (H, W),                 # the level's grid (optional when square)
      "tokenizer": (B, H*W, L),       # each token's attention over the positions (columns sum to 1)
      "projector": (B, H*W, L),       # each position's attention over the tokens (optional)
      "name": "stride 4"},            # a label (optional; default "H x W")
     ...]

Like :class:`vt_edu.explorer.TokenExplorer`, it is a plain object: :meth:`set` and
:meth:`figure` work without a browser (tests, static pages), and the controls are live
in Jupyter or Colab.
"""

from __future__ import annotations

import math

import ipywidgets as widgets
import numpy as np

from vt_edu.analysis import effective_count, pixel_assignment, token_maps, upsample
from vt_edu.explorer import ExplorerPanel, problem_html, selection_problem
from vt_edu.names import SCENE_BACKGROUND
from vt_edu.widgets.panel import LIVE_NOTE, new_figure

__all__ = ["SceneTokenExplorer", "attention_levels", "class_colors"]

BACKGROUND_COLOR = (0.82, 0.82, 0.82)


def class_colors(num_classes: int) -> np.ndarray:
    """RGB colours ``(num_classes, 3)`` of mask values: grey for the background (0), then
    ``tab10`` (``tab20`` beyond 10 object classes, repeating past 20)."""
    from matplotlib import colormaps

    objects = num_classes - 1
    palette = colormaps["tab10" if objects <= 10 else "tab20"].colors
    return np.array([BACKGROUND_COLOR, *(palette[k % len(palette)] for k in range(objects))])[:num_classes]


def attention_levels(attention, count: int | None = None) -> list:
    """The per-level attention maps as a list of ``{"name", "size", "tokenizer", "projector"}``
    (``projector`` ``None`` where a level has none), checked.

    Args:
        attention: a list of level dicts, or a dict with a ``"levels"`` list (see the module doc)
            or, as :func:`vt_edu.models.vt_fpn_attention` returns it, a ``{level name: level dict}`` mapping.
        count: the number of scenes the maps must cover (``None``: not checked).

    Raises:
        ValueError: no levels, a missing tokenizer, shapes that disagree with each other,
            with ``size`` or with ``count``.
    """
    levels = attention.get("levels") if isinstance(attention, dict) else attention
    if isinstance(levels, dict):  # vt_fpn_attention's form: {level name: level dict}, finest first
        levels = [{"name": name, **level} for name, level in levels.items()]
    if not isinstance(levels, (list, tuple)) or not levels:
        raise ValueError("attention must be a non-empty list of per-level dicts {'size', 'tokenizer', 'projector'} "
                         f"or a dict with such a list under 'levels'; got {type(attention).__name__}.")
    checked = []
    for k, level in enumerate(levels):
        where = f"attention level {k}"
        if not isinstance(level, dict) or "tokenizer" not in level:
            raise ValueError(f"{where} must be a dict with a 'tokenizer' map (B, H*W, L).")
        tokenizer = np.asarray(level["tokenizer"], np.float64)
        if tokenizer.ndim != 3:
            raise ValueError(f"{where}: the tokenizer attention must be (B, H*W, L), got shape {tokenizer.shape}.")
        batch, positions, _ = tokenizer.shape
        size = level.get("size")
        if size is None:
            side = math.isqrt(positions)
            if side * side != positions:
                raise ValueError(f"{where} has {positions} positions, not a square grid: give its 'size' (H, W).")
            size = (side, side)
        height, width = (int(d) for d in size)
        if height * width != positions:
            raise ValueError(f"{where} is {height}x{width} but its tokenizer attention has {positions} positions.")
        projector = level.get("projector")
        if projector is not None:
            projector = np.asarray(projector, np.float64)
            if projector.shape != tokenizer.shape:
                raise ValueError(f"{where}: the projector attention {projector.shape} must have the tokenizer's "
                                 f"shape {tokenizer.shape} (B, H*W, L).")
        if count is not None and batch != count:
            raise ValueError(f"{where} holds maps of {batch} scenes for {count} scenes.")
        checked.append({"name": str(level.get("name") or f"{height}x{width}"), "size": (height, width),
                        "tokenizer": tokenizer, "projector": projector})
    return checked


def _boxes_from_masks(masks) -> tuple:
    """One box per class present in each mask (when the scenes' own boxes are not given)."""
    count = len(masks)
    classes = [np.unique(m[m > 0]) for m in masks]
    most = max((len(c) for c in classes), default=0)
    boxes = np.full((count, most, 4), -1, np.int32)
    object_classes = np.full((count, most), -1, np.int32)
    for i, present in enumerate(classes):
        for j, value in enumerate(present):
            rows, cols = np.nonzero(masks[i] == value)
            boxes[i, j] = rows.min(), cols.min(), rows.max() + 1, cols.max() + 1
            object_classes[i, j] = value - 1
    return boxes, object_classes


class SceneTokenExplorer(ExplorerPanel):
    """Controls (scene, level, token) and a four-panel figure of where that token reads in the scene.

    Args:
        scenes: uint8 scenes ``(N, S, S, 3)`` the maps were computed on.
        masks: their true masks ``(N, S, S)``: 0 background, ``c + 1`` object class ``c``.
        attention: the per-level maps (see the module doc) of these scenes.
        class_names: the object class names (CIFAR's), or the segmentation class names
            that start with ``"background"``.
        boxes: the objects' boxes ``(N, M, 4)`` as (top, left, bottom, right), exclusive,
            ``-1`` where there is no object (a :class:`~vt_edu.data.SceneSet`'s); default:
            one box around each class of the mask.
        object_classes: the boxes' object classes ``(N, M)`` (``-1``: none); needed with ``boxes``.
        scene, level, token: the initial selection (from 0).

    Attributes:
        scene, level, token: the controls (ipywidgets).
        message: the last problem with a requested selection, or ``""``.
        widget: the whole panel (a ``VBox``).

    Raises:
        ValueError: shapes that do not fit together (before anything is drawn).
    """

    def __init__(self, scenes, masks, attention, class_names, boxes=None, object_classes=None,
                 scene: int = 0, level: int = 0, token: int = 0):
        self.scenes = np.asarray(scenes)
        self.masks = np.asarray(masks)
        if self.scenes.ndim != 4 or self.scenes.shape[1] != self.scenes.shape[2]:
            raise ValueError(f"scenes must be square images (N, S, S, 3), got shape {self.scenes.shape}.")
        count, size = self.scenes.shape[:2]
        if self.masks.shape != self.scenes.shape[:3]:
            raise ValueError(f"masks must be (N, S, S) = {self.scenes.shape[:3]} like the scenes, got {self.masks.shape}.")
        names = list(class_names)
        self.class_names = names if names[:1] == [SCENE_BACKGROUND] else [SCENE_BACKGROUND, *names]
        if self.masks.size and (self.masks.min() < 0 or self.masks.max() >= len(self.class_names)):
            raise ValueError(f"masks hold values {self.masks.min()}..{self.masks.max()}, outside 0.."
                             f"{len(self.class_names) - 1} (background and {len(self.class_names) - 1} classes).")
        self.levels = attention_levels(attention, count)
        for found in self.levels:
            height, width = found["size"]
            if size % height or size % width or size // height != size // width:
                raise ValueError(f"level {found['name']}: its {height}x{width} grid does not tile the {size}x{size} "
                                 "scenes (the attention is upsampled by one whole factor on both axes).")
        if boxes is None:
            if object_classes is not None:
                raise ValueError("object_classes need their boxes.")
            boxes, object_classes = _boxes_from_masks(self.masks)
        elif object_classes is None:
            raise ValueError("boxes need their object_classes (N, M).")
        self.boxes, self.object_classes = np.asarray(boxes), np.asarray(object_classes)
        if self.boxes.shape[:1] != (count,) or self.boxes.shape[2:] != (4,) or self.object_classes.shape != self.boxes.shape[:2]:
            raise ValueError(f"boxes must be (N, M, 4) and object_classes (N, M) for N={count} scenes, got "
                             f"{self.boxes.shape} and {self.object_classes.shape}.")
        self.colors = class_colors(len(self.class_names))

        style = {"description_width": "initial"}
        self.scene = widgets.IntSlider(0, 0, count - 1, description="scene", continuous_update=False, style=style)
        self.level = widgets.Dropdown(options=[(f"{k}: {lv['name']}", k) for k, lv in enumerate(self.levels)], value=0,
                                      description="FPN level", style=style)
        self.token = widgets.IntSlider(0, 0, self._num_tokens(0) - 1, description="token", continuous_update=False,
                                       style=style)
        self.info = widgets.HTML()
        self.output = widgets.Output()
        self.widget = widgets.VBox([
            widgets.HBox([self.scene, self.level, self.token]),
            self.info,
            self.output,
            widgets.HTML(f"<small>{LIVE_NOTE}</small>"),
        ])
        self.message = ""
        self._holding = False
        for control in (self.scene, self.level, self.token):
            control.observe(self._on_change, names="value")
        self.set(scene=scene, level=level, token=token)
        if self.message:
            raise ValueError(f"the initial selection: {self.message}")

    @classmethod
    def from_scene_set(cls, scene_set, attention, class_names, **selection) -> "SceneTokenExplorer":
        """The explorer of a :class:`~vt_edu.data.SceneSet` (its scenes, masks, boxes and object classes)."""
        return cls(scene_set.scenes, scene_set.masks, attention, class_names, boxes=scene_set.boxes,
                   object_classes=scene_set.object_classes, **selection)

    def _num_tokens(self, level: int) -> int:
        return self.levels[level]["tokenizer"].shape[2]

    # -- state
    def set(self, scene: int | None = None, level: int | None = None, token: int | None = None) -> None:
        """Select a scene, level and/or token and redraw; an invalid value leaves the
        selection as it was and says why in the panel (:attr:`message`)."""
        problem = selection_problem([("scene", scene, 0, len(self.scenes) - 1), ("level", level, 0, len(self.levels) - 1)])
        if not problem:
            tokens = self._num_tokens(self.level.value if level is None else int(level))
            if token is None and self.token.value >= tokens:  # the new level has fewer tokens
                token = 0
            problem = selection_problem([("token", token, 0, tokens - 1)])
        self.message = problem
        if problem:
            self.info.value = problem_html(problem)
            return
        self._holding = True  # one redraw for the whole selection, not one per control
        try:
            self.token.max = tokens - 1
            for control, value in ((self.scene, scene), (self.level, level), (self.token, token)):
                if value is not None:
                    control.value = int(value)
        finally:
            self._holding = False
        self.redraw()

    def _on_change(self, change) -> None:
        if self._holding:
            return
        if change["owner"] is self.level:  # the levels may differ in L
            self.set(level=change["new"])
        else:
            self.redraw()

    # -- numbers
    def _selection(self):
        i, k, l = self.scene.value, self.level.value, self.token.value
        return i, k, l, self.levels[k]

    def _reads(self) -> np.ndarray:
        """The selected token's attention as an ``(H, W)`` map."""
        i, _, l, level = self._selection()
        return token_maps(level["tokenizer"][i], *level["size"])[l]

    def class_shares(self) -> dict:
        """How the selected token's attention splits over the classes of the scene's
        mask: ``{class name: share}``, largest first (shares sum to 1)."""
        i, _, _, level = self._selection()
        reads = self._reads()
        factor = self.scenes.shape[1] // level["size"][0], self.scenes.shape[2] // level["size"][1]
        # Each position's weight spread evenly over the scene pixels it covers.
        spread = np.repeat(np.repeat(reads, factor[0], axis=0), factor[1], axis=1) / (factor[0] * factor[1])
        total = spread.sum()
        shares = np.bincount(self.masks[i].ravel(), weights=spread.ravel(), minlength=len(self.class_names))
        if total > 0:
            shares = shares / total
        order = [c for c in np.argsort(-shares, kind="stable") if shares[c] > 0 or c in self.masks[i]]
        return {self.class_names[c]: float(shares[c]) for c in order}

    def describe(self) -> str:
        """The selection and its numbers, in one sentence."""
        i, k, l, level = self._selection()
        height, width = level["size"]
        shares = ", ".join(f"{share:.0%} on {name}" for name, share in self.class_shares().items())
        text = (f"Scene {i}, level {level['name']}, token {l}: reads about {effective_count(self._reads().ravel()):.1f} "
                f"of {height * width} positions; {shares}.")
        if level["projector"] is not None:
            owned = int((pixel_assignment(level["projector"][i:i + 1], height, width) == l).sum())
            text += f" The projector sends {owned} of {height * width} positions mostly to token {l}."
        return text

    # -- drawing
    def _draw_boxes(self, ax, i: int, labels: bool) -> None:
        import matplotlib.patches as patches

        for (top, left, bottom, right), c in zip(self.boxes[i], self.object_classes[i]):
            if c < 0:
                continue
            color = self.colors[c + 1]
            ax.add_patch(patches.Rectangle((left - 0.5, top - 0.5), right - left, bottom - top, fill=False,
                                           edgecolor=color, linewidth=1.5))
            if labels:
                ax.text(left - 0.5, top - 0.5, self.class_names[c + 1], color="white", fontsize=9, va="bottom",
                        bbox={"facecolor": color, "edgecolor": "none", "pad": 1})

    def figure(self):
        """The four-panel figure of the current selection (a matplotlib ``Figure``)."""
        import matplotlib.patches as patches
        from matplotlib import colormaps
        from matplotlib.colors import ListedColormap

        i, k, l, level = self._selection()
        scene, mask = self.scenes[i], self.masks[i]
        height, width = level["size"]
        factor = scene.shape[0] // height
        fig = new_figure((9, 8.6))  # 2x2: legible at the width of a book page, and on a phone
        axes = fig.subplots(2, 2).ravel()

        axes[0].imshow(scene)
        self._draw_boxes(axes[0], i, labels=True)
        axes[0].set_title(f"scene {i}", fontsize=10)

        axes[1].imshow(mask, cmap=ListedColormap(self.colors), vmin=-0.5, vmax=len(self.class_names) - 0.5,
                       interpolation="nearest")
        present = [c for c in range(len(self.class_names)) if (mask == c).any()]
        axes[1].legend(handles=[patches.Patch(color=self.colors[c], label=self.class_names[c]) for c in present],
                       loc="upper center", bbox_to_anchor=(0.5, -0.02), ncols=3, fontsize=10, frameon=False)
        axes[1].set_title("true mask", fontsize=10)

        reads = self._reads()
        axes[2].imshow(scene)
        shown = axes[2].imshow(upsample(reads, factor), cmap="inferno", alpha=0.65, vmin=0)
        self._draw_boxes(axes[2], i, labels=False)
        fig.colorbar(shown, ax=axes[2], shrink=0.8)
        name, share = next(iter(self.class_shares().items()))
        axes[2].set_title(f"level {level['name']}, token {l}: where it reads\n"
                          f"(about {effective_count(reads.ravel()):.1f} of {reads.size} positions; "
                          f"{share:.0%} on {name})", fontsize=10)

        if level["projector"] is not None:
            tokens = self._num_tokens(k)
            assignment = pixel_assignment(level["projector"][i:i + 1], height, width)[0]
            axes[3].imshow(scene)
            axes[3].imshow(upsample(assignment, factor), cmap=colormaps["tab20"].resampled(tokens),
                           vmin=-0.5, vmax=tokens - 0.5, alpha=0.6)
            mine = upsample(assignment == l, factor).astype(float)
            if mine.any() and not mine.all():
                axes[3].contour(mine, levels=[0.5], colors="white", linewidths=1.5)
            self._draw_boxes(axes[3], i, labels=False)
            axes[3].set_title(f"projector: token each position reads most\n"
                              f"(token {l}: {int((assignment == l).sum())} positions, outlined)", fontsize=10)
        else:
            axes[3].text(0.5, 0.5, f"level {level['name']} has no projector", ha="center", va="center", fontsize=10,
                         transform=axes[3].transAxes)
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
        return fig

