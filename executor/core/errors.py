"""Failures, named by their real cause.

Every failure isobench sees (a trajectory step error, a line of stderr, an exit code, a Docker
exception) becomes one `ErrorSignature`: a stable name, a class that decides retries
(`retryable`, `permanent`, `infra`), and the evidence line that matched. Retries, the journal,
`isobench status` and reports all read this one classification, so there is exactly one place
that decides what a failure *is*.

ISO-Bench retried every exception and blamed the wrong cause for its largest failure group
(FIELD_NOTES section 2); the rules below are ordered from most to least specific so that, for
example, an exhausted quota (a 429 that will not heal) is never mistaken for a rate limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Iterable

from pydantic import BaseModel, Field

EVIDENCE_MAX_CHARS = 500


class ErrorClass(StrEnum):
    """What a retry can do about a failure."""

    RETRYABLE = "retryable"  # transient on the provider's side: 429, 5xx, timeouts
    PERMANENT = "permanent"  # the same inputs fail the same way: 400, 401, quota, bad patch
    INFRA = "infra"  # our machine failed, not the agent: Docker, OOM, GPU detached


class ErrorSignature(BaseModel):
    """One failure, named: which rule matched, its class, and the line that proves it."""

    name: str = Field(description="Stable signature name, e.g. 'rate_limit' or 'auth'.")
    error_class: ErrorClass = Field(description="Decides whether a retry may help.")
    evidence: str = Field(description="The matching line (redacted, truncated).")
    source: str = Field(description="Where the evidence came from: trajectory, stderr, docker...")
    cause: str = Field(default="", description="One sentence on what this means and what to do.")

    @property
    def retry_may_help(self) -> bool:
        return self.error_class in (ErrorClass.RETRYABLE, ErrorClass.INFRA)


@dataclass(frozen=True)
class SignatureRule:
    """A named pattern; the first rule whose pattern matches a line names the failure."""

    name: str
    error_class: ErrorClass
    pattern: re.Pattern[str]
    cause: str


def _rule(name: str, error_class: ErrorClass, pattern: str, cause: str) -> SignatureRule:
    return SignatureRule(name, error_class, re.compile(pattern, re.IGNORECASE), cause)


R, P, I = ErrorClass.RETRYABLE, ErrorClass.PERMANENT, ErrorClass.INFRA


def _http(*codes: int) -> str:
    """An HTTP status as clients print it ("Error code: 429", "HTTP 429", "status_code=429",
    "429 Too Many Requests"), not any number that happens to be 429 (a token count, a limit)."""
    alt = "|".join(str(c) for c in codes)
    return (rf"(?:Error code|status(?:[ _]?code)?|HTTP(?:/[\d.]+)?|API Error)\W{{0,3}}(?:{alt})\b"
            rf"|\b(?:{alt}) (?:Too Many Requests|Unauthorized|Internal Server Error|Bad Gateway|"
            rf"Service Unavailable|Gateway Time-?out)")


# Order matters: specific before general (quota before rate limit, both are HTTP 429; a pairing
# 400 before the generic invalid request). Texts are those the openai client (1.x and later),
# litellm and TRAE print; FIELD_NOTES sections 2-4 say where each comes from.
RULES: tuple[SignatureRule, ...] = (
    _rule("disk_full", I,
          r"No space left on device|ENOSPC|Disk quota exceeded|Out of diskspace|"
          r"out of disk space",
          "No space left on a device the attempt writes to (the state directory or the "
          "engine's data root); free space, then resume."),
    _rule("budget_exhausted", P,
          r"isobench_budget_exhausted|isobench budget exhausted",
          "The attempt or the run spent its token or dollar budget; the gateway refused "
          "further model calls. The patch made so far is kept."),
    _rule("tool_output_missing", P,
          r"No tool output found for function call|must be followed by tool messages|"
          r"did not have response messages|"
          r"tool_use` ids were found without `tool_result` blocks",  # Anthropic's wording
          "The conversation sent to the API holds a tool call without its output (a 400 that "
          "no retry can fix)."),
    _rule("tool_call_missing", P,
          r"No tool call found for function call output|must be a response to a "
          r"prece+ding message with 'tool_calls'|not found in 'tool_calls' of previous message",
          "The conversation sent to the API holds a tool output without its call (a 400)."),
    _rule("duplicate_item", P,
          r"Duplicate item found with id",
          "The agent re-sent items already stored under previous_response_id (a 400)."),
    _rule("quota_exhausted", P,
          r"insufficient_quota|exceeded your current quota|billing.*(hard limit|not active)"
          r"|usage_limit_reached|hit your usage limit"  # codex CLI on a ChatGPT plan
          r"|credit balance is too low|enforced_spend_limit_reached"  # Anthropic
          r"|Quota exceeded\. Check your plan",  # codex CLI given insufficient_quota
          "The account's quota or credit is spent; retrying will not help until it is topped up "
          "(or, for a ChatGPT plan's usage limit, until it resets)."),
    _rule("rate_limit", R,
          _http(429) + r"|rate[ _-]?limit|RateLimitError|Too Many Requests",
          "The provider throttled requests; back off and retry."),
    _rule("auth", P,
          _http(401) + r"|invalid_api_key|Incorrect API key|AuthenticationError|"
          r"You didn't provide an API key|\bUnauthorized\b|"
          # AWS Bedrock credentials (ISO-Bench's Claude runs): an expired SSO session, a
          # profile that does not exist on the host.
          r"Error (when retrieving|loading) (SSO )?token|Token has expired and refresh failed|"
          r"config profile \(.*\) could not be found|ExpiredTokenException|"
          # the openai client built with no key at all (TRAE at start-up)
          r"api_key client option must be set",
          "The API key or cloud credentials are missing, wrong or expired; fix them, do not "
          "retry."),
    _rule("context_overflow", P,
          r"context_length_exceeded|maximum context length|context window|too many tokens|"
          r"ContextWindowExceededError",
          "The conversation outgrew the model's context window."),
    _rule("truncated_tool_json", P,
          r"Unterminated string|JSONDecodeError|Expecting (',' delimiter|value|property name)|"
          r"finish_reason.*length",
          "Tool-call arguments were cut off, usually by max_tokens: raise it."),
    _rule("invalid_request", P,
          _http(400) + r"|invalid_request_error|Unsupported parameter|Invalid parameter|"
          r"BadRequestError",
          "The request is malformed for this model or endpoint; a retry sends the same thing."),
    _rule("provider_unavailable", R,
          _http(500, 502, 503, 504) + r"|InternalServerError|Bad Gateway|Service Unavailable|"
          r"overloaded|APITimeoutError|Request timed out|ReadTimeout|ConnectTimeout|"
          r"APIConnectionError|Connection error\.|litellm\.Timeout|"
          r"Connection (reset|refused|aborted)|RemoteDisconnected|"
          r"stream disconnected before completion",  # codex CLI: a stream that failed
          "The provider failed or timed out; retry with backoff."),
    _rule("ray_worker_lost", I,
          r"WorkerCrashedError|NodeDiedError|LocalRayletDiedError|ObjectLostError|"
          r"OwnerDiedError|ObjectFetchTimedOutError|RaySystemError|"
          r"The worker died unexpectedly",
          "The Ray worker or node running the attempt died (node lost, worker crashed or "
          "killed for memory); the attempt is retried wherever a GPU is free."),
    _rule("nvml_detached", I,
          r"Failed to initialize NVML|NVML: Unknown Error",
          "The container lost its GPU (host systemd reload); rerun on a healthy node."),
    _rule("container_oom", I,
          r"OOMKilled|Out of memory: Killed|\bexit(ed)? (code )?137\b",
          "The container was killed for memory; raise the memory limit or use a larger node."),
    _rule("disk_full", I,
          r"\bENOSPC\b|No space left on device",
          "The host's disk filled up under the agent; free space, then rerun."),
    _rule("docker_unreachable", I,
          r"Cannot connect to the Docker daemon|Error while fetching server API version|"
          r"cannot reach the container engine|"
          r"docker\.sock.*(No such file|Connection refused)",
          "The Docker engine does not answer; start it (scripts/ensure-docker.sh)."),
    _rule("image_build_failed", P,
          r"image build failed|The command .* returned a non-zero code",
          "The sandbox image did not build; read the build log."),
)

# Signatures the controller assigns from structured facts rather than text.
AGENT_TIMEOUT = ("agent_timeout", P, "The agent used its whole wall-clock budget.")
MAX_STEPS = ("max_steps", P, "The agent reached its step limit without finishing.")
MUST_PATCH_NO_TOOL_OUTPUT = (
    "must_patch_tool_output_missing", P,
    "TRAE's must-patch check saw an empty `git diff` (the work was committed or staged), "
    "injected 'ERROR! Your Patch is empty' without answering the task_done call, and the API "
    "rejected the unpaired call with 400. Not a parallel-tool-call problem.",
)
REPEATED_FORMAT_ERROR = ("repeated_format_error", P,
                         "The model answered without a valid bash tool call several times in a "
                         "row.")
PATCH_APPLY_FAILED = ("patch_apply_failed", P,
                      "The patch does not apply to the base tree by git apply, 3-way merge or "
                      "fuzzy patch.")
INTERRUPTED = ("interrupted", I, "Stopped by the user; resume to run it again.")
CONTROLLER_LOST = ("controller_lost", I,
                   "The controller running this attempt died (kill -9, crash, lost node); the "
                   "attempt was closed as interrupted when the next controller took the item.")
BAD_INPUT = ("bad_input", P,
             "The item does not resolve to a runnable commit, task and agent; fix the plan or "
             "the options, then run it again.")
BUDGET_EXHAUSTED = ("budget_exhausted", P,
                    "The attempt or the run spent its token or dollar budget; the gateway "
                    "refused further model calls. The patch made so far is kept.")
REPLAY_MISMATCH = ("replay_mismatch", P,
                   "A replayed agent asked what the recorded run did not ask (another request, "
                   "or one more): it did not repeat itself, so no recorded answer fits. The "
                   "agent, its settings or its inputs differ from the recording.")
LEAK_DETECTED = ("leak_detected", P, "The sandbox could reach commits beyond base.")
NO_TRAJECTORY = ("no_trajectory", I,
                 "No readable trajectory.json: nothing shows how the agent ended, so the run "
                 "cannot count as a success; rerun it.")
AGENT_STARTUP_CRASH = ("agent_startup_crash", P,
                       ("The agent died before its first step (an import error, a bad config, "
                        "a wrong command line): its install or configuration is broken, the "
                        "same run fails the same way; fix what the evidence names, then rerun."))
EMPTY_PATCH = ("empty_patch", P,
               "TRAE reported success but model_patch.diff is empty: nothing to measure.")
IMAGE_BUILD_FAILED = ("image_build_failed", P,
                      "The sandbox image did not build; read the build log.")

# Slurm (runs/batch/slurm_backend): a job that ended in one of these states is an
# infrastructure attempt, with Slurm's state, exit code and reason as its evidence.
SLURM_CANCELLED = ("slurm_job_cancelled", I,
                   ("The Slurm job was cancelled (scancel by a user or an admin) before it "
                    "finished; the attempt is retried."))
SLURM_TIMEOUT = ("slurm_job_timeout", I,
                 ("The Slurm job reached its time limit; raise --slurm-time if the item needs "
                  "longer."))
SLURM_PREEMPTED = ("slurm_job_preempted", I,
                   ("A higher-priority job preempted the Slurm job; the attempt is retried."))
SLURM_NODE_LOST = ("slurm_node_lost", I,
                   ("The node running the Slurm job failed or stopped answering (NODE_FAIL: "
                    "slurmd gone, node down); the attempt is retried on a healthy node."))
SLURM_OOM = ("slurm_job_oom", I,
             ("Slurm killed the job for memory (--slurm-mem); raise it or use a larger node."))
SLURM_JOB_FAILED = ("slurm_job_failed", I,
                    ("The Slurm job ended without a result (non-zero exit, boot failure, "
                     "deadline); read slurm.out in the attempt dir."))
SLURM_JOB_LOST = ("slurm_job_lost", I,
                  ("Slurm no longer knows the job and it left no result (purged from squeue, "
                   "no accounting); the attempt is retried."))
# Our own machine failed under the attempt, named apart from the provider's failures.
ENGINE_LOST = ("engine_lost", I,
               ("The container engine went away or restarted during the attempt (its socket "
                "dropped or refused the connection, or it stopped the sandbox); the attempt is "
                "retried once the engine answers."))
DISK_FULL = ("disk_full", I,
             ("No space left on a device the attempt writes to (the state directory or the "
              "engine's data root); free space, then resume."))


def signature(spec: tuple[str, ErrorClass, str], evidence: str, source: str) -> ErrorSignature:
    """Build a signature from one of the structured constants above."""
    name, error_class, cause = spec
    return ErrorSignature(name=name, error_class=error_class, evidence=_clip(evidence),
                          source=source, cause=cause)


def _clip(line: str) -> str:
    line = line.strip()
    return line if len(line) <= EVIDENCE_MAX_CHARS else line[: EVIDENCE_MAX_CHARS - 3] + "..."


def classify_line(line: str, source: str) -> ErrorSignature | None:
    """Name one line of evidence, or None when no rule knows it."""
    for rule in RULES:
        if rule.pattern.search(line):
            return ErrorSignature(name=rule.name, error_class=rule.error_class,
                                  evidence=_clip(line), source=source, cause=rule.cause)
    return None


def classify_text(text: str | Iterable[str], source: str) -> ErrorSignature | None:
    """Name the most specific failure found in a block of text.

    Every line is tried against every rule; the rule earliest in RULES wins (it is the most
    specific), and among its matches the *last* line wins (the final error, not a warning
    printed early and then recovered from).
    """
    lines = text.splitlines() if isinstance(text, str) else list(text)
    best: tuple[int, str] | None = None
    for line in lines:
        rank = first_rule(line)
        if rank is not None and (best is None or rank <= best[0]):
            best = (rank, line)
    if best is None:
        return None
    rule = RULES[best[0]]
    return ErrorSignature(name=rule.name, error_class=rule.error_class, evidence=_clip(best[1]),
                          source=source, cause=rule.cause)


MEMO_LINES = 2048  # distinct lines remembered (ISO-Bench's whole state has 752)
MEMO_LINE_CHARS = 4096  # longer lines are matched each time: a memo must stay small


def first_rule(line: str) -> int | None:
    """The rank in RULES of the first rule that matches `line`, None when none does.
    Remembered per line: logs and journals repeat the same lines (ISO-Bench's state: 5,065
    lines classified, 752 distinct; every rule on every line was most of `status`'s time)."""
    return _first_rule_memo(line) if len(line) <= MEMO_LINE_CHARS else _first_rule(line)


def _first_rule(line: str) -> int | None:
    for rank, rule in enumerate(RULES):
        if rule.pattern.search(line):
            return rank
    return None


_first_rule_memo = lru_cache(maxsize=MEMO_LINES)(_first_rule)


# What an engine client's own exception can mean. Its texts ("Connection aborted", "500 Server
# Error", "Read timed out") look like a provider's failure to RULES; an exception raised by the
# engine's client is never the provider's, so it is named by these rules alone.
ENGINE_LOST_PATTERN = re.compile(
    r"Connection (aborted|refused|reset)|RemoteDisconnected|ConnectionResetError|"
    r"BrokenPipeError|Broken pipe|UnixHTTPConnectionPool|http\+docker://|Read timed out|"
    r"is not running|is restarting|No such container|No such exec instance|"
    r"Failed to establish a new connection|IncompleteRead|ProtocolError",
    re.IGNORECASE)
ENGINE_RULE_NAMES = ("disk_full", "container_oom", "docker_unreachable", "nvml_detached",
                     "image_build_failed")


def classify_engine(text: str, source: str = "engine") -> ErrorSignature | None:
    """Name a failure raised by the container engine's client: disk full, OOM, an engine that
    does not answer, else an engine lost mid-attempt; never a provider's failure."""
    rules = [r for r in RULES if r.name in ENGINE_RULE_NAMES]
    lines = text.splitlines() or [text]
    for rule in rules:
        for line in reversed(lines):
            if rule.pattern.search(line):
                return ErrorSignature(name=rule.name, error_class=rule.error_class,
                                      evidence=_clip(line), source=source, cause=rule.cause)
    for line in reversed(lines):
        if ENGINE_LOST_PATTERN.search(line):
            return signature(ENGINE_LOST, line, source)
    return None


def unclassified(line: str, source: str) -> ErrorSignature:
    """An unknown failure keeps its raw line; it is never retried and never called success."""
    return ErrorSignature(name="unclassified", error_class=ErrorClass.PERMANENT,
                          evidence=_clip(line) or "(no output)", source=source,
                          cause="No rule knows this failure; read the evidence and add a rule.")


# --------------------------------------------------------------------------- exceptions


class IsobenchError(Exception):
    """Base of every error isobench raises on purpose; carries its process exit code."""

    exit_code = 1

    def __init__(self, message: str, signature: ErrorSignature | None = None):
        super().__init__(message)
        self.signature = signature


class UserInputError(IsobenchError):
    """Bad input from the user (unknown sha, not a repository, malformed plan): exit 2."""

    exit_code = 2


class EnvironmentNotReady(UserInputError):
    """The host lacks something a run needs (debootstrap, a GPU runtime, a GPU id, TRAE's Python),
    found before any attempt: exit 2 with the one thing to do, and no run record left behind."""


class EngineUnavailable(UserInputError):
    """No container engine answers. Exit 2 with instructions: nothing was started."""


class InfraError(IsobenchError):
    """Our side failed (Docker, disk, GPU). Worth a retry on a healthy host."""

    exit_code = 20


class ImageBuildError(IsobenchError):
    """An image did not build; the message names the log."""

    exit_code = 21


class LeakDetected(IsobenchError):
    """The agent's tree could reach the human commit or something newer. Never run an agent then."""

    exit_code = 22
