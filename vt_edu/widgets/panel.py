"""The base of the notebook panels and how they show figures.

A panel is a plain object that owns ipywidgets controls (ipywidgets 7.7, which Colab
ships, or 8); ``display(panel)`` or a panel as a cell's last value shows its
:attr:`Panel.widget`. Figures go to the panel's ``Output`` as PNG images, and only in a
kernel, so that panels also run headless (tests, chapters executed for the web book).
"""

from __future__ import annotations

import io

import ipywidgets as widgets
from matplotlib.figure import Figure

__all__ = ["LIVE_NOTE", "Panel", "in_kernel", "new_figure", "show_in_output"]

LIVE_NOTE = "The controls are live in Jupyter or Colab; on a web page they show their last state."


def in_kernel() -> bool:
    """Whether we run inside a Jupyter kernel (where widget outputs can be shown)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def show_in_output(output: widgets.Output, fig: Figure) -> None:
    """Replace what ``output`` shows by ``fig`` (as a PNG, whatever the matplotlib backend)."""
    if not in_kernel():
        return
    from IPython.display import Image, display

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    output.clear_output(wait=True)
    with output:
        display(Image(data=buffer.getvalue(), format="png"))


def new_figure(figsize) -> Figure:
    """A figure that displays as an image in a notebook (``display(fig)`` or a cell's last
    value) but is not drawn again when the cell ends: created through pyplot, which
    activates the notebook's matplotlib backend and its display hook, then closed
    in pyplot, which only forgets it."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=figsize, layout="constrained")
    plt.close(fig)
    return fig


class Panel:
    """Base of the panels: a plain object whose :attr:`widget` (a ``VBox``) is what
    ``display(panel)``, or a panel as the last expression of a cell, shows.

    Attributes:
        widget: the whole panel, set by the subclass.
        output: the ``Output`` widget that shows the panel's figure, set by the subclass.
    """

    widget: widgets.Widget
    output: widgets.Output

    def show_figure(self, fig: Figure) -> None:
        """Replace what the panel's :attr:`output` shows by ``fig`` (in a kernel only)."""
        show_in_output(self.output, fig)

    def _ipython_display_(self, **kwargs):
        # IPython calls this for display(panel) and for a cell's last value. Passing the
        # widget on to display() lets it show itself as its ipywidgets version does:
        # ipywidgets 8 through _repr_mimebundle_, ipywidgets 7 (Colab's 7.7) through its
        # own _ipython_display_ (a widget there has no _repr_mimebundle_).
        from IPython.display import display

        display(self.widget)
