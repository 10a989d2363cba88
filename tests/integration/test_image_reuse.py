"""The demo's sandbox image goes through the same builder and Dockerfile.gpu as vLLM's
(the CPU path of the GPU recipe): a second build with unchanged inputs runs no build step."""

from __future__ import annotations

import os

import pytest

pytestmark = [pytest.mark.docker]


@pytest.fixture(scope="module")
def engine():
    from executor.errors import DockerUnavailable
    from executor.sandbox import docker_client

    try:
        return docker_client()
    except DockerUnavailable as exc:
        if os.environ.get("ISOBENCH_SKIP_DOCKER") == "1":
            pytest.skip(f"no Docker engine: {exc}")
        pytest.fail(f"integration tests need a Docker engine: {exc}")


def test_demo_image_is_built_once_then_reused(engine, tmp_path):
    from executor.build import BaseImageRecipe, ensure_base_image
    from executor.demo import DEMO_BASE_SHA, demo_repo_path, demo_task
    from executor.repo import export_leakproof, open_repo
    from executor.vllm.image import sandbox_recipe

    base = ensure_base_image(BaseImageRecipe(), client=engine)
    repo = open_repo(str(demo_repo_path()))
    task = demo_task()
    args = {"INSTALL_COMMAND": task.install_command, "REPO_DIR": "/workspace/repo",
            "INSTALL_STRATEGY": "generic", "REPO_COMMIT": DEMO_BASE_SHA}
    recipe = sandbox_recipe("demo-image-reuse-test", DEMO_BASE_SHA, base.id, args)
    exports: list[str] = []

    def export(dest):
        exports.append(str(dest))
        export_leakproof(repo, DEMO_BASE_SHA, dest)

    from executor.build import ensure_sandbox_image

    try:
        first = ensure_sandbox_image(recipe, export, base.tag, tmp_path, client=engine)
        second = ensure_sandbox_image(recipe, export, base.tag, tmp_path, client=engine)
        assert second.built is False and second.id == first.id and second.tag == first.tag
        assert len(exports) <= 1  # the second call did not even export the repository
        labels = engine.images.get(first.tag).labels
        assert labels["isobench.install_strategy"] == "generic"
        assert labels["isobench.repo_commit"] == DEMO_BASE_SHA
        out = engine.containers.run(first.tag, ["bash", "-c", "cat /opt/isobench/base.sha; "
                                                "ls -A /opt/isobench/agent | wc -l; "
                                                "git status --porcelain | wc -l"], remove=True)
        sha, agent_files, dirty = out.decode().split()
        assert (sha, agent_files, dirty) == (DEMO_BASE_SHA, "0", "0")
    finally:
        engine.images.remove(recipe.tag, force=True)
