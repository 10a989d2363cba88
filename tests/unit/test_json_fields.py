"""Parsing only the fields a reader uses (core/json_fields.py): the same values as the whole
parse where it reads, the whole parse wherever the shortcut does not apply."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any, TypedDict

import pydantic_core
import pytest

from executor.core.json_fields import load_fields
from executor.parts.agents.trae_trajectory import OutcomeFields, read_trajectory
from executor.views.report.evidence import StepsFields, steps_from
from tests.unit.trae_fixtures import NO_TOOL_OUTPUT, PATCH_EMPTY, interaction, step

TRAE_FIXTURES = sorted((Path(__file__).parents[1] / "fixtures" / "trae").glob("*.json"))


class _Inner(TypedDict, total=False):
    kept: Any


class _Shape(TypedDict, total=False):
    name: Any
    items: list[_Inner] | None


def field_paths(shape: Any, prefix: str = "") -> set[str]:
    """Every key path a shape names ('agent_steps[].error')."""
    if typing.is_typeddict(shape):
        paths: set[str] = set()
        for key, hint in typing.get_type_hints(shape).items():
            path = f"{prefix}.{key}" if prefix else key
            paths |= {path} | field_paths(hint, path)
        return paths
    inner = f"{prefix}[]" if typing.get_origin(shape) is list else prefix
    return set().union(*(field_paths(a, inner) for a in typing.get_args(shape)))


def test_only_the_named_keys_are_kept_at_every_depth():
    raw = json.dumps({"name": "x", "big": ["a"] * 100, "items": [
        {"kept": {"deep": [1, 2.5, None, True]}, "dropped": "y" * 1000}, {}]}).encode()
    assert load_fields(raw, _Shape) == {"name": "x", "items": [
        {"kept": {"deep": [1, 2.5, None, True]}}, {}]}


def test_a_key_the_document_lacks_stays_absent_as_in_the_whole_parse():
    assert load_fields(b'{"items": null}', _Shape) == {"items": None}
    assert "name" not in load_fields(b"{}", _Shape)


@pytest.mark.parametrize("raw", [b'{"items": {"kept": 1}}', b'{"items": ["not an object"]}',
                                 b"[1, 2]", b'"text"', b'{"name": Infinity}'])
def test_an_unexpected_shape_is_parsed_whole(raw):
    assert load_fields(raw, _Shape) == pydantic_core.from_json(raw)


@pytest.mark.parametrize("raw", [b'{"name": "cut', b'{"name": 1} trailing', b"", b"{,}"])
def test_broken_json_fails_with_the_whole_parsers_message(raw):
    with pytest.raises(ValueError) as whole:
        pydantic_core.from_json(raw)
    with pytest.raises(ValueError) as shortcut:
        load_fields(raw, _Shape)
    assert str(shortcut.value) == str(whole.value)


def test_the_reports_fields_hold_the_outcomes():
    """The report parses each trajectory once for both its steps and the outcome."""
    missing = field_paths(OutcomeFields) - field_paths(StepsFields)
    assert not missing, f"StepsFields lacks what read_trajectory reads: {sorted(missing)}"


def _synthetic_trajectories() -> list[bytes]:
    nudged = [step(1), step(2, tool="task_done", messages=[PATCH_EMPTY]),
              step(3, error=NO_TOOL_OUTPUT, tool=None)]
    return [json.dumps({"task": "t", "start_time": "2025-11-05T10:00:00",
                        "end_time": "2025-11-05T10:10:00", "success": False,
                        "final_result": None, "execution_time": 600.0,
                        "llm_interactions": [interaction(content="x" * 5000)] * 3,
                        "agent_steps": nudged}).encode(),
            json.dumps({"agent_steps": [step(1), step(2, tool="task_done")], "success": True,
                        "llm_interactions": [interaction()] * 2, "end_time": ""}).encode()]


@pytest.mark.parametrize("raw", [p.read_bytes() for p in TRAE_FIXTURES]
                         + _synthetic_trajectories(),
                         ids=[p.stem for p in TRAE_FIXTURES] + ["must_patch", "finished"])
def test_outcome_and_steps_read_from_the_fields_equal_those_of_the_whole_parse(raw):
    whole = pydantic_core.from_json(raw)
    for shape in (OutcomeFields, StepsFields):
        assert read_trajectory(load_fields(raw, shape)) == read_trajectory(whole)
    path = Path("trajectory.json")
    assert steps_from(path, load_fields(raw, StepsFields)) == steps_from(path, whole)
