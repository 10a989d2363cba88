"""scripts/gpu_timing_check.py runs where it can and says clearly why not where it cannot."""

import importlib.util
import json
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "gpu_timing_check.py"


def test_without_torch_it_says_what_is_missing():
    # sys.modules["torch"] = None makes torch unimportable for this interpreter only
    runner = ("import runpy, sys; sys.modules['torch'] = None; "
              f"sys.argv = [{str(SCRIPT)!r}]; runpy.run_path({str(SCRIPT)!r}, run_name='__main__')")
    out = subprocess.run([sys.executable, "-c", runner], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 3
    assert "torch not installed" in out.stderr and len(out.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="CPU smoke test of the GPU check needs torch (pip install torch)")
def test_cpu_smoke_run_goes_through_schedule_and_statistics(tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--size", "tiny",
                          "--trials", "2", "--warmup", "0", "--iters", "5",
                          "--warmup-iters", "1", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-1500:] + out.stderr[-1500:]
    assert "A/A  A' vs A" in out.stdout and "A/B  B vs A" in out.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results["trials"]) == 6 and all(t["ok"] for t in results["trials"])
    assert set(results["analysis"]["comparisons"]) >= {"base2/base", "agent/base"}
