#!/usr/bin/env python3
"""The import graph of executor/: package-level cycles, and which modules import the Docker SDK.

Every `import`/`from ... import` counts, those inside functions too (a deferred import is still
a dependency). Nodes are executor's subpackages (executor.parts.vllm, executor.parts.catalog, ...) and its
top-level modules (executor.runs.pipeline, ...), each its own node. Prints the edges between
subpackages, any cycle, and the Docker importers; exits 1 when the design is broken (a cycle,
or the Docker SDK imported outside sandbox.py and build.py).

    python scripts/import_graph.py [CHECKOUT]     # default: the checkout holding this script
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "executor"
DOCKER_MODULES = {"executor.engine.sandbox", "executor.engine.images"}  # the design's two


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Absolute module names that `path` imports (relative imports resolved)."""
    found: set[str] = set()
    this = module_name(path)
    here = this if path.name == "__init__.py" else this.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here.split(".")[: len(here.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def node_of(module: str) -> str | None:
    """The graph node a module belongs to: its subpackage, or itself at the top level."""
    parts = module.split(".")
    if parts[0] != "executor" or len(parts) < 2:
        return None
    candidate = PACKAGE / parts[1]
    if candidate.is_dir():
        return f"executor.{parts[1]}"
    return f"executor.{parts[1]}" if (PACKAGE / f"{parts[1]}.py").is_file() else None


def graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(node -> nodes it imports, module -> third-party roots it imports)."""
    edges: dict[str, set[str]] = {}
    external: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        src = node_of(module_name(path)) or "executor"
        for target in imports_of(path):
            if target.startswith("executor"):
                dst = node_of(target)
                if dst and dst != src:
                    edges.setdefault(src, set()).add(dst)
            else:
                external.setdefault(module_name(path), set()).add(target.split(".")[0])
    return edges, external


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def subpackage_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Cycles between subpackages: A imports B (directly) and B imports A, for directories."""
    packages = {n for n in edges if (PACKAGE / n.split(".")[1]).is_dir()}
    only = {n: {m for m in targets if m in packages} for n, targets in edges.items()
            if n in packages}
    return cycles(only)


def docker_importers(external: dict[str, set[str]]) -> list[str]:
    return sorted(m for m, roots in external.items() if "docker" in roots)


def main() -> int:
    edges, external = graph()
    packages = sorted(n for n in edges if (PACKAGE / n.split(".")[1]).is_dir())
    print("subpackage -> subpackages it imports:")
    for node in packages:
        targets = sorted(t for t in edges[node] if t in packages)
        print(f"  {node}: {', '.join(targets) or '-'}")
    found = subpackage_cycles(edges)
    print(f"cycles between subpackages: {found or 'none'}")
    docker = docker_importers(external)
    print(f"modules importing the Docker SDK ({len(docker)}): {', '.join(docker)}")
    return 0 if not found and set(docker) == DOCKER_MODULES else 1


if __name__ == "__main__":
    if len(sys.argv) > 1:  # another checkout, e.g. to see what a branch fixed
        ROOT = Path(sys.argv[1]).resolve()
        PACKAGE = ROOT / "executor"
    sys.exit(main())
