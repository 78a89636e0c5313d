"""A real SIGKILL at random instants of a small run, then a rerun: the resumed run must
repeat the uninterrupted one (history and weights, up to float rounding).

Uses tools/kill_resume_check.py (which repeats this 20 times for a report); here one
trial: the uninterrupted run in this process, then one process killed at a random
instant and one that resumes the run to its end.
"""

from __future__ import annotations

import random
import time

from script_loader import load_script


def _tool():
    return load_script("tools/kill_resume_check.py")


def test_runs_killed_at_random_instants_resume_to_the_uninterrupted_run(tmp_path):
    tool = _tool()
    seed = random.SystemRandom().randrange(2**32)
    reference = tmp_path / "uninterrupted"
    start = time.perf_counter()
    tool.child(str(reference))
    seconds = time.perf_counter() - start
    # A kill before the first checkpoint only restarts the run; this one comes at a random
    # instant after it, within the next 40 % of the run's time, so that it lands before the end.
    result = tool.trial(tmp_path / "killed", reference, 0.4 * seconds, kills=1, rng=random.Random(seed),
                        after_first_checkpoint=True, attempts=2)
    assert result["kills_landed"] == 1, (seed, result)
    assert result["differences"] == [], (seed, result)


def test_the_comparison_sees_a_lost_or_changed_epoch(tmp_path):
    # differences() on doctored copies of a finished run folder (no training here).
    import shutil

    tool = _tool()
    from vt_edu.training import train

    run = train("cnn", recipe="seed", epochs=2, batch_size=20, width=0.25, data=tool.synthetic_data(),
                run_dir=tmp_path / "a", verbose=0)
    assert tool.differences(run.run_dir, run.run_dir) == []
    changed = shutil.copytree(run.run_dir, tmp_path / "b")
    text = (changed / "history.csv").read_text().splitlines()
    (changed / "history.csv").write_text("\n".join(text[:-1]) + "\n")  # the last epoch's row lost
    assert tool.differences(run.run_dir, changed)
    shutil.copyfile(run.run_dir / "history.csv", changed / "history.csv")
    model = run.model
    model.set_weights([w + 1e-3 for w in model.get_weights()])
    model.save(changed / "model.keras")
    assert any("model.keras" in d for d in tool.differences(run.run_dir, changed))
