"""One writer of an item's journal.json and manifest.json: records/state.py's save_journal and
save_manifest. Read from the source: any other module that writes a file named by JOURNAL_NAME
or MANIFEST_NAME (or a journal/manifest path) with the atomic writers breaks the rule."""

import ast
from pathlib import Path

from tests.conftest import REPO_ROOT

WRITERS = {"write_json_atomic", "write_bytes_atomic"}
RECORD_WORDS = ("JOURNAL_NAME", "MANIFEST_NAME", "journal", "manifest")
THE_WRITER = REPO_ROOT / "executor" / "records" / "state.py"


def record_writes(path: Path) -> list[str]:
    """`file:line call` of each atomic write whose target names a journal or manifest."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        target = ast.unparse(node.args[0])
        # what the path ends in: `dir / NAME` by its last part, a variable by its name
        last = node.args[0].right if isinstance(node.args[0], ast.BinOp) else node.args[0]
        if name in WRITERS and any(word in ast.unparse(last) for word in RECORD_WORDS):
            found.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} {name}({target}, ...)")
    return found


def test_only_the_records_layer_writes_journals_and_manifests():
    found = [hit for path in sorted((REPO_ROOT / "executor").rglob("*.py"))
             if path != THE_WRITER for hit in record_writes(path)]
    # the image manifest of a vLLM build (image-<sha>.json) is another file, named so
    allowed = [hit for hit in found if "commit_image.py" in hit]
    assert found == allowed


def test_the_check_sees_a_second_writer(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text("write_json_atomic(item_dir / MANIFEST_NAME, manifest)\n"
                       "write_json_atomic(journal_path, journal)\n")
    planted = planted.rename(REPO_ROOT / "tests" / "unit" / "_planted_writer.py")
    try:
        assert len(record_writes(planted)) == 2
    finally:
        planted.unlink()


def test_the_writer_is_where_the_rule_says():
    assert len(record_writes(THE_WRITER)) == 2  # save_journal and save_manifest
