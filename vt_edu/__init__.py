"""vt-edu: the Visual Transformer of Wu et al. built step by step in Keras 3.

Chapters of the book import everything from here, so that there is one source of
truth for every layer, loader and recipe.
"""

import os

# TensorFlow prints C++ log lines (CPU feature guard, oneDNN notes) to stderr at import.
# They carry nothing for a reader and would land in the rendered pages, so we silence
# them before anything imports TensorFlow. An explicit setting by the user still wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"

from vt_edu import tf_log  # noqa: E402
from vt_edu.config import by_profile, gpu_available, profile  # noqa: E402

# The lines written while TensorFlow's library loads ignore TF_CPP_MIN_LOG_LEVEL; the
# first `import tensorflow` after this one filters them (see vt_edu.tf_log).
tf_log.install()

__all__ = ["__version__", "by_profile", "gpu_available", "profile"]
