"""The error that training raises for problems a user can fix (one clear line each)."""

from __future__ import annotations


class TrainingError(RuntimeError):
    """Training cannot start or cannot go on (bad option, a diverging or NaN loss, a run
    folder that holds another run or no run at all)."""
