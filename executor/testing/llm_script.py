"""The script a `ScriptedLLM` replays: what the "model" says at each turn, or how the API fails.

One turn is consumed by each request that reaches the model (a request the real service would
reject before the model runs, such as an unpaired tool call or a wrong key, consumes nothing).
The same script serves the Responses API and Chat Completions, so one script can drive TRAE
(Responses) and mini-swe-agent (Chat Completions) alike.

Scripts are pydantic models, loadable from JSON, e.g.
    {"turns": [{"kind": "reply", "tool_calls": [{"name": "bash", "arguments": {"command": "ls"}}]},
               {"kind": "error", "error": "rate_limit"},
               {"kind": "reply", "text": "done"}]}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, SecretStr

ErrorKind = Literal[
    "rate_limit",  # 429 rate_limit_exceeded, with a retry-after header
    "insufficient_quota",  # 429 insufficient_quota: will not heal by waiting
    "server_error",  # 500 server_error
    "overloaded",  # Anthropic: 529 overloaded_error (OpenAI: 503)
    "invalid_api_key",  # 401 invalid_api_key, whatever key was sent
    "bad_request",  # 400 invalid_request_error (an unsupported parameter, by default)
    "context_length_exceeded",  # 400 context_length_exceeded
]


class ScriptedToolCall(BaseModel):
    """One function call the model makes."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Tool (function) name, e.g. 'bash' or 'task_done'.")
    arguments: dict[str, Any] | str = Field(
        default_factory=dict,
        description="A dict is sent JSON-encoded; a string verbatim (e.g. truncated JSON).")
    call_id: str | None = Field(
        default=None, description="Call id; None gives call_<n>, numbered across the server's life.")


class TurnUsage(BaseModel):
    """Token counts reported for a turn; unset counts are estimated from text sizes."""

    model_config = ConfigDict(extra="forbid")

    input_tokens: int | None = Field(
        default=None, description="Prompt tokens (cached included); None: request chars / 4.")
    output_tokens: int | None = Field(
        default=None, description="Completion tokens (reasoning included); None: output chars / 4.")
    cached_tokens: int = Field(default=0, description="Part of input_tokens served from cache.")
    reasoning_tokens: int = Field(default=0, description="Part of output_tokens spent reasoning.")
    cache_write_tokens: int = Field(default=0, description="Anthropic: part of input_tokens "
                                    "written to the prompt cache.")


class Reply(BaseModel):
    """A model turn: text and/or tool calls."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["reply"] = Field(default="reply", description="Discriminator.")
    text: str | None = Field(default=None, description="Assistant text, if any.")
    tool_calls: list[ScriptedToolCall] = Field(default_factory=list,
                                               description="Function calls, in order.")
    usage: TurnUsage = Field(default_factory=TurnUsage, description="Reported token usage.")
    truncated: bool = Field(
        default=False, description="Cut off by the output limit: Responses status 'incomplete', "
        "Chat finish_reason 'length'.")


class ScriptedError(BaseModel):
    """A turn on which the API fails the way the real service does."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["error"] = Field(default="error", description="Discriminator.")
    error: ErrorKind = Field(description="Which failure (status, type and code follow from it).")
    message: str | None = Field(default=None, description="Override the real service's message.")
    retry_after_s: float = Field(default=1.0, description="retry-after header on rate_limit.")
    in_stream: bool = Field(
        default=False, description="A streamed Responses request gets HTTP 200 and a stream "
        "that ends in response.failed carrying this error, as the service reports an error "
        "met while the model runs; other requests get the HTTP error as usual.")


Turn = Annotated[Union[Reply, ScriptedError], Field(discriminator="kind")]


class RateWindow(BaseModel):
    """A provider's request limit: at most `requests` model calls per `window_s` seconds;
    above it the server answers 429 rate_limit_exceeded with the retry-after that frees a slot
    (and consumes no turn). Real limits are per minute; tests shrink the window."""

    model_config = ConfigDict(extra="forbid")

    requests: int = Field(ge=1, description="Model calls allowed per window.")
    window_s: float = Field(default=60.0, gt=0, description="Window length in seconds.")


class LlmScript(BaseModel):
    """Everything a ScriptedLLM replays and enforces."""

    model_config = ConfigDict(extra="forbid")

    turns: list[Turn] = Field(default_factory=list, description="Model turns, in order.")
    api_key: SecretStr | None = Field(
        default=None, description="When set, requests must carry 'Authorization: Bearer <key>'.")
    models: list[str] = Field(default_factory=lambda: ["scripted-model"],
                              description="What GET /v1/models lists.")
    rate_limit: RateWindow | None = Field(default=None,
                                          description="Enforce a request rate, as providers do.")

    @classmethod
    def load(cls, path: Path) -> "LlmScript":
        """Read a script from a JSON file (keys belong in the environment, not in the file)."""
        return cls.model_validate(json.loads(Path(path).read_text()))


# ----------------------------------------------------------------------- authoring helpers


def call(name: str, arguments: dict[str, Any] | str | None = None, *,
         call_id: str | None = None, **kwargs: Any) -> ScriptedToolCall:
    """`call("bash", command="ls")` or `call("bash", '{"command": "ec')` (raw, e.g. truncated)."""
    args: dict[str, Any] | str = kwargs if arguments is None else arguments
    return ScriptedToolCall(name=name, arguments=args, call_id=call_id)


def reply(text: str | None = None, *calls: ScriptedToolCall, usage: TurnUsage | None = None,
          truncated: bool = False) -> Reply:
    """A model turn: `reply("Looking", call("bash", command="ls"))`."""
    return Reply(text=text, tool_calls=list(calls), usage=usage or TurnUsage(),
                 truncated=truncated)


def fail(error: ErrorKind, message: str | None = None, retry_after_s: float = 1.0,
         in_stream: bool = False) -> ScriptedError:
    """A failing turn: `fail("rate_limit")`; `in_stream=True`: as response.failed in a stream."""
    return ScriptedError(error=error, message=message, retry_after_s=retry_after_s,
                         in_stream=in_stream)
