"""Synthetic ISO-Bench run directories and TRAE trajectories, written from the formats in
FIELD_NOTES sections 2 and 3 (no real run data is copied)."""

from __future__ import annotations

import json
from pathlib import Path

PATCH_EMPTY = ("ERROR! Your Patch is empty. Please provide a patch that fixes the problem.")
NO_TOOL_OUTPUT = ("Error code: 400 - {'error': {'message': 'No tool output found for function "
                  "call call_5.', 'type': 'invalid_request_error', 'param': 'input', "
                  "'code': None}}")


def interaction(input_tokens: int = 1000, output_tokens: int = 50, content: str = "") -> dict:
    return {"timestamp": "2025-11-05T10:00:01", "provider": "openai", "model": "gpt-5",
            "input_messages": [{"role": "user", "content": content or "work on it"}],
            "response": {"content": "", "model": "gpt-5", "finish_reason": "tool_calls",
                         "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                                   "cache_creation_input_tokens": 0,
                                   "cache_read_input_tokens": 200, "reasoning_tokens": 10},
                         "tool_calls": None},
            "tools_available": ["bash", "task_done"]}


def step(number: int, *, state: str = "completed", tool: str | None = "bash",
         error: str | None = None, messages: list[str] | None = None) -> dict:
    call = ({"call_id": f"call_{number}", "name": tool, "arguments": {}, "id": None}
            if tool else None)
    return {"step_number": number, "timestamp": "2025-11-05T10:00:02", "state": state,
            "llm_messages": [{"role": "user", "content": m} for m in messages or []] or None,
            "llm_response": {"content": "", "model": "gpt-5", "finish_reason": "tool_calls",
                             "usage": None, "tool_calls": [call] if call else None},
            "tool_calls": [call] if call and tool != "task_done" else None,
            "tool_results": ([{"call_id": call["call_id"], "success": True, "result": "ok",
                               "error": None, "id": None}]
                             if call and tool != "task_done" else None),
            "reflection": None, "error": error}


def trajectory(steps: list[dict], *, success: bool, final_result: str | None = None,
               interactions: int = 3, finished: bool = True) -> dict:
    return {"task": "make it faster", "start_time": "2025-11-05T10:00:00",
            "end_time": "2025-11-05T10:20:00" if finished else "", "provider": "openai",
            "model": "gpt-5", "max_steps": 120,
            "llm_interactions": [interaction() for _ in range(interactions)],
            "agent_steps": steps, "success": success, "final_result": final_result,
            "execution_time": 1200.0 if finished else 0.0}


def genuine_success() -> dict:
    return trajectory([step(1), step(2, tool="task_done")], success=True, final_result="done")


def must_patch_death() -> dict:
    """The 138-run failure: task_done, 'Patch is empty', then the 400 on the unpaired call."""
    return trajectory([step(1), step(2, tool="task_done"),
                       step(3, tool=None, error=NO_TOOL_OUTPUT, messages=[PATCH_EMPTY])],
                      success=False, final_result=None)


def isobench_journal(item_id: str, status: str, human: str, **extra) -> dict:
    return {"task_id": "vllm_core", "commits": {"pre": "", "human": human},
            "agent_branch": f"agent/vllm_core/{item_id}", "status": status,
            "run_metadata": {"repo": "vllm", "agent": "trae", "model": "gpt-5"},
            "metrics": {"time_to_first_edit_s": 30.0, "commit_count": 1, "patch_size_loc": 10,
                        "changed_files_count": 1, "violations_count": 0},
            "trae": {"cli": "trae-cli run", "time_budget_minutes": 120, "returncode": 0,
                     "duration_s": 1200.0},
            "timestamps": {"written": "2025-11-05T10:20:05"}, **extra}


def write_isobench_item(runs: Path, stamp: str, item_id: str, journal: dict,
                        traj: dict | None, patch: str | None = "diff --git a/x b/x\n") -> Path:
    item_dir = runs / "vllm_core" / "trae" / "gpt-5" / stamp / item_id
    item_dir.mkdir(parents=True)
    (item_dir / "journal.json").write_text(json.dumps(journal))
    if traj is not None:
        (item_dir / "trajectory.json").write_text(json.dumps(traj))
    if patch is not None:
        (item_dir / "model_patch.diff").write_text(patch)
    for name in ("task.txt", "trae_stdout.txt", "trae_stderr.txt"):
        (item_dir / name).write_text("")
    return item_dir
