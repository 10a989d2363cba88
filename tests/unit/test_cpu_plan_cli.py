"""`isobench images plan --target-device cpu`: the why column, and the missing-mirror error."""

import subprocess
import sys
from pathlib import Path

from executor.cli.cpu_plan import _short

ROOT = Path(__file__).resolve().parents[2]


def test_short_drops_the_sha_prefix_and_cuts_to_one_line():
    assert _short("ed25054577f7 cannot run on the CPU track: torch pin 2.7.0 != 2.6.0") == \
        "torch pin 2.7.0 != 2.6.0"
    assert _short("no tiny model of X") == "no tiny model of X"
    long = _short("abc cannot run on the CPU track: " + "x" * 200)
    assert len(long) == 110 and long.endswith("...") and long.startswith("xxx")
    assert _short("y" * 110) == "y" * 110


def test_cpu_plan_without_mirror_exits_2_with_one_line():
    proc = subprocess.run([sys.executable, "-m", "executor.cli", "images", "plan",
                           "--target-device", "cpu", "ed250545"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) == 1 and "--mirror" in lines[0] and "Traceback" not in lines[0]
