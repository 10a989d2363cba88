"""codex CLI in ISO-Bench's state: its "usage limit reached" 429 is only on stderr (empty
stdout, exit 1, empty patch); read there it is a named failure, not `unknown`."""

from __future__ import annotations

import json

from executor.views.status import build_report
from tests.unit.isobench_state import _journal, write_isobench_state

USAGE_LIMIT = (
    "mcp startup: no servers\n"
    '2026-01-20T19:19:12.807697Z ERROR codex_api::endpoint::responses: error=http 429 Too Many '
    'Requests: Some("{\\"error\\":{\\"type\\":\\"usage_limit_reached\\",\\"message\\":\\"The '
    'usage limit has been reached\\"}}")\n'
    "ERROR: You've hit your usage limit. Upgrade to Pro or try again at 11:04 PM.\n")


def test_codex_cli_usage_limit_is_read_from_stderr(tmp_path):
    state = write_isobench_state(tmp_path)
    item_dir = state / "runs" / "vllm" / "codex_cli" / "default" / "2026-01-20_18-16-02" / \
        "vllm_core-0002"
    item_dir.mkdir(parents=True)
    journal = {**_journal(2, "error"), "trae": None,
               "codex_cli": {"cli": "codex", "returncode": 1, "duration_s": 0.8}}
    (item_dir / "journal.json").write_text(json.dumps(journal))
    (item_dir / "model_patch.diff").write_text("")
    (item_dir / "openhands_stdout.txt").write_text("")
    (item_dir / "openhands_stderr.txt").write_text(USAGE_LIMIT)
    run = next(r for r in build_report(state).runs if r.agent == "codex_cli")
    (item,) = run.items
    assert item.sequence == ["quota_exhausted"] and item.state == "failed"
    assert item.fix.startswith("after the key's quota is topped up")
    assert run.error_rate == 1.0 and run.unknown == 0
    assert run.durations.phases_s == {"agent": 0.8}  # from the `codex_cli` block
