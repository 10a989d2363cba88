"""GitMirror reads a commit's files, date and changes with plain git, no checkout."""

import subprocess

import pytest

from executor.core.errors import UserInputError
from executor.parts.vllm.mirror import GitMirror


def commit(repo, files, when):
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    env = {"GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when, "PATH": "/usr/bin:/bin"}
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "c"], check=True, env=env)
    return subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_reads_a_bare_mirror(tmp_path):
    work = tmp_path / "work"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    first = commit(work, {"requirements-cuda.txt": "torch == 2.3.0\n"}, "2024-06-01T10:00:00Z")
    second = commit(work, {"vllm/a.py": "x = 1\n"}, "2024-06-02T10:00:00Z")
    third = commit(work, {"csrc/k.cu": "//\n"}, "2024-06-03T10:00:00Z")
    bare = tmp_path / "mirror.git"
    subprocess.run(["git", "clone", "-q", "--mirror", str(work), str(bare)], check=True)
    mirror = GitMirror(bare)
    assert mirror.resolve(third[:8]) == third and mirror.resolve("0000000") is None
    assert mirror.read(second, "requirements-cuda.txt") == "torch == 2.3.0\n"
    assert mirror.read(first, "vllm/a.py") is None
    assert mirror.commit_date(second).isoformat() == "2024-06-02T10:00:00+00:00"
    assert mirror.changed_paths(first, third) == ["csrc/k.cu", "vllm/a.py"]
    assert mirror.changed_paths(first, third, paths=["csrc/"]) == ["csrc/k.cu"]
    assert mirror.first_parent_ancestors(third, 5) == [second, first]


def test_a_folder_that_is_not_a_repository_is_a_user_error(tmp_path):
    with pytest.raises(UserInputError, match="not a git repository"):
        GitMirror(tmp_path)
    with pytest.raises(UserInputError, match="does not exist"):
        GitMirror(tmp_path / "missing")
