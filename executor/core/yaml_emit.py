"""Write agent config files as YAML without a YAML library.

Agents (TRAE, mini-swe-agent) read YAML configs; we only ever *write* them, from plain dicts of
strings, numbers, booleans and lists. Every string is emitted double-quoted with every character
outside printable ASCII escaped, so no value can be read back as another type ("no", "1e3",
"null"), break the structure (": ", "#", newlines) or trip a parser's non-printable check.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterator, Mapping

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
# Words a YAML 1.1 reader (PyYAML) turns into booleans or null when unquoted.
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "none", "~"}
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def dump_yaml(data: Mapping[str, Any]) -> str:
    """Block-style YAML for a mapping of scalars, lists and mappings."""
    if not isinstance(data, Mapping):
        raise TypeError("the top level of a YAML config must be a mapping")
    return "\n".join(_block(data, 0)) + "\n"


def quote(text: str) -> str:
    """A double-quoted YAML scalar that reads back as exactly `text`."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def _key(key: Any) -> str:
    text = str(key)
    plain = _PLAIN_KEY.match(text) and text.lower() not in _RESERVED
    return text if plain else quote(text)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value!r} to a config file")
        return repr(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, Mapping) and not value:
        return "{}"
    if isinstance(value, (list, tuple)) and not value:
        return "[]"
    raise TypeError(f"cannot write {type(value).__name__} to a config file")


def _is_block(value: Any) -> bool:
    return isinstance(value, (Mapping, list, tuple)) and bool(value)


def _block(value: Mapping | list | tuple, indent: int) -> Iterator[str]:
    pad = " " * indent
    if isinstance(value, Mapping):
        for key, item in value.items():
            if _is_block(item):
                yield f"{pad}{_key(key)}:"
                yield from _block(item, indent + 2)
            else:
                yield f"{pad}{_key(key)}: {_scalar(item)}"
        return
    for item in value:
        if _is_block(item):
            yield f"{pad}-"
            yield from _block(item, indent + 2)
        else:
            yield f"{pad}- {_scalar(item)}"
