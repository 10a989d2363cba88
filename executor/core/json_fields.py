"""Parse only the fields of a JSON document that a reader uses.

A TRAE trajectory repeats the whole conversation in every `llm_interactions[].input_messages`:
ISO-Bench's 823 trajectories are 284 MB, and building Python objects for all of it was a third
of `isobench status`. A reader names what it reads as a TypedDict (total=False: keys the
document lacks stay absent, as in the full parse; values typed Any come back whole), and
msgspec skips everything else without building it. The result is the full parse's dict with
the other keys left out, so `.get` and `[...]` on it read the same values.

Whenever the typed decode fails (not JSON, not an object, a list that is not a list, NaN) the
document is parsed whole with pydantic_core as before: what a reader sees of an odd document,
and the error text of a broken one, do not depend on this shortcut. One difference remains: a
string that is skipped is not checked for valid UTF-8 (a file whose only fault is there is
read, where the whole parse refused it).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec
import pydantic_core


@cache  # one decoder per shape
def _decoder(shape: type) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(shape)


def load_fields(raw: bytes, shape: type) -> Any:
    """`raw` parsed keeping the keys `shape` names (at every depth it types); ValueError when
    it is not JSON, with pydantic_core's message."""
    try:
        return _decoder(shape).decode(raw)
    except msgspec.DecodeError:  # ValidationError included: an unexpected shape
        return pydantic_core.from_json(raw)
