"""The design's import rules, read from the source (scripts/import_graph.py): no cycle between
executor's subpackages (catalog uses vllm, never the reverse), and the Docker SDK imported by
exactly sandbox.py and build.py."""

import importlib.util

from tests.conftest import REPO_ROOT

spec = importlib.util.spec_from_file_location("import_graph",
                                              REPO_ROOT / "scripts" / "import_graph.py")
import_graph = importlib.util.module_from_spec(spec)
spec.loader.exec_module(import_graph)


def test_no_cycle_between_executor_subpackages():
    edges, _ = import_graph.graph()
    assert "executor.parts.vllm" in edges.get("executor.parts.catalog", set())  # the graph is read at all
    assert import_graph.subpackage_cycles(edges) == []


def test_the_docker_sdk_is_imported_by_sandbox_and_build_only():
    _, external = import_graph.graph()
    assert import_graph.docker_importers(external) == ["executor.engine.images", "executor.engine.sandbox"]


def test_a_cycle_is_found_when_there_is_one():
    edges = {"executor.a": {"executor.b"}, "executor.b": {"executor.c"},
             "executor.c": {"executor.a"}, "executor.d": {"executor.a"}}
    assert import_graph.cycles(edges) == [["executor.a", "executor.b", "executor.c"]]
