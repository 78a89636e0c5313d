"""The students' baseline: the CNN of the TensorFlow "Convolutional Neural Network" tutorial.

Three 3x3 convolutions (32, 64, 64 filters, ReLU, "valid" padding) with 2x2 max
pooling after the first two, then ``Flatten → Dense(64, relu) → Dense(classes)``.
The last layer returns logits. On 32x32x3 inputs with 10 classes it has exactly
122,570 parameters, the number printed by the tutorial's ``model.summary()``.
"""

from __future__ import annotations

import keras


def build_cnn(num_classes, input_shape, *, width: float = 1.0, dropout: float = 0.0):
    """Build the tutorial CNN.

    Args:
        num_classes: number of output logits.
        input_shape: ``(H, W, 3)``; at least 18x18 so the three convolutions fit.
        width: multiplier of the filter counts and the hidden Dense (1.0: 32/64/64/64).
        dropout: dropout rate before the logits (0: none, as in the tutorial).
    """
    c1, c2, c3, hidden = (max(1, int(round(n * width))) for n in (32, 64, 64, 64))
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Conv2D(c1, 3, activation="relu", name="block1_conv")(inputs)
    x = keras.layers.MaxPooling2D(2, name="block1_pool")(x)
    x = keras.layers.Conv2D(c2, 3, activation="relu", name="block2_conv")(x)
    x = keras.layers.MaxPooling2D(2, name="block2_pool")(x)
    x = keras.layers.Conv2D(c3, 3, activation="relu", name="block3_conv")(x)
    x = keras.layers.Flatten(name="head_flatten")(x)
    x = keras.layers.Dense(hidden, activation="relu", name="head_dense")(x)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(num_classes, name="head_logits", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="cnn")
