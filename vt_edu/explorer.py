"""``TokenExplorer``: step through test images and tokens of a trained VT-ResNet.

One panel, four pictures of the same (image, token, module):

1. the image, its true class and the model's prediction;
2. where the token reads from: its tokenizer attention (a distribution over the
   ``H x W`` pixels), upsampled over the image;
3. the token-token attention of the module's transformer for this image (``L x L``,
   rows sum to 1), with the token's row marked;
4. the projector's pixel-to-token assignment (the token each pixel reads most from),
   with the token's pixels outlined; the last module has no projector.

Like the panels of :mod:`vt_edu.widgets`, it is a plain object: :meth:`set` and
:meth:`figure` work without a browser (tests, static pages), and the controls are live
in Jupyter or Colab.
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np

from vt_edu.analysis import effective_count, upsample
from vt_edu.reference import softmax
from vt_edu.widgets.panel import LIVE_NOTE, Panel, new_figure

__all__ = ["ExplorerPanel", "TokenExplorer", "problem_html", "selection_problem"]


def selection_problem(checks) -> str:
    """What is wrong with a requested selection, or ``""``.

    Args:
        checks: ``(name, value, low, high)`` tuples; ``value`` ``None`` means "unchanged",
            anything else must be a whole number (not a ``bool``) from ``low`` to ``high``.
    """
    for name, value, low, high in checks:
        if value is not None and (isinstance(value, bool) or not (isinstance(value, (int, np.integer)) and low <= value <= high)):
            return f"{name} must be a whole number from {low} to {high}, got {value!r}."
    return ""


def problem_html(message: str) -> str:
    """A problem as an explorer's info line shows it (red)."""
    return f"<span style='color:#b00'>{html.escape(message)}</span>"


class ExplorerPanel(Panel):
    """Base of the token explorers: a subclass sets ``info`` (an ``HTML`` widget) and
    ``message`` (a problem with the selection, or ``""``) and defines ``figure()`` and
    ``describe()``; :meth:`redraw` shows both."""

    def redraw(self) -> None:
        """Redraw the figure and the sentence under the controls (in a kernel)."""
        fig = self.figure()
        if not self.message:
            self.info.value = f"<small>{html.escape(self.describe())}</small>"
        self.show_figure(fig)


class TokenExplorer(ExplorerPanel):
    """Controls (image, token, module) and a four-panel figure of what that token does.

    Args:
        images: the uint8 images ``(B, H_img, W_img, 3)`` the maps were computed on.
        labels: their true classes ``(B,)``.
        maps: the dict of :func:`vt_edu.models.attention.vt_resnet_attention` for
            these images (``feature_map``, ``modules``, ``logits``).
        class_names: class names in label order.
        image, token, module: the initial selection (module counts from 1).

    Attributes:
        image, token, module: the controls (ipywidgets).
        message: the last problem with a requested selection, or ``""``.
        widget: the whole panel (a ``VBox``).
    """

    def __init__(self, images, labels, maps, class_names, image: int = 0, token: int = 0, module: int = 1):
        self.images = np.asarray(images)
        self.labels = np.asarray(labels)
        self.maps = maps
        self.class_names = list(class_names)
        self.modules = maps["modules"]
        count, hw, self.num_tokens = self.modules[0]["tokenizer"].shape
        self.height, self.width = maps["feature_map"].shape[1:3]
        if len(self.images) != count or len(self.labels) != count:
            raise ValueError(f"{len(self.images)} images and {len(self.labels)} labels for attention maps of {count} images.")
        if self.height * self.width != hw:
            raise ValueError(f"the feature map is {self.height}x{self.width} but the tokenizer attention has {hw} pixels.")
        self.probabilities = softmax(maps["logits"], axis=1)

        style = {"description_width": "initial"}
        self.image = widgets.IntSlider(0, 0, count - 1, description="test image", continuous_update=False, style=style)
        self.token = widgets.IntSlider(0, 0, self.num_tokens - 1, description="token", continuous_update=False, style=style)
        self.module = widgets.ToggleButtons(options=list(range(1, len(self.modules) + 1)), value=1,
                                            description="VT module", style=style)
        self.info = widgets.HTML()
        self.output = widgets.Output()
        self.widget = widgets.VBox([
            widgets.HBox([self.image, self.token]),
            self.module,
            self.info,
            self.output,
            widgets.HTML(f"<small>{LIVE_NOTE}</small>"),
        ])
        self.message = ""
        self._holding = False
        for control in (self.image, self.token, self.module):
            control.observe(self._on_change, names="value")
        self.set(image=image, token=token, module=module)

    # -- state
    def set(self, image: int | None = None, token: int | None = None, module: int | None = None) -> None:
        """Select an image, token and/or module and redraw; an invalid value leaves the
        selection as it was and says why in the panel (:attr:`message`)."""
        checks = (("image", image, 0, len(self.images) - 1), ("token", token, 0, self.num_tokens - 1),
                  ("module", module, 1, len(self.modules)))
        self.message = selection_problem(checks)
        if self.message:
            self.info.value = problem_html(self.message)
            return
        self._holding = True  # one redraw for the whole selection, not one per control
        try:
            for control, value in ((self.image, image), (self.token, token), (self.module, module)):
                if value is not None:
                    control.value = int(value)
        finally:
            self._holding = False
        self.redraw()

    def _on_change(self, change) -> None:
        if not self._holding:
            self.redraw()

    def describe(self) -> str:
        """The selection and its numbers, in one sentence."""
        i, l, m = self.image.value, self.token.value, self.module.value
        found = self.modules[m - 1]
        pixels = effective_count(found["tokenizer"][i, :, l])
        listens = effective_count(found["transformer"][i, l])
        predicted = int(self.probabilities[i].argmax())
        return (f"Test image {i} ({self.class_names[int(self.labels[i])]}, predicted "
                f"{self.class_names[predicted]} at {self.probabilities[i, predicted]:.0%}); module {m}, token {l}: "
                f"reads about {pixels:.1f} of {self.height * self.width} pixels and listens to about "
                f"{listens:.1f} of {self.num_tokens} tokens.")

    # -- drawing
    def figure(self):
        """The four-panel figure of the current selection (a matplotlib ``Figure``)."""
        import matplotlib.patches as patches
        from matplotlib import colormaps

        i, l, m = self.image.value, self.token.value, self.module.value
        found = self.modules[m - 1]
        image = self.images[i]
        factor = image.shape[0] // self.height
        fig = new_figure((13, 3.6))
        axes = fig.subplots(1, 4)
        true, predicted = int(self.labels[i]), int(self.probabilities[i].argmax())
        axes[0].imshow(image)
        axes[0].set_title(f"image {i}: {self.class_names[true]}\npredicted {self.class_names[predicted]} "
                          f"({self.probabilities[i, predicted]:.0%})", fontsize=9,
                          color="black" if true == predicted else "#b00")

        reads = found["tokenizer"][i, :, l].reshape(self.height, self.width)
        axes[1].imshow(image)
        shown = axes[1].imshow(upsample(reads, factor), cmap="inferno", alpha=0.65, vmin=0)
        fig.colorbar(shown, ax=axes[1], shrink=0.8)
        axes[1].set_title(f"module {m}, token {l}: where it reads\n"
                          f"(about {effective_count(reads.ravel()):.1f} of {reads.size} pixels)", fontsize=9)

        mixing = found["transformer"][i]
        shown = axes[2].imshow(mixing, cmap="viridis", vmin=0)
        axes[2].add_patch(patches.Rectangle((-0.5, l - 0.5), self.num_tokens, 1, fill=False, edgecolor="red", lw=1.5))
        fig.colorbar(shown, ax=axes[2], shrink=0.8)
        axes[2].set(xlabel="listens to token", ylabel="token")
        axes[2].set_title(f"token-token attention (row {l} in red)", fontsize=9)

        if "projector" in found:
            assignment = found["projector"][i].argmax(axis=-1).reshape(self.height, self.width)
            axes[3].imshow(image)
            axes[3].imshow(upsample(assignment, factor), cmap=colormaps["tab20"].resampled(self.num_tokens),
                           vmin=-0.5, vmax=self.num_tokens - 0.5, alpha=0.6)
            mine = upsample(assignment == l, factor).astype(float)
            if mine.any():
                axes[3].contour(mine, levels=[0.5], colors="white", linewidths=1.5)
            axes[3].set_title(f"projector: token each pixel reads most\n"
                              f"(token {l}: {int((assignment == l).sum())} pixels, outlined)", fontsize=9)
        else:
            axes[3].text(0.5, 0.5, f"module {m} has no projector:\nits tokens go to the classifier",
                         ha="center", va="center", fontsize=9, transform=axes[3].transAxes)
        for ax in (axes[0], axes[1], axes[3]):
            ax.set_xticks([])
            ax.set_yticks([])
        return fig

