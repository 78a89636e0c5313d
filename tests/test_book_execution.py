"""How chapters are executed: TensorFlow's start-up lines stay out of outputs, a stalled
cell fails its chapter quickly and the build with it (tools/book_kernels.py).

The kernel tests execute small notebooks through jupyter-cache's ``single_nb_execution``,
the function myst-nb (``jupyter-book build``) executes every chapter with."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import yaml
from jupyter_cache.executors.utils import single_nb_execution
from nbclient.exceptions import CellTimeoutError

from vt_edu.tf_log import filter_startup_lines

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import book_kernels  # noqa: E402

# What TensorFlow 2.21 writes to fd 2 while its library loads (TF_CPP_MIN_LOG_LEVEL or not).
STARTUP_NOISE = ("absl::InitializeLog", "oneDNN custom operations", "cpu_feature_guard")


def _notebook(*sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _texts(nb):
    return ["".join(o.get("text", "")) + str(o.get("data", "")) for c in nb.cells for o in c.get("outputs", [])]


def test_the_filter_drops_what_the_log_level_silences_and_keeps_the_rest():
    text = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1796229047.539482    8195 port.cc:153] oneDNN custom operations are on.\n"
        "W0000 00:00:1796229047.6    8195 some.cc:12] a warning\n"
        "E0000 00:00:1796229047.7    8195 other.cc:3] an error\n"
        "a line of someone else's\n"
    )
    assert filter_startup_lines(text, 3) == "a line of someone else's\n"
    assert filter_startup_lines(text, 2) == "E0000 00:00:1796229047.7    8195 other.cc:3] an error\na line of someone else's\n"
    assert filter_startup_lines(text, 0) == text


@pytest.fixture
def tf_log_level_unset(monkeypatch):
    """TensorFlow's own default, as in a fresh Colab or `jupyter-book build .` without make."""
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")


def test_importing_vt_edu_first_keeps_tensorflow_startup_lines_off_stderr(tf_log_level_unset):
    done = subprocess.run([sys.executable, "-c", "import vt_edu, keras; keras.ops.ones(1); print('imported')"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and "imported" in done.stdout
    assert not [line for line in done.stderr.splitlines() if any(n in line for n in STARTUP_NOISE)], done.stderr


def test_kernels_of_the_book_build_keep_startup_lines_out_of_outputs_even_when_keras_comes_first(
    tf_log_level_unset, monkeypatch, tmp_path
):
    monkeypatch.delenv("PYTHONSTARTUP", raising=False)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    # ipykernel forwards fd 2 into outputs, as under jupyter-book, only outside pytest.
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    book_kernels.prepare_kernel_environment()  # what the Sphinx extension and book/conftest.py do
    nb = _notebook("import keras\nprint(tuple(keras.ops.ones(1).shape))", "import sys\nprint('to stderr', file=sys.stderr)")
    result = single_nb_execution(nb, cwd=str(tmp_path), timeout=300, allow_errors=False)
    assert result.err is None, result.exc_string
    texts = _texts(result.nb)
    assert any("(1,)" in t for t in texts) and any("to stderr" in t for t in texts), texts
    assert not [t for t in texts if any(n in t for n in STARTUP_NOISE)], texts


def test_a_stalled_cell_fails_its_chapter_quickly_with_a_readable_message(tmp_path):
    nb = _notebook("print('first cell')", "import time\ntime.sleep(600)  # a kernel that never answers")
    started = time.monotonic()
    result = single_nb_execution(nb, cwd=str(tmp_path), timeout=3, allow_errors=False)
    assert time.monotonic() - started < 120  # kernel start-up included, on a busy CPU
    assert isinstance(result.err, CellTimeoutError)
    assert "timed out" in str(result.err) and "time.sleep(600)" in str(result.err)


def test_the_build_uses_the_profiles_cell_timeout_and_fails_on_a_failed_chapter(monkeypatch):
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["raise_on_error"] is True  # else a timed-out chapter is only a warning
    assert "timeout" not in config["execute"]  # the profile's, below
    assert config["sphinx"]["local_extensions"] == {"book_kernels": "tools"}

    class SphinxConfig:
        nb_execution_timeout = 30

    for profile in ("quick", "full"):
        monkeypatch.setenv("VT_EDU_PROFILE", profile)
        book_kernels.apply_cell_timeout(None, SphinxConfig)
        assert SphinxConfig.nb_execution_timeout == book_kernels.CELL_TIMEOUT[profile]
    assert book_kernels.CELL_TIMEOUT["quick"] < book_kernels.CELL_TIMEOUT["full"] <= 1800


def test_nbmake_gets_the_profiles_cell_timeout_unless_one_is_given(monkeypatch):
    from script_loader import load_script

    book_conftest = load_script("book/conftest.py", "book_conftest")
    monkeypatch.setenv("VT_EDU_PROFILE", "quick")

    class Config:
        def __init__(self, *args):
            self.invocation_params = type("Params", (), {"args": args})()
            self.option = type("Options", (), {"nbmake_timeout": 300})()

    default, given = Config("--nbmake", "book"), Config("--nbmake", "--nbmake-timeout=42", "book")
    book_conftest.pytest_configure(default)
    book_conftest.pytest_configure(given)
    assert default.option.nbmake_timeout == book_kernels.CELL_TIMEOUT["quick"]
    assert given.option.nbmake_timeout == 300  # left as pytest parsed it
