"""Item archives between nodes: what travels, and how it lands (whole files, whole dirs)."""

import io
import tarfile

import pytest

from executor.runs.batch.artifacts import land_item_archive, pack_item_dir


def make_item(root):
    (root / "attempt-1").mkdir(parents=True)
    (root / "attempt-1" / "controller.log").write_text("worker log\n")
    (root / "manifest.json").write_text('{"node": true}')
    (root / "journal.json").write_text("the worker's journal")
    (root / "item.lock").write_text("the worker's lock")
    (root / ".journal.json.tmp123").write_text("half written")
    return root


def test_archive_carries_artifacts_but_never_journal_lock_or_temp_files(tmp_path):
    archive = pack_item_dir(make_item(tmp_path / "node" / "item"))
    driver = tmp_path / "driver" / "item"
    driver.mkdir(parents=True)
    (driver / "journal.json").write_text("the driver's journal")
    (driver / "item.lock").write_text("held by the driver")
    assert land_item_archive(archive, driver) == ["attempt-1", "manifest.json"]
    assert (driver / "attempt-1" / "controller.log").read_text() == "worker log\n"
    assert (driver / "journal.json").read_text() == "the driver's journal"
    assert (driver / "item.lock").read_text() == "held by the driver"
    assert sorted(p.name for p in driver.iterdir()) == ["attempt-1", "item.lock",
                                                        "journal.json", "manifest.json"]


def test_an_attempt_dir_landed_again_is_replaced_whole(tmp_path):
    driver = tmp_path / "driver"
    (driver / "attempt-1").mkdir(parents=True)
    (driver / "attempt-1" / "stale.txt").write_text("from an earlier landing")
    land_item_archive(pack_item_dir(make_item(tmp_path / "node")), driver)
    assert sorted(p.name for p in (driver / "attempt-1").iterdir()) == ["controller.log"]
    assert not [p for p in driver.iterdir() if p.name.startswith(".")]  # no leftovers


def test_an_archive_reaching_outside_the_item_dir_is_refused(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(tarfile.TarError):
        land_item_archive(buffer.getvalue(), tmp_path / "item")
    assert not (tmp_path / "escaped.txt").exists()
