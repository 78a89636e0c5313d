"""vt_edu.training.speed: models timed in turns, ratios per round."""

from __future__ import annotations

import numpy as np
import pytest

from vt_edu.training.speed import alternating_speed, keras_steps


class _Recorder:
    """Stands in for a compiled model: records whose step ran, on which batch."""

    def __init__(self, name, log):
        self.name, self.log = name, log

    def train_on_batch(self, x, y):
        assert len(x) == len(y) == 4
        self.log.append((self.name, int(x[0, 0, 0, 0])))


def test_models_take_turns_reversing_the_order_every_round():
    log = []
    x, y = np.repeat(np.arange(10.0), 12).reshape(10, 2, 2, 3), np.zeros(10)  # image i holds the value i
    steps = {name: keras_steps(_Recorder(name, log), x, y, batch_size=4) for name in ("a", "b", "c")}
    speed = alternating_speed(steps, batch_size=4, rounds=3, steps=2)
    order = [name for name, _ in log]
    assert order[:6] == ["a", "a", "b", "b", "c", "c"]  # warm-up
    assert order[6:] == list("aabbcc" "ccbbaa" "aabbcc")  # A B C, C B A, A B C
    assert {batch for _, batch in log} == {0, 4}  # the two whole batches of 4, cycled; images 8, 9 never
    assert set(speed["ratio_to_first"]) == {"b", "c"}
    for name in ("b", "c"):
        ratios = speed["ratio_to_first"][name]["values"]
        assert len(ratios) == 3 and all(np.isfinite(ratios)) and min(ratios) > 0
    assert len(speed["images_per_second"]["a"]["values"]) == 3
    assert (speed["rounds"], speed["steps"], speed["batch_size"]) == (3, 2, 4)


def test_the_ratio_is_the_speed_of_each_round():
    import time

    slow = lambda i: time.sleep(0.04)  # noqa: E731
    fast = lambda i: time.sleep(0.01)  # noqa: E731
    speed = alternating_speed({"slow": slow, "fast": fast}, batch_size=8, rounds=2, steps=3, warmup=0)
    # A sleep lasts at least as long as asked, a little longer on a busy machine: the ratio is
    # 4 for exact sleeps and stays well above 2 unless each sleep overshoots by 10 ms.
    assert 2.0 < speed["ratio_to_first"]["fast"]["mean"] < 4.2
    assert speed["images_per_second"]["slow"]["max"] <= 8 / 0.04


def test_bad_requests_are_refused():
    log = []
    with pytest.raises(ValueError, match="at least 4 images"):
        keras_steps(_Recorder("a", log), np.zeros((3, 2, 2, 3)), np.zeros(3), batch_size=4)
    step = lambda i: None  # noqa: E731
    with pytest.raises(ValueError, match="two or more models"):
        alternating_speed({"a": step}, batch_size=4, rounds=1, steps=1)
    with pytest.raises(ValueError, match="rounds must be at least 1"):
        alternating_speed({"a": step, "b": step}, batch_size=4, rounds=0, steps=1)
