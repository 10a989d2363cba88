"""Keep secrets out of everything isobench writes.

Secrets (API keys, HF tokens) reach containers only as exec-time environment variables. Anything
captured from those processes passes through a `Redactor` before it touches a file, a journal or
the console, because agents echo their environment more often than one would think.
"""

from __future__ import annotations

import os
import re
from typing import Iterable

MASK = "[REDACTED]"
MIN_SECRET_LEN = 6  # shorter values would mask ordinary words

# Environment variable names whose values are treated as secrets wherever they appear.
SECRET_ENV_PATTERN = re.compile(r"(API_KEY|_TOKEN|SECRET|PASSWORD|ACCESS_KEY)$", re.IGNORECASE)

# Shapes of well-known keys, masked even when we were never told the value.
KEY_SHAPES = re.compile(r"\b(sk-[A-Za-z0-9_\-]{16,}|hf_[A-Za-z0-9]{20,})\b")


def secret_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The subset of an environment (default: ours) that holds secrets."""
    env = dict(os.environ) if env is None else env
    return {k: v for k, v in env.items() if SECRET_ENV_PATTERN.search(k) and v}


def is_secret_key(name: str) -> bool:
    return bool(SECRET_ENV_PATTERN.search(name))


class Redactor:
    """Replaces every known secret value, and anything shaped like a key, with a mask."""

    def __init__(self, secrets: Iterable[str] = ()):
        self._secrets = sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LEN},
                               key=len, reverse=True)

    def with_secrets(self, secrets: Iterable[str]) -> "Redactor":
        return Redactor([*self._secrets, *secrets])

    def text(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return KEY_SHAPES.sub(MASK, text)

    def bytes(self, data: bytes) -> bytes:
        return self.text(data.decode("utf-8", errors="replace")).encode()

    def mapping(self, data: dict) -> dict:
        """A deep copy of a config mapping with secret-looking keys masked."""
        out: dict = {}
        for key, value in data.items():
            if isinstance(value, dict):
                out[key] = self.mapping(value)
            elif isinstance(value, str) and (is_secret_key(str(key)) or key == "api_key"):
                out[key] = MASK if value else value
            elif isinstance(value, str):
                out[key] = self.text(value)
            else:
                out[key] = value
        return out


class LineRedactor:
    """Streaming redaction: holds back an incomplete last line so a secret split across two
    chunks is still seen whole."""

    def __init__(self, redactor: Redactor):
        self._redactor = redactor
        self._pending = ""

    def feed(self, chunk: str) -> str:
        data = self._pending + chunk
        cut = data.rfind("\n") + 1
        if not cut and len(data) > self.MAX_PENDING:
            # Progress bars redraw with \r and never end a line. Keys hold no whitespace, so
            # cutting just after whitespace never splits a secret.
            cut = max(data.rfind(ch) for ch in " \r\t") + 1 or len(data)
        self._pending = data[cut:]
        return self._redactor.text(data[:cut]) if cut else ""

    MAX_PENDING = 64 * 1024

    def flush(self) -> str:
        rest, self._pending = self._pending, ""
        return self._redactor.text(rest)
