"""The recipes' shell helpers (scripts/recipe_common.sh): a long run parked in one session resumes
in a fresh clone, where the experiment folder does not exist yet."""
import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _bash(script, run, ckpt):
    env = {**os.environ, "RUN": str(run), "CKPT": str(ckpt)}
    return subprocess.run(["bash", "-c", f"set -euo pipefail; source scripts/recipe_common.sh; {script}; echo done"],
                          cwd=REPO, env=env, capture_output=True, text=True)


def test_unpark_into_a_fresh_run_then_park(tmp_path):
    run, ckpt = tmp_path / "run", tmp_path / "ckpt"
    part = ckpt / "Net_O.partial"
    part.mkdir(parents=True)
    (part / "200.state").write_bytes(b"state")
    (part / "net_g_200.pth").write_bytes(b"weights")
    r = _bash("unpark Net_O", run, ckpt)
    assert r.returncode == 0 and r.stdout.strip().endswith("done"), r.stdout + r.stderr
    exp = run / "experiments" / "Net_O"
    assert (exp / "training_states" / "200.state").read_bytes() == b"state"
    assert (exp / "models" / "net_g_200.pth").read_bytes() == b"weights"
    # the run goes on to iteration 300; park keeps the newest state only
    (exp / "training_states" / "300.state").write_bytes(b"state 300")
    (exp / "models" / "net_g_300.pth").write_bytes(b"weights 300")
    r = _bash("park Net_O", run, ckpt)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(part)) == ["300.state", "net_g_300.pth"]


def test_park_without_a_run_says_so(tmp_path):
    r = _bash("park Nothing_yet; unpark Nothing_yet", tmp_path / "run", tmp_path / "ckpt")
    assert r.returncode == 0 and "no training state yet" in r.stdout, r.stdout + r.stderr


def test_parked_keeps_a_stopped_run_and_drops_a_finished_one(tmp_path):
    run, ckpt = tmp_path / "run", tmp_path / "ckpt"
    state = 'mkdir -p "$RUN/experiments/$1/training_states" "$RUN/experiments/$1/models"; ' \
            'touch "$RUN/experiments/$1/training_states/100.state" "$RUN/experiments/$1/models/net_g_100.pth"'
    # the step stops (fails, is killed) after a saved state: the run is parked for a commit
    r = _bash(f"step() {{ {state}; false; }}; parked Net_O step Net_O", run, ckpt)
    assert r.returncode != 0 and "park Net_O: iteration 100" in r.stdout, r.stdout + r.stderr
    assert sorted(os.listdir(ckpt / "Net_O.partial")) == ["100.state", "net_g_100.pth"]
    # the step finishes: nothing parked is left
    r = _bash(f"step() {{ {state}; }}; parked Net_O step Net_O", run, ckpt)
    assert r.returncode == 0 and not (ckpt / "Net_O.partial").exists(), r.stdout + r.stderr


def test_kept_copies_a_product_into_the_checkpoints_and_back(tmp_path):
    run, ckpt = tmp_path / "run", tmp_path / "ckpt"
    r = _bash('echo labels > "$RUN/l.txt"; kept "$RUN/l.txt" m.txt', run, ckpt)
    assert r.returncode == 0 and (ckpt / "m.txt").read_text() == "labels\n", r.stderr
    (run / "l.txt").unlink()  # a fresh clone: only the committed copy
    r = _bash('kept "$RUN/l.txt" m.txt; kept "$RUN/none.txt"', run, ckpt)
    assert r.returncode == 0 and (run / "l.txt").read_text() == "labels\n", r.stderr
