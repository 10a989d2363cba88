"""Opt-in: real vLLM releases from PyPI through `isobench images build` (the normal vLLM path).

Skipped unless ISOBENCH_VLLM_REAL=1 (each release downloads ~3-5 GB and builds for minutes):

    ISOBENCH_VLLM_REAL=1 .venv/bin/python -m pytest tests/integration/test_vllm_release_images.py

ISOBENCH_VLLM_RELEASES (default "0.5.4,0.8.5.post1": Aug 2024, torch 2.4.0, and May 2025,
torch 2.6.0) picks the releases. It runs scripts/vllm_release_image.py, which commits each
sdist into a local repository dated at the release, files the release wheel under that sha,
builds twice (cold, cached) and checks the image; this test judges what it reports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RELEASES = os.environ.get("ISOBENCH_VLLM_RELEASES", "0.5.4,0.8.5.post1").split(",")

pytestmark = [
    pytest.mark.docker, pytest.mark.slow, pytest.mark.vllm_real,
    pytest.mark.skipif(os.environ.get("ISOBENCH_VLLM_REAL") != "1",
                       reason="opt-in: ISOBENCH_VLLM_REAL=1 builds real vLLM releases from PyPI"),
]


@pytest.mark.parametrize("version", RELEASES)
def test_release_builds_on_the_offline_base_and_runs_its_own_checkout(version, tmp_path,
                                                                      docker_engine):
    out = tmp_path / "result.json"
    subprocess.run([sys.executable, "scripts/vllm_release_image.py", version, "--json",
                    str(out)], cwd=ROOT, check=True, timeout=3 * 3600)
    (result,) = json.loads(out.read_text())
    assert result["strategy"] == "own_wheel"
    assert result["import_ok"], result
    assert result["import_version"] == version == result["dist_version"]
    assert result["vllm_file"] == "/workspace/repo/vllm/__init__.py"  # the checkout's Python
    assert result["bench_help_ok"], result["bench_help_tail"]
    assert result["packages_as_of_cutoff"], result["cutoff_check_tail"]
    assert result["resolved"]["torch"].startswith(result["torch"])
    assert result["resolved"]["transformers"] and result["package_count"] > 50
    assert result["cached_built"] is False  # the second build found the content tag
    labels = docker_engine.images.get(result["image"]).labels
    assert labels["isobench.install_strategy"] == "own_wheel"
    assert labels["isobench.repo_commit"] == result["sha"]
