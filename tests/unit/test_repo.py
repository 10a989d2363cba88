import subprocess

from executor.parts import demo
from executor.parts.repo import (changed_paths, export_leakproof, open_repo, parse_leak_report,
                           patch_stats, touches_paths)


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True).stdout


def test_export_holds_exactly_the_base_history(demo_repo, tmp_path):
    export_leakproof(open_repo(str(demo_repo)), demo.DEMO_BASE_SHA, tmp_path / "x")
    exported = tmp_path / "x"
    assert git(exported, "rev-parse", "HEAD").strip() == demo.DEMO_BASE_SHA
    assert set(git(exported, "log", "--all", "--format=%H").split()) == \
        {demo.DEMO_BASE_SHA, demo.DEMO_ROOT_SHA}
    assert git(exported, "tag").strip() == ""  # the source has v0.2.0 on a newer commit
    assert git(exported, "remote").strip() == ""
    objects = git(exported, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)")
    assert demo.DEMO_HUMAN_SHA not in objects and demo.DEMO_LATEST_SHA not in objects
    assert git(exported, "status", "--porcelain").strip() == ""


def test_leak_report_parsing():
    report = parse_leak_report("TOTAL 3\nOUTSIDE abc\nREF refs/tags/v1 def\nHUMAN\n")
    assert report.commits_total == 3 and report.outside_base == ["abc"]
    assert report.bad_refs == ["refs/tags/v1 def"] and report.human_present and not report.clean
    assert parse_leak_report("TOTAL 2\n").clean


def test_patch_stats_and_paths():
    patch = (b"diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1 +1,2 @@\n-a\n+b\n+c\n"
             b"diff --git a/csrc/k.cu b/csrc/k.cu\nGIT binary patch\nliteral 1\n")
    stats = patch_stats(patch)
    assert (stats.files_changed, stats.lines_added, stats.lines_removed, stats.binary_files) \
        == (2, 2, 1, 1)
    assert changed_paths(patch) == ["x.py", "csrc/k.cu"]


def test_native_path_rules():
    rules = ["csrc/", "CMakeLists.txt", "setup.py", "requirements*"]
    assert touches_paths(["csrc/attention/kernel.cu"], rules)
    assert touches_paths(["requirements-cuda.txt"], rules)
    assert touches_paths(["CMakeLists.txt"], rules)
    assert not touches_paths(["vllm/csrc_helper.py", "tests/setup.py.txt"], rules)
