"""The YAML writer: whatever we write, a YAML reader gets back exactly."""

import pytest
import yaml

from executor.core.yaml_emit import dump_yaml, quote

AWKWARD = ["no", "yes", "on", "null", "~", "1e3", "0x10", "1:2", "a: b", "# c", "- d", "[e]",
           "{f}", "'g'", '"h"', "back\\slash", "tab\there", "new\nline", "cr\rx", "  pad  ",
           "", "naïve", "模型", "emoji 😀", "nbsp\u00a0", "del\x7f", "nel\x85", "bom\ufeff",
           "\x00nul", "%percent", "@at", "`tick`", "*star", "&amp", "!bang", "|pipe", ">gt"]


@pytest.mark.parametrize("text", AWKWARD)
def test_strings_round_trip(text):
    assert yaml.safe_load(f"v: {quote(text)}") == {"v": text}


def test_nested_structures_round_trip():
    data = {"agents": {"trae_agent": {"model": "m", "max_steps": 3, "enable_lakeview": False,
                                      "tools": ["bash", "task_done"]}},
            "models": {"m": {"temperature": 0.5, "top_k": 0, "none": None, "empty": [],
                             "also_empty": {}}},
            "list_of_maps": [{"a": 1, "b": [1, 2]}, {"c": "d"}],
            "yes": "key that YAML would read as a boolean",
            "key with space": 1.25}
    assert yaml.safe_load(dump_yaml(data)) == data


def test_rejects_what_cannot_be_written():
    with pytest.raises(TypeError):
        dump_yaml(["not", "a", "mapping"])
    with pytest.raises(TypeError):
        dump_yaml({"x": object()})
    with pytest.raises(ValueError):
        dump_yaml({"x": float("nan")})
