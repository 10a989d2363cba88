"""Extract a tar archive the safe way on every Python isobench supports.

`TarFile.extractall(filter=...)` (PEP 706) exists from Python 3.11.4 on; Debian bookworm's
3.11.2 lacks it, and the README promises 3.11. Where the filter exists it is used as is; where
it does not, each member is checked here by the same rules as it is extracted: for both modes
no path that leaves the tree (links extracted so far followed) and no setuid/setgid or
group/other write bits; for "data" also no absolute link or link out of the tree, no device or
fifo, and no ownership from the archive. ("tar" allows absolute links: an agent bundle's venv
points at the sandbox's /usr/bin/python3.)
"""

from __future__ import annotations

import copy
import os
import tarfile
from pathlib import Path
from typing import Iterable, Literal


class UnsafeArchive(tarfile.TarError):
    """A member that the extraction filter refuses (a TarError, as PEP 706's FilterError is)."""


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def _checked(member: tarfile.TarInfo, root: str, mode: str) -> tarfile.TarInfo:
    """The member as PEP 706's filter `mode` would extract it, or UnsafeArchive.

    Both modes: a leading "/" is dropped; the path, with the links extracted so far followed,
    must stay under `root`; setuid/setgid/sticky and group/other write bits are cleared.
    "data" also refuses links that are absolute or point out of the tree and special files,
    makes regular files owner-read-writable, and ignores ownership (uid/gid None)."""
    name = member.name.lstrip("/")
    if os.path.isabs(name) or not _inside(os.path.realpath(os.path.join(root, name)), root):
        raise UnsafeArchive(f"{member.name!r} would land outside the destination")
    checked = copy.copy(member)
    checked.name = name
    bits = member.mode & 0o755
    if mode == "data":
        if member.issym() or member.islnk():
            base = os.path.dirname(name) if member.issym() else ""
            if os.path.isabs(member.linkname) or not _inside(
                    os.path.realpath(os.path.join(root, base, member.linkname)), root):
                raise UnsafeArchive(f"{member.name!r} links outside the destination")
        if not (member.isreg() or member.islnk() or member.isdir() or member.issym()):
            raise UnsafeArchive(f"{member.name!r} is a device or fifo")
        if member.isreg() or member.islnk():
            bits = (bits if bits & 0o100 else bits & ~0o111) | 0o600
        checked.uid = checked.gid = None  # type: ignore[assignment]
        checked.uname = checked.gname = None  # type: ignore[assignment]
    checked.mode = bits
    return checked


def safe_extract(tar: tarfile.TarFile, dest: Path | str,
                 members: Iterable[tarfile.TarInfo] | None = None,
                 mode: Literal["data", "tar"] = "data") -> None:
    """`tar.extractall(dest, members, filter=mode)`, also where the filter does not exist."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, members=members, filter=mode)
        return
    root = os.path.realpath(dest)
    os.makedirs(root, exist_ok=True)
    directories = []
    # One member at a time: each is checked against the links extracted before it, as the
    # filter does.
    for member in (members if members is not None else tar.getmembers()):
        checked = _checked(member, root, mode)
        path = os.path.join(root, checked.name)
        # "data" ignores ownership: no attributes from the archive but the mode and mtime
        # (set below); directories get theirs last, so a read-only one cannot block its files.
        tar.extract(checked, root, set_attrs=mode == "tar" and not checked.isdir())
        if checked.isdir():
            directories.append((path, checked))
        elif mode == "data" and not checked.issym():
            os.chmod(path, checked.mode)
            os.utime(path, (checked.mtime, checked.mtime))
    for path, checked in reversed(directories):
        os.chmod(path, checked.mode)
        os.utime(path, (checked.mtime, checked.mtime))
