"""safe_extract refuses what PEP 706's data filter refuses, also on a Python without it
(Debian bookworm's 3.11.2)."""

import io
import tarfile

import pytest

from executor.core.tarballs import safe_extract


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


def test_tar_mode_keeps_absolute_links_and_data_mode_refuses_them(python, tmp_path):
    """An agent bundle's venv links to the sandbox's own interpreter (build.export_image_path
    extracts with "tar"): refusing it broke every LLM agent on Python 3.11.2."""
    member = ("venv/bin/python3", None, "/usr/bin/python3")
    safe_extract(archive(("venv/bin/activate", b"x", ""), member), tmp_path / "t", mode="tar")
    assert (tmp_path / "t" / "venv" / "bin" / "python3").readlink().as_posix() == \
        "/usr/bin/python3"
    with pytest.raises(tarfile.TarError):
        safe_extract(archive(member), tmp_path / "d", mode="data")


@pytest.mark.parametrize("mode", ["tar", "data"])
def test_a_file_through_a_link_out_of_the_tree_is_refused(python, tmp_path, mode):
    outside = tmp_path / "outside"
    outside.mkdir()
    with pytest.raises(tarfile.TarError):
        safe_extract(archive(("d", None, str(outside)), ("d/f", b"x", "")), tmp_path / "t",
                     mode=mode)
    assert not (outside / "f").exists()


@pytest.mark.parametrize("mode", ["tar", "data"])
def test_setuid_and_group_write_bits_are_cleared(python, tmp_path, mode):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("tool")
        info.size, info.mode = 1, 0o4777
        tar.addfile(info, io.BytesIO(b"x"))
    buf.seek(0)
    safe_extract(tarfile.open(fileobj=buf), tmp_path / "t", mode=mode)
    assert (tmp_path / "t" / "tool").stat().st_mode & 0o7777 == 0o755
