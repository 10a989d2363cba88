"""Would two vLLM commits compile to the same x86 CPU extension (`vllm/_C.abi3.so`)?

The CPU build reads: CMakeLists.txt up to where it hands over to cmake/cpu_extension.cmake,
that file and cmake/utils.cmake, the sources cpu_extension.cmake lists, and the headers those
include. Everything is compared as text between the two trees (git blob ids first, so unchanged
files cost nothing); history is never consulted.

Two files on that path are shared with the CUDA build and change almost weekly for CUDA's sake:
csrc/ops.h (every op's declaration) and CMakeLists.txt (CUDA arch lists). Judging them as whole
files would reject nearly every commit for edits the CPU compiler never acts on, so they are
compared by what the CPU build can see of them:
- a shared header without the declarations (and inline or constexpr definitions) of names no
  other CPU input mentions: those emit no code (preprocessor lines and types are all kept);
- CMakeLists.txt's CPU prefix without `set()`s of variables nothing on the CPU path reads (and
  the if/else blocks left empty by that), and cmake/utils.cmake without the functions the CPU
  path never calls.
A plain (non-inline) function body in a header is always kept: it is code in the .so.
"""

from __future__ import annotations

import functools
import posixpath
import re

from executor.parts.vllm.mirror import CommitSource

CPU_CMAKE = "cmake/cpu_extension.cmake"
CMAKE_UTILS = "cmake/utils.cmake"
CMAKE_LISTS = "CMakeLists.txt"
CPU_DIR = "csrc/cpu/"
# What git is asked to diff: everything the rule can look at lies below these.
DIFF_PATHS: tuple[str, ...] = ("csrc/", "cmake/", CMAKE_LISTS)
_CMAKE_SOURCE = re.compile(r"csrc/[\w./+-]+\.(?:c|cc|cpp|cxx|h|hpp)\b")
_INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.MULTILINE)
_IDENT = re.compile(r"[A-Za-z_]\w*")
# `<type> [*&]name(` or `<type> name =`: a function or variable, not a macro call or a type.
_NAMED = re.compile(r"^[\w:<>,\s*&]*[\w>*&]\s+[*&]*(\w+)\s*[(=]")
# What emits no code while unused: declarations, and inline/constexpr/template definitions.
_NO_CODE = re.compile(r"\b(?:inline|constexpr|template)\b")
_CMAKE_BLOCK = re.compile(r"^\s*(function|macro)\s*\(\s*(\w+).*?^\s*end\1\s*\([^)]*\)",
                          re.IGNORECASE | re.MULTILINE | re.DOTALL)
_CMAKE_CALL = re.compile(r"\b(\w+)\s*\(")
_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
_CPU_RETURN = re.compile(r"include\([^)]*cpu_extension\.cmake\)(?:.|\n)*?return\(\)")
_CMAKE_SET = re.compile(r"\bset\(\s*(\w+)\b[^()]*(?:\([^()]*\)[^()]*)*\)", re.IGNORECASE)
_EMPTY_IF = re.compile(r"\bif\s*\([^()]*\)\s*(?:else\s*\(\s*\)\s*)?endif\s*\(\s*\)", re.IGNORECASE)


def cmake_sources(source: CommitSource, sha: str) -> set[str]:
    """Source files cpu_extension.cmake names at `sha` (every ISA's list: a superset)."""
    return set(_CMAKE_SOURCE.findall(source.read(sha, CPU_CMAKE) or ""))


@functools.lru_cache(maxsize=512)
def include_closure(source: CommitSource, sha: str) -> frozenset[str]:
    """Repository files the CPU compile reads at `sha`: the listed sources and every quoted
    #include they reach, resolved beside the includer and then under csrc/ (the one include
    directory cpu_extension.cmake adds). System and oneDNN headers are not in the tree."""
    seen: set[str] = set()
    todo = sorted(cmake_sources(source, sha))
    while todo:
        path = todo.pop()
        text = source.read(sha, path)
        if path in seen or text is None:
            continue
        seen.add(path)
        for name in _INCLUDE.findall(text):
            for base in (posixpath.dirname(path), "csrc"):
                target = posixpath.normpath(posixpath.join(base, name))
                if target not in seen and source.read(sha, target) is not None:
                    todo.append(target)
                    break
    return frozenset(seen)


def _units(text: str) -> list[str]:
    """A header as top-level units: preprocessor lines, and declarations or definitions up to
    their closing `;` or `}`, each with whitespace collapsed."""
    units, buf, depth = [], [], 0
    for line in _COMMENTS.sub("", text).splitlines():
        if not buf and line.lstrip().startswith("#"):
            units.append(" ".join(line.split()))
            continue
        if not buf and not line.strip():
            continue
        # namespace braces open and close no unit: what is inside is judged one by one
        if not buf and re.fullmatch(r"\s*(?:namespace\s*[\w:]*\s*\{|\}\s*;?)\s*", line):
            units.append(" ".join(line.split()))
            continue
        buf.append(line)
        depth += line.count("{") + line.count("(") - line.count("}") - line.count(")")
        if depth <= 0 and line.rstrip().endswith((";", "}")):
            units.append(" ".join(" ".join(buf).split()))
            buf, depth = [], 0
    if buf:
        units.append(" ".join(" ".join(buf).split()))
    return units


def header_view(text: str | None, used: frozenset[str]) -> list[str] | None:
    """The header less what no other CPU input names and emits no code unused: declarations
    and inline/constexpr/template definitions (a plain function body is kept: it is code)."""
    if text is None:
        return None
    out = []
    for unit in _units(text):
        head, brace, _ = unit.partition("{")
        m = _NAMED.match(head)
        if m and m.group(1) not in used and (not brace or _NO_CODE.search(head)
                                             or head.rstrip().endswith("=")):
            continue
        out.append(unit)
    return out


def cmake_utils_view(utils: str | None, callers: str) -> str | None:
    """cmake/utils.cmake with only the functions and macros `callers` (the rest of the CPU
    path) reaches, directly or through each other: hipify and CUDA arch helpers drop out."""
    if utils is None:
        return None
    text = re.sub(r"#[^\n]*", "", utils)
    blocks = {m.group(2).lower(): m.group(0) for m in _CMAKE_BLOCK.finditer(text)}
    rest = _CMAKE_BLOCK.sub("", text)
    todo = [c.lower() for c in _CMAKE_CALL.findall(callers + rest)]
    reached: set[str] = set()
    while todo:
        name = todo.pop()
        if name in blocks and name not in reached:
            reached.add(name)
            todo += [c.lower() for c in _CMAKE_CALL.findall(blocks[name])]
    return " ".join((rest + "".join(blocks[n] for n in sorted(reached))).split())


def cmake_cpu_view(cmake_lists: str | None, cpu_path: str) -> str | None:
    """CMakeLists.txt up to the CPU hand-over, without comments and without set()s of
    variables that neither the rest of it nor `cpu_path` (the CPU cmake files) mention."""
    if cmake_lists is None:
        return None
    text = re.sub(r"#[^\n]*", "", cmake_lists)
    m = _CPU_RETURN.search(text)
    text = text[:m.end()] if m else text

    def unread(match: re.Match[str]) -> str:
        name = match.group(1)
        # read anywhere but in its own set()s (an if/else may set it twice)
        rest = re.sub(rf"\bset\(\s*{name}\b[^()]*\)", "", text, flags=re.IGNORECASE)
        return "" if not re.search(rf"\b{name}\b", rest + cpu_path) else match.group(0)

    text = _CMAKE_SET.sub(unread, text)
    while (stripped := _EMPTY_IF.sub("", text)) != text:
        text = stripped
    return " ".join(text.split())


@functools.lru_cache(maxsize=4096)
def _identifiers(source: CommitSource, sha: str, path: str) -> frozenset[str]:
    return frozenset(_IDENT.findall(_COMMENTS.sub("", source.read(sha, path) or "")))


def _used_elsewhere(source: CommitSource, sha: str, header: str) -> frozenset[str]:
    """Names the CPU compile's other files mention: what `header` must keep."""
    names: set[str] = set()
    for path in include_closure(source, sha):
        if path != header:
            names |= _identifiers(source, sha, path)
    return frozenset(names)


def native_differences(source: CommitSource, old: str, new: str) -> list[str]:
    """CPU-build inputs that differ between two commits (empty: the same .so would be built)."""
    changed = source.changed_paths(old, new, DIFF_PATHS)
    direct = cmake_sources(source, old) | cmake_sources(source, new) | {CPU_CMAKE}
    hits = [p for p in changed if p in direct or p.startswith(CPU_DIR)]
    shared = [p for p in changed if p.startswith("csrc/") and p not in hits]
    if shared:
        closure = include_closure(source, old) | include_closure(source, new)
        for path in shared:
            if path not in closure:
                continue
            used = _used_elsewhere(source, old, path) | _used_elsewhere(source, new, path)
            if header_view(source.read(old, path), used) != header_view(source.read(new, path),
                                                                        used):
                hits.append(path)
    for path, view in ((CMAKE_LISTS, _cmake_lists_view), (CMAKE_UTILS, _cmake_utils_view)):
        if path in changed and view(source, old) != view(source, new):
            hits.append(path)
    return sorted(set(hits))


def _cmake_lists_view(source: CommitSource, sha: str) -> str | None:
    cpu_path = (source.read(sha, CPU_CMAKE) or "") + (source.read(sha, CMAKE_UTILS) or "")
    return cmake_cpu_view(source.read(sha, CMAKE_LISTS), cpu_path)


def _cmake_utils_view(source: CommitSource, sha: str) -> str | None:
    callers = (cmake_cpu_view(source.read(sha, CMAKE_LISTS), "") or "") + (
        source.read(sha, CPU_CMAKE) or "")
    return cmake_utils_view(source.read(sha, CMAKE_UTILS), callers)
