"""Moving an item's files between nodes: a Ray task writes under its node's own state dir and
returns the item directory as a tar archive; the driver lands it in its state dir.

Landing is atomic per entry: the archive is unpacked into a hidden directory beside the target
(same filesystem), then each file is `os.replace`d into place and `attempt-<n>/` is renamed in
whole, so a reader (or a kill -9) never sees half an attempt dir or half a file. The journal and
the lock are never carried: the driver's journal is written by the dispatcher alone (it records
the attempt the task returns), and its lock is the driver's flock.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from executor.records.state import JOURNAL_NAME, LOCK_NAME
from executor.core.tarballs import safe_extract

NOT_CARRIED = frozenset({JOURNAL_NAME, LOCK_NAME})


def _carried(name: str) -> bool:
    # Hidden names are temp files of atomic writes in progress (journal.write_bytes_atomic).
    return name not in NOT_CARRIED and not name.startswith(".")


def pack_item_dir(item_dir: Path) -> bytes:
    """The item directory as a gzipped tar (paths relative to it), journal and lock left out."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for entry in sorted(item_dir.iterdir()) if item_dir.is_dir() else []:
            if _carried(entry.name) and (entry.is_file() or entry.is_dir()):
                tar.add(entry, arcname=entry.name, recursive=True)
    return buffer.getvalue()


def land_item_archive(archive: bytes, item_dir: Path) -> list[str]:
    """Unpack `pack_item_dir`'s archive into `item_dir`, entry by entry atomically.
    Returns the top-level names landed."""
    item_dir.mkdir(parents=True, exist_ok=True)
    incoming = Path(tempfile.mkdtemp(prefix=".incoming-", dir=item_dir))
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            # The "data" filter refuses absolute paths, `..`, links out of the tree and devices.
            safe_extract(tar, incoming)
        landed = []
        for entry in sorted(incoming.iterdir()):
            if not _carried(entry.name):
                continue
            target = item_dir / entry.name
            if entry.is_dir():
                _replace_dir(entry, target)
            else:
                os.replace(entry, target)
            landed.append(entry.name)
        return landed
    finally:
        shutil.rmtree(incoming, ignore_errors=True)


def _replace_dir(source: Path, target: Path) -> None:
    """Rename `source` to `target`; an existing `target` (an attempt dir landed twice, say) is
    moved aside first and removed after, so `target` is always whole."""
    if target.exists():
        aside = Path(tempfile.mkdtemp(prefix=".replaced-", dir=target.parent))
        os.replace(target, aside / target.name)
        os.replace(source, target)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(source, target)
