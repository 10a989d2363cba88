"""safe_extract refuses what PEP 706's data filter refuses, also on a Python without it
(Debian bookworm's 3.11.2)."""

import io
import tarfile

import pytest

from executor.tarballs import safe_extract


def archive(*members: tuple[str, bytes | None, str]) -> tarfile.TarFile:
    """(name, content or None, symlink target) -> an open in-memory tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content, target in members:
            info = tarfile.TarInfo(name)
            if target:
                info.type, info.linkname = tarfile.SYMTYPE, target
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    buf.seek(0)
    return tarfile.open(fileobj=buf)


@pytest.fixture(params=["with filter", "without filter"])
def python(request, monkeypatch):
    if request.param == "without filter":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    return request.param


def test_a_plain_tree_is_extracted(python, tmp_path):
    safe_extract(archive(("a/b.txt", b"hi", ""), ("a/link", None, "b.txt")), tmp_path)
    assert (tmp_path / "a" / "b.txt").read_bytes() == b"hi"


@pytest.mark.parametrize("member", [("../evil", b"x", ""),
                                    ("out", None, "../../etc/passwd")])
def test_members_that_leave_the_tree_are_refused(python, tmp_path, member):
    with pytest.raises(tarfile.TarError):  # FilterError, or UnsafeArchive without it
        safe_extract(archive(member), tmp_path / "dest")
    assert not (tmp_path / "evil").exists()
