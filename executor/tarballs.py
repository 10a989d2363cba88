"""Extract a tar archive the safe way on every Python isobench supports.

`TarFile.extractall(filter=...)` (PEP 706) exists from Python 3.11.4 on; Debian bookworm's
3.11.2 lacks it, and the README promises 3.11. Where the filter exists it is used as is; where
it does not, members are checked here with the same rules before extraction: no absolute path,
no `..`, no link that leaves the tree, and (for "data") no device or fifo.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path
from typing import Iterable, Literal


class UnsafeArchive(tarfile.TarError):
    """A member that the extraction filter refuses (a TarError, as PEP 706's FilterError is)."""


def _escapes(name: str) -> bool:
    return os.path.isabs(name) or ".." in Path(name).parts


def _check(member: tarfile.TarInfo, mode: str) -> None:
    if _escapes(member.name):
        raise UnsafeArchive(f"{member.name!r} would land outside the destination")
    if member.issym() and (os.path.isabs(member.linkname) or _escapes(
            os.path.normpath(os.path.join(os.path.dirname(member.name), member.linkname)))):
        raise UnsafeArchive(f"{member.name!r} links outside the destination")
    if member.islnk() and _escapes(member.linkname):
        raise UnsafeArchive(f"{member.name!r} links outside the destination")
    if mode == "data" and (member.isdev() or member.isfifo()):
        raise UnsafeArchive(f"{member.name!r} is a device or fifo")


def safe_extract(tar: tarfile.TarFile, dest: Path | str,
                 members: Iterable[tarfile.TarInfo] | None = None,
                 mode: Literal["data", "tar"] = "data") -> None:
    """`tar.extractall(dest, members, filter=mode)`, also where the filter does not exist."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, members=members, filter=mode)
        return
    chosen = list(members) if members is not None else tar.getmembers()
    for member in chosen:
        _check(member, mode)
    tar.extractall(dest, members=chosen)  # noqa: S202 - checked above
