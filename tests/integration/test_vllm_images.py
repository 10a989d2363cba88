"""Image builds on the CPU engine, through the same builder and Dockerfile.gpu as vLLM's GPU
images.

1. The demo's sandbox image: a second build with unchanged inputs runs no build step.
2. The wheel strategies' install script, run for real on the CPU base: a fake vLLM checkout
   plus a fake wheel carrying a "compiled" file. The checkout's Python is what imports, the
   wheel's binaries land in the tree untracked (the agent's diff stays clean), the wheel's
   sha256 is checked, and the frozen requirement list is written.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import subprocess
import zipfile

import pytest

pytestmark = [pytest.mark.docker]
SO_BYTES = b"\x7fELF fake compiled kernel"


@pytest.fixture(scope="module")
def engine(docker_engine):
    return docker_engine


def test_demo_image_is_built_once_then_reused(engine, tmp_path):
    from executor.engine.images import BaseImageRecipe, ensure_base_image
    from executor.parts.demo import DEMO_BASE_SHA, demo_repo_path, demo_task
    from executor.parts.repo import export_leakproof, open_repo
    from executor.engine.images import sandbox_recipe

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

    from executor.engine.images import ensure_sandbox_image

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


def fake_repo(path):
    (path / "vllm").mkdir(parents=True)
    (path / "vllm" / "__init__.py").write_text('__version__ = "0.5.3"\nSOURCE = "checkout"\n')
    (path / "requirements-cuda.txt").write_text("torch == 2.3.1\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(path)]
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "fake vllm"], check=True)
    return subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def fake_wheel(folder, sha):
    (folder / sha).mkdir(parents=True)
    path = folder / sha / "vllm-1.0.0.dev-cp38-abi3-manylinux1_x86_64.whl"
    files = {
        "vllm/__init__.py": b'__version__ = "0.5.3"\nSOURCE = "wheel"\n',
        "vllm/_C.abi3.so": SO_BYTES,
        "vllm-0.5.3.dist-info/METADATA": b"Metadata-Version: 2.1\nName: vllm\nVersion: 0.5.3\n",
        "vllm-0.5.3.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\n"
                                      b"Root-Is-Purelib: false\nTag: cp38-abi3-manylinux1_x86_64\n",
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append("vllm-0.5.3.dist-info/RECORD,,")
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
        wheel.writestr("vllm-0.5.3.dist-info/RECORD", "\n".join(record) + "\n")
    return folder


def test_own_wheel_install_runs_the_checkout_with_the_wheels_binaries(engine, tmp_path):
    from executor.engine.images import BaseImageRecipe, ensure_base_image
    from executor.parts.repo import export_leakproof, open_repo
    from executor.parts.vllm.image import ensure_vllm_image
    from executor.parts.vllm.install_script import UV_VERSION
    from executor.parts.vllm.mirror import GitMirror
    from executor.parts.vllm.strategy import HostResources, PlanOptions, plan_install
    from executor.parts.vllm.wheels import Prober

    sha = fake_repo(tmp_path / "repo")
    wheels = fake_wheel(tmp_path / "wheels", sha)
    plan = plan_install(sha, source=GitMirror(tmp_path / "repo"),
                        commit_date=dt.datetime(2024, 7, 25, tzinfo=dt.timezone.utc),
                        date_source="mirror", options=PlanOptions(
                            wheel_dir=wheels, host=HostResources(cores=2, mem_gb=8)),
                        prober=Prober(enabled=False))
    assert plan.strategy == "own_wheel" and plan.wheel.source == "local"
    assert plan.environment.torch == "2.3.1"
    # CPU stand-in for the CUDA toolchain and torch layers: a venv with uv, no torch
    base = ensure_base_image(BaseImageRecipe(), client=engine)
    import executor.parts.vllm.image as image

    real_build_args = image.build_args

    def cpu_args(*args, **kwargs):
        out = real_build_args(*args, **kwargs)
        out["TOOLCHAIN_COMMAND"] = (f"python3 -m venv /opt/venv && /opt/venv/bin/pip install "
                                    f"-q uv=={UV_VERSION} && ln -s /opt/venv/bin/uv "
                                    f"/usr/local/bin/uv")
        out["TORCH_VERSION"] = out["TORCH_COMMAND"] = ""
        return out

    image.build_args = cpu_args
    repo = open_repo(str(tmp_path / "repo"))
    try:
        ref = ensure_vllm_image(plan, lambda dest: export_leakproof(repo, sha, dest), base,
                                tmp_path / "logs", task="vllm-wheel-test")
        script = ("cd /workspace/repo && python -c 'import vllm; print(vllm.SOURCE, vllm.__file__)'"
                  " && cat vllm/_C.abi3.so && echo && git status --porcelain | wc -l"
                  " && grep -c '^vllm' /opt/isobench/frozen-requirements.txt")
        out = engine.containers.run(ref.tag, ["bash", "-c", script], remove=True).decode()
        lines = out.split("\n")
        assert lines[0] == "checkout /workspace/repo/vllm/__init__.py"
        assert lines[1] == SO_BYTES.decode()
        assert lines[2:4] == ["0", "1"]
        labels = engine.images.get(ref.tag).labels
        assert labels["isobench.install_strategy"] == "own_wheel"
    finally:
        image.build_args = real_build_args
        for tag in engine.images.list(name="isobench/sandbox-vllm-wheel-test"):
            engine.images.remove(tag.id, force=True)
