"""Leak-proofing and the harness patch inside a real sandbox built from the demo."""

import subprocess

import pytest

from executor.parts import demo
from executor.core.errors import LeakDetected
from executor.runs.pipeline import RunOptions, ensure_images
from executor.parts.repo import REPO_DIR, harness_patch, verify_no_leak
from executor.runs.resolve import resolve_job
from executor.engine.sandbox import Sandbox
from executor.core.resources import SandboxSpec

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def demo_images(base_image, tmp_path_factory):
    job = resolve_job(demo.DEMO_HUMAN_SHA)
    options = RunOptions(state_dir=tmp_path_factory.mktemp("state"), run_id="t")
    _, images = ensure_images(job, options, tmp_path_factory.mktemp("logs"), lambda _: None)
    return images


def sandbox(image):
    return Sandbox(SandboxSpec(image=image.tag, budget_s=600, run_id="t", item="demo",
                               phase="test", workdir=REPO_DIR, network="none"))


def test_git_log_all_shows_nothing_newer_than_base(demo_images):
    with sandbox(demo_images["base"]) as box:
        log_all = box.check(f"cd {REPO_DIR} && git log --all --format=%H").stdout.split()
        assert set(log_all) == {demo.DEMO_BASE_SHA, demo.DEMO_ROOT_SHA}
        assert box.check(f"cd {REPO_DIR} && git tag && git remote").stdout.strip() == ""
        assert box.check(f"cd {REPO_DIR} && git status --porcelain").stdout.strip() == ""
        report = verify_no_leak(box, REPO_DIR, demo.DEMO_BASE_SHA, demo.DEMO_HUMAN_SHA)
        assert report.clean and report.commits_total == 2


def test_leak_check_fails_when_a_newer_commit_is_reachable(demo_images):
    # the human image's tree contains the human commit: the check must catch it
    with sandbox(demo_images["human"]) as box:
        with pytest.raises(LeakDetected, match="beyond base"):
            verify_no_leak(box, REPO_DIR, demo.DEMO_BASE_SHA, demo.DEMO_HUMAN_SHA)


def test_harness_patch_holds_commits_staged_new_and_binary_files(demo_images, tmp_path):
    with sandbox(demo_images["base"]) as box:
        box.check(f"""cd {REPO_DIR}
            sed -i 's/block_id = free\\[0\\]/block_id = free[0]  # committed/' minivllm/block_allocator.py
            git commit -qam 'agent commit'
            echo '# staged' >> minivllm/block_manager.py && git add minivllm/block_manager.py
            printf 'new\\n' > minivllm/new_module.py
            printf '\\000\\001\\002' > minivllm/table.bin
            echo scratch > .isobench_scratch/notes.txt
            rm -rf .git  # whatever the agent does to its own git, base.git is the controller's
        """)
        patch = harness_patch(box, REPO_DIR, demo.DEMO_BASE_SHA)
    text = patch.decode(errors="replace")
    assert "# committed" in text and "# staged" in text
    assert "b/minivllm/new_module.py" in text and "GIT binary patch" in text
    assert "notes.txt" not in text and "egg-info" not in text
    # the patch applies to a clean checkout of base, binary included
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(demo.demo_repo_path()), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", demo.DEMO_BASE_SHA], check=True)
    (tmp_path / "p.diff").write_bytes(patch)
    subprocess.run(["git", "-C", str(clone), "apply", "--binary", str(tmp_path / "p.diff")],
                   check=True)
    assert (clone / "minivllm" / "table.bin").read_bytes() == b"\x00\x01\x02"


def test_unchanged_tree_gives_an_empty_patch(demo_images):
    with sandbox(demo_images["base"]) as box:
        box.check(f"cd {REPO_DIR} && python -m unittest discover -s tests -q")  # writes caches
        assert harness_patch(box, REPO_DIR, demo.DEMO_BASE_SHA) == b""
