"""Node-local state dirs of Ray tasks: a task whose worker died (kill -9) cannot remove its own,
so the next task on the node does, and never one that a live task holds. No cluster needed."""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")
from executor.runs.batch.ray_backend import claim_node_dir, sweep_node_dirs  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
CLAIM = ("import sys; from executor.runs.batch.ray_backend import claim_node_dir; "
         "root, lock = claim_node_dir(sys.argv[1]); print(root, flush=True); sys.stdin.read()")


def test_a_dead_workers_dir_is_swept_a_live_one_is_kept(tmp_path):
    mine, lock = claim_node_dir(str(tmp_path))
    child = subprocess.Popen([sys.executable, "-c", CLAIM, str(tmp_path)], cwd=REPO_ROOT,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    dead = Path(child.stdout.readline().strip())  # claimed: the child holds its lock
    assert sweep_node_dirs(str(tmp_path)) == []
    child.kill()  # SIGKILL: no cleanup runs; the kernel drops its flock
    child.wait()
    assert sweep_node_dirs(str(tmp_path)) == [dead]
    assert not dead.exists() and mine.is_dir()
    lock.release()
