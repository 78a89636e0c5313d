"""Run by every kernel that executes a chapter, before its first cell (PYTHONSTARTUP,
set by tools/book_kernels.py): importing vt_edu first keeps TensorFlow's C++ start-up
lines out of the chapter's outputs, whatever the chapter imports first."""

import vt_edu  # noqa: F401
