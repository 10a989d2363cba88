"""Where the gateway forwards an attempt's model calls, and the check that the key works.

The provider key lives here, in the controller's memory, and nowhere else: agents that go
through the gateway are given a per-attempt token instead (executor.gateway.server).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from executor.errors import UserInputError
from executor.pricing import PriceTable

OPENAI_BASE_URL = "https://api.openai.com/v1"
PREFLIGHT_TIMEOUT_S = 15


class Upstream(BaseModel):
    """An OpenAI-compatible provider and the key the gateway forwards with."""

    model_config = ConfigDict(frozen=True)

    base_url: str = Field(description="Provider URL ending in /v1 (or its equivalent).")
    api_key: SecretStr = Field(description="Provider key; only ever in the controller's memory.")
    api_key_env: str = Field(default="OPENAI_API_KEY",
                             description="Host variable the key came from (named in errors).")
    model: str = Field(default="none", description="Model the agent was configured with.")
    prices: PriceTable | None = Field(default=None,
                                      description="Prices for the cost of each call.")

    def url(self, tail: str) -> str:
        """`tail` (the part after /v1 of the gateway's path) on the provider."""
        return self.base_url.rstrip("/") + "/" + tail.lstrip("/")


class ModelRoute(BaseModel):
    """What an agent is told instead of the provider: the gateway and its attempt token."""

    base_url: str = Field(description="The gateway's URL, ending in /v1.")
    api_key: str = Field(description="A random per-attempt token, revoked when the attempt "
                                     "ends; worthless outside this gateway.")


def check_upstream(upstream: Upstream) -> None:
    """One authenticated GET /models before any attempt starts: a missing, wrong or
    unreachable upstream is a one-line error (exit 2) instead of a batch of failed attempts."""
    request = urllib.request.Request(upstream.url("models"), headers={
        "Authorization": f"Bearer {upstream.api_key.get_secret_value()}"})
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


def _message(raw: bytes) -> str:
    try:
        return str(json.loads(raw)["error"]["message"])[:200]
    except (ValueError, KeyError, TypeError):
        return raw.decode(errors="replace")[:200]
