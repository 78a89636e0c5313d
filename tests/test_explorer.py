"""vt_edu.explorer.TokenExplorer driven headless on synthetic attention maps."""

from __future__ import annotations

import numpy as np
import pytest

from vt_edu.explorer import TokenExplorer

B, H, W, L, K = 5, 4, 4, 6, 3


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.fixture
def explorer_inputs():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(B, 16, 16, 3), dtype=np.uint8)
    labels = np.array([0, 1, 2, 0, 1])
    tokenizer = _softmax(rng.normal(size=(B, H * W, L)), axis=1)
    tokenizer[2, :, 3] = 0.0
    tokenizer[2, 5, 3] = 1.0  # image 2, token 3 reads exactly one pixel
    modules = [
        {"tokenizer": tokenizer, "transformer": _softmax(rng.normal(size=(B, L, L)), axis=-1),
         "projector": _softmax(rng.normal(size=(B, H * W, L)), axis=-1)},
        {"tokenizer": _softmax(rng.normal(size=(B, H * W, L)), axis=1),
         "transformer": _softmax(rng.normal(size=(B, L, L)), axis=-1)},
    ]
    logits = np.eye(K)[[0, 1, 1, 0, 2]] * 4.0  # image 2 (class 2) is predicted as class 1
    maps = {"feature_map": np.zeros((B, H, W, 8)), "modules": modules, "logits": logits}
    return images, labels, maps, ["a", "b", "c"]


def test_explorer_draws_the_selection_and_describes_it(explorer_inputs):
    explorer = TokenExplorer(*explorer_inputs)
    explorer.set(image=2, token=3, module=1)
    assert (explorer.image.value, explorer.token.value, explorer.module.value) == (2, 3, 1)
    text = explorer.describe()
    assert "Test image 2 (c, predicted b" in text and "token 3: reads about 1.0 of 16 pixels" in text
    fig = explorer.figure()
    titles = [ax.get_title() for ax in fig.axes]
    assert any("predicted b" in t for t in titles)
    assert any("token 3: where it reads" in t for t in titles)
    assert any("projector" in t for t in titles)


def test_explorer_says_the_last_module_has_no_projector(explorer_inputs):
    explorer = TokenExplorer(*explorer_inputs)
    explorer.set(module=2)
    texts = [t.get_text() for ax in explorer.figure().axes for t in ax.texts]
    assert any("module 2 has no projector" in t for t in texts)


@pytest.mark.parametrize(
    "values, words",
    [({"image": 5}, "image must be a whole number from 0 to 4"), ({"token": -1}, "token must be"),
     ({"module": 3}, "module must be a whole number from 1 to 2"), ({"image": 1.5}, "got 1.5")],
)
def test_explorer_rejects_bad_selections_with_a_message_and_keeps_the_old_one(explorer_inputs, values, words):
    explorer = TokenExplorer(*explorer_inputs, image=1, token=2)
    explorer.set(**values)
    assert words in explorer.message and words in explorer.info.value
    assert (explorer.image.value, explorer.token.value, explorer.module.value) == (1, 2, 1)
    explorer.set(image=0)  # a valid selection clears the message
    assert explorer.message == ""


def test_explorer_refuses_maps_of_other_images(explorer_inputs):
    images, labels, maps, names = explorer_inputs
    with pytest.raises(ValueError, match="4 images and 5 labels for attention maps of 5 images"):
        TokenExplorer(images[:4], labels, maps, names)
