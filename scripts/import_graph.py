#!/usr/bin/env python3
"""The import graph of executor/, held to the layer rules of docs/architecture.md.

executor/ is a stack of layer packages; a module may import its own layer and the layers below
it, never one above:

    core < records < engine < parts < runs < views < cli        (testing: beside, on core)

Rules checked (each violation is printed with the importing module and the imported one):
  layers     no import of a higher layer (nor of `testing` outside cli and testing)
  loose      executor/ holds only layer packages (and __init__.py): no loose modules
  cycles     no cycle between the units of one layer (a module, or a subpackage such as
             parts.bench) - e.g. parts.catalog uses parts.vllm, never the reverse
  engines    the container engine's SDK (docker) is imported by executor.engine.docker only;
             every other module reaches an engine through executor.engine.base

Every `import`/`from ... import` counts, those inside functions too (a deferred import is still
a dependency). Exits 1 on any violation.

    python scripts/import_graph.py [CHECKOUT]     # default: the checkout holding this script
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "executor"
LAYERS = ("core", "records", "engine", "parts", "runs", "views", "cli")
SIDE = {"testing": "core"}  # side package -> the highest layer it may import
ENGINE_SDKS = {"docker"}
ENGINE_MODULES = {"executor.engine.docker"}


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


def modules() -> dict[str, set[str]]:
    """Every module of executor/ -> the modules it imports."""
    return {module_name(path): imports_of(path) for path in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "executor" and len(parts) > 1 else None


def rank(layer: str) -> int:
    return LAYERS.index(SIDE.get(layer, layer)) if SIDE.get(layer, layer) in LAYERS else -1


def unit_of(module: str) -> str | None:
    """The cycle-check unit: executor.<layer>.<module or subpackage>."""
    parts = module.split(".")
    return ".".join(parts[:3]) if parts[0] == "executor" and len(parts) >= 3 else None


def is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (ROOT / rel).with_suffix(".py").is_file() or (ROOT / rel / "__init__.py").is_file()


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for source, targets in graph.items():
        src = layer_of(source)
        if src is None or source == "executor":
            continue
        for target in sorted(targets):
            dst = layer_of(target)
            if dst is None or dst == src or not is_module(target):
                continue
            if any(other.startswith(target + ".") and is_module(other) for other in targets):
                continue  # `from executor.x import y`: named once, by its deepest module
            if dst in SIDE and src not in SIDE and src != "cli":
                found.append(f"{source} imports {target}: `{dst}` is for tests and the cli")
            elif dst not in SIDE and rank(dst) > rank(src):
                found.append(f"{source} ({src}) imports {target} ({dst}): a higher layer")
    return found


def loose_modules() -> list[str]:
    allowed = set(LAYERS) | set(SIDE)
    found = [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    found += [p.name + "/" for p in PACKAGE.iterdir()
              if p.is_dir() and p.name not in allowed and not p.name.startswith("__")]
    return sorted(found)


def unit_edges(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """unit -> units of the same layer it imports."""
    edges: dict[str, set[str]] = {}
    for source, targets in graph.items():
        src = unit_of(source)
        for target in targets:
            dst = unit_of(target)
            if (src and dst and dst != src and layer_of(src) == layer_of(dst)
                    and is_module(dst)):
                edges.setdefault(src, set()).add(dst)
    return edges


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


def engine_sdk_importers(graph: dict[str, set[str]]) -> list[str]:
    return sorted(m for m, targets in graph.items()
                  if any(t.split(".")[0] in ENGINE_SDKS for t in targets))


def check(root: Path | None = None) -> dict[str, list]:
    """Every rule's violations (empty lists when the design holds)."""
    global ROOT, PACKAGE
    if root is not None:
        ROOT, PACKAGE = root.resolve(), root.resolve() / "executor"
    graph = modules()
    return {"layers": layer_violations(graph), "loose": loose_modules(),
            "cycles": cycles(unit_edges(graph)),
            "engines": [m for m in engine_sdk_importers(graph) if m not in ENGINE_MODULES]}


def main(argv: list[str]) -> int:
    found = check(Path(argv[0]) if argv else None)
    graph = modules()
    layers: dict[str, set[str]] = {}
    for source, targets in graph.items():
        for target in targets:
            src, dst = layer_of(source), layer_of(target)
            if src and dst and src != dst and is_module(target):
                layers.setdefault(src, set()).add(dst)
    print("layer -> layers it imports:")
    for layer in (*LAYERS, *SIDE):
        print(f"  {layer}: {', '.join(sorted(layers.get(layer, ()), key=rank)) or '-'}")
    print(f"engine SDK importers: {', '.join(engine_sdk_importers(graph)) or '-'}")
    for rule, violations in found.items():
        print(f"{rule}: {'ok' if not violations else f'{len(violations)} violation(s)'}")
        for violation in violations:
            print(f"  {violation}")
    return 1 if any(found.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
