"""Where the gateway forwards an attempt's model calls, and the check that the key works.

The provider key lives here, in the controller's memory, and nowhere else: agents that go
through the gateway are given a per-attempt token instead (executor.parts.gateway.server).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

from pydantic import BaseModel, Field

from executor.core.errors import UserInputError
from executor.parts.upstream import OPENAI_BASE_URL, Upstream  # noqa: F401 (re-exported)

PREFLIGHT_TIMEOUT_S = 15
ANTHROPIC_VERSION = "2023-06-01"  # the Messages API's only version; its GET /models needs one


class ModelRoute(BaseModel):
    """What an agent is told instead of the provider: the gateway and its attempt token."""

    base_url: str = Field(description="The gateway's URL, ending in /v1.")
    api_key: str = Field(description="A random per-attempt token, revoked when the attempt "
                                     "ends; worthless outside this gateway.")


def check_upstream(upstream: Upstream) -> None:
    """One authenticated GET /models before any attempt starts: a missing, wrong or
    unreachable upstream is a one-line error (exit 2) instead of a batch of failed attempts."""
    key = upstream.api_key.get_secret_value()
    request = urllib.request.Request(upstream.url("models"), headers=(
        {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION}
        if upstream.wire == "anthropic" else {"Authorization": f"Bearer {key}"}))
    try:
        with urllib.request.urlopen(request, timeout=PREFLIGHT_TIMEOUT_S):
            return
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):
            raise UserInputError(
                f"{upstream.base_url} refused the key in ${upstream.api_key_env} "
                f"(HTTP {err.code}: {_message(err.read())})") from None
        if err.code in (404, 405):
            return  # some compatible servers have no /models; the key was not refused
        raise UserInputError(f"{upstream.base_url}/models answered HTTP {err.code}: "
                             f"{_message(err.read())}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserInputError(f"cannot reach the model endpoint {upstream.base_url}: "
                             f"{reason}") from None


MESSAGE_CHARS = 200
TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
TAG = re.compile(r"<[^>]+>")


def _message(raw: bytes) -> str:
    """One line from an error body: the OpenAI-style message, an HTML page's title (proxies
    answer with pages), else the text with its tags and line breaks gone."""
    try:
        text = str(json.loads(raw)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        title = TITLE.search(raw)
        text = TAG.sub(" ", (title.group(1) if title else raw).decode(errors="replace"))
    return " ".join(text.split())[:MESSAGE_CHARS]
