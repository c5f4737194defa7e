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
