"""The layer rules of docs/architecture.md, read from the source (scripts/import_graph.py): the
real tree obeys them, and a copy of it with one planted violation of each rule fails."""

import importlib.util
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "import_graph.py"
spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
import_graph = importlib.util.module_from_spec(spec)
spec.loader.exec_module(import_graph)


def test_the_tree_obeys_every_layer_rule():
    found = import_graph.check(REPO_ROOT)
    assert found == {"layers": [], "loose": [], "cycles": [], "engines": []}


def test_the_layers_are_read_at_all():
    graph = import_graph.modules()
    # the graph holds real edges: the catalogue uses the vLLM part, the pipeline the sandbox
    assert any(t.startswith("executor.parts.vllm") for t in graph["executor.parts.catalog"])
    assert "executor.engine.sandbox" in graph["executor.runs.pipeline"]


@pytest.fixture
def tree_copy(tmp_path):
    shutil.copytree(REPO_ROOT / "executor", tmp_path / "executor",
                    ignore=shutil.ignore_patterns("__pycache__", "data", "tree", "commits"))
    return tmp_path


PLANTED = {
    # a lower layer reaching up: the journal's models importing the pipeline
    "layers": ("executor/core/journal.py", "from executor.runs.pipeline import RunOptions\n"),
    # the Docker SDK outside the engine module
    "engines": ("executor/parts/bench/run.py", "import docker\n"),
    # a cycle inside one layer: the vLLM part importing the catalogue that imports it
    "cycles": ("executor/parts/vllm/jobs.py", "from executor.parts.catalog import catalog_task\n"),
    # production code importing the scripted test servers
    "testing": ("executor/runs/pipeline.py", "from executor.testing import scripted_llm\n"),
}


@pytest.mark.parametrize("rule", sorted(PLANTED))
def test_a_planted_violation_fails_the_check(tree_copy, rule):
    path, line = PLANTED[rule]
    target = tree_copy / path
    target.write_text(target.read_text() + "\n" + line)
    proc = subprocess.run([sys.executable, str(SCRIPT), str(tree_copy)], capture_output=True,
                          text=True)
    assert proc.returncode == 1, proc.stdout
    expected_rule = "layers" if rule == "testing" else rule
    assert f"{expected_rule}: 1 violation(s)" in proc.stdout, proc.stdout
    assert ".".join(path.removesuffix(".py").split("/")[:3]) in proc.stdout  # names the culprit


def test_a_loose_module_at_the_top_fails_the_check(tree_copy):
    (tree_copy / "executor" / "helpers.py").write_text("X = 1\n")
    proc = subprocess.run([sys.executable, str(SCRIPT), str(tree_copy)], capture_output=True,
                          text=True)
    assert proc.returncode == 1
    assert "loose: 1 violation(s)" in proc.stdout and "helpers.py" in proc.stdout


def test_a_cycle_is_found_when_there_is_one():
    edges = {"executor.a": {"executor.b"}, "executor.b": {"executor.c"},
             "executor.c": {"executor.a"}, "executor.d": {"executor.a"}}
    assert import_graph.cycles(edges) == [["executor.a", "executor.b", "executor.c"]]
