"""Shared fixtures. Integration tests need a real Docker engine: CI starts one
(scripts/ensure-docker.sh). Without one they fail loudly, unless ISOBENCH_SKIP_DOCKER=1 says
skipping is intended (e.g. a laptop without Docker running the unit tests)."""

from __future__ import annotations

import os
import uuid
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Each test session generates its own demo repo and mirrors; images stay shared."""
    if "ISOBENCH_CACHE" not in os.environ:
        os.environ["ISOBENCH_CACHE"] = str(tmp_path_factory.mktemp("isobench-cache"))
    yield


@pytest.fixture(scope="session")
def docker_engine():
    from executor.core.errors import EngineUnavailable
    from executor.engine.chosen import engine_client

    try:
        return engine_client()
    except EngineUnavailable as exc:
        if os.environ.get("ISOBENCH_SKIP_DOCKER") == "1":
            pytest.skip(f"no Docker engine and ISOBENCH_SKIP_DOCKER=1: {exc}")
        pytest.fail(f"integration tests need a Docker engine: {exc}")


@pytest.fixture(scope="session")
def base_image(docker_engine):
    """The offline Debian base (built once; minutes on a fresh machine, then cached). Parallel
    workers (pytest -n) take a host-wide lock, so one of them builds it and the rest find it."""
    import fcntl

    from executor.engine.images import BaseImageRecipe, ensure_base_image

    with open("/tmp/isobench-tests-base-image.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return ensure_base_image(BaseImageRecipe())


@pytest.fixture(scope="session")
def demo_repo():
    from executor.parts.demo import demo_repo_path

    return demo_repo_path()


# Tests name their runs (and judge containers by the run-id label) with this session's suffix:
# other test sessions (other checkouts' suites) share the engine and use the same names.
SESSION = uuid.uuid4().hex[:6]


def rid(name: str) -> str:
    """This session's run id for the name a test gives its run."""
    return f"{name}-{SESSION}"


def run_cli(*args: str, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """The real `isobench` entry point in a subprocess, as a user would run it."""
    return subprocess.run([sys.executable, "-m", "executor.cli", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=timeout,
                          cwd=REPO_ROOT)
