"""Every signature, named from the lines real clients print (openai 1.x and later, litellm,
TRAE, Docker, the kernel), and the order that keeps specific causes ahead of general ones."""

import pytest

from executor.core.errors import (MAX_STEPS, MUST_PATCH_NO_TOOL_OUTPUT, RULES, ErrorClass,
                             classify_line, classify_text, signature, unclassified)

R, P, I = ErrorClass.RETRYABLE, ErrorClass.PERMANENT, ErrorClass.INFRA

CASES = [
    # The gateway's refusal is a 400 that mentions tokens: its own name, not a bad request.
    ("Error code: 400 - {'error': {'message': 'isobench budget exhausted: this attempt has used "
     "1200 of 1000 tokens', 'type': 'budget_exhausted', 'param': None, 'code': "
     "'isobench_budget_exhausted'}}", "budget_exhausted", P),
    # (line, signature, class)
    ("Error code: 400 - {'error': {'message': 'No tool output found for function call call_5.', "
     "'type': 'invalid_request_error', 'param': 'input', 'code': None}}", "tool_output_missing", P),
    ("Error code: 400 - No tool output found for function call call_1.",
     "tool_output_missing", P),
    ("litellm.BadRequestError: OpenAIException - An assistant message with 'tool_calls' must be "
     "followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids "
     "did not have response messages: call_2", "tool_output_missing", P),
    ("Error code: 400 - {'error': {'message': 'No tool call found for function call output with "
     "call_id call_9.', 'type': 'invalid_request_error'}}", "tool_call_missing", P),
    ("Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
     "with 'tool_calls'.", "tool_call_missing", P),
    ("Error code: 400 - Duplicate item found with id fc_68d2. Remove duplicate items from your "
     "input and try again.", "duplicate_item", P),
    ("Error code: 429 - {'error': {'message': 'You exceeded your current quota, please check "
     "your plan and billing details.', 'type': 'insufficient_quota', 'param': None, "
     "'code': 'insufficient_quota'}}", "quota_exhausted", P),
    ("Error code: 429 - {'error': {'message': 'Rate limit reached for gpt-5 in organization "
     "org-x on tokens per min (TPM): Limit 30000, Used 29800, Requested 1200.', 'type': "
     "'tokens', 'param': None, 'code': 'rate_limit_exceeded'}}", "rate_limit", R),
    ("openai.RateLimitError: Error code: 429", "rate_limit", R),
    ("HTTP/1.1 429 Too Many Requests", "rate_limit", R),
    ("Error code: 401 - {'error': {'message': 'Incorrect API key provided: sk-abc********wxyz. "
     "You can find your API key at https://platform.openai.com/account/api-keys.', 'type': "
     "'invalid_request_error', 'param': None, 'code': 'invalid_api_key'}}", "auth", P),
    ("litellm.AuthenticationError: AuthenticationError: OpenAIException - You didn't provide an "
     "API key.", "auth", P),
    ("Error code: 400 - {'error': {'message': \"This model's maximum context length is 128000 "
     "tokens.\", 'code': 'context_length_exceeded'}}", "context_overflow", P),
    ("litellm.ContextWindowExceededError: litellm.BadRequestError: ContextWindowExceededError",
     "context_overflow", P),
    ("json.decoder.JSONDecodeError: Unterminated string starting at: line 1 column 13 (char 12)",
     "truncated_tool_json", P),
    ("Error code: 400 - {'error': {'message': \"Unsupported parameter: 'temperature' is not "
     "supported with this model.\", 'type': 'invalid_request_error', 'param': 'temperature', "
     "'code': 'unsupported_parameter'}}", "invalid_request", P),
    ("openai.BadRequestError: Error code: 400 - something new", "invalid_request", P),
    ("Error code: 500 - {'error': {'message': 'The server had an error while processing your "
     "request. Sorry about that!', 'type': 'server_error'}}", "provider_unavailable", R),
    ("HTTP/1.1 503 Service Unavailable", "provider_unavailable", R),
    ("Request timed out.", "provider_unavailable", R),
    ("Connection error.", "provider_unavailable", R),
    ("litellm.Timeout: Connection timed out after 600.0 seconds.", "provider_unavailable", R),
    ("litellm.InternalServerError: OpenAIException - Error code: 502", "provider_unavailable", R),
    ("WorkerCrashedError: The worker died unexpectedly while executing this task.",
     "ray_worker_lost", I),
    ("NodeDiedError: The node with node id: 3f2a and address: 10.0.0.7 and node name: 10.0.0.7 "
     "has been marked dead", "ray_worker_lost", I),
    ("Failed to initialize NVML: Unknown Error", "nvml_detached", I),
    ("container exited with code 137 (OOMKilled)", "container_oom", I),
    # Claude Code's error result in ISO-Bench's state ("errors": [...]), and the plain OS text
    ("ENOSPC: no space left on device, write", "disk_full", I),
    ("OSError: [Errno 28] No space left on device", "disk_full", I),
    # the openai client constructed with no key (a TRAE start-up crash in ISO-Bench's state)
    ("openai.OpenAIError: The api_key client option must be set either by passing api_key to "
     "the client or by setting the OPENAI_API_KEY environment variable", "auth", P),
    ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon "
     "running?", "docker_unreachable", I),
    ("OSError: [Errno 28] No space left on device: '/state/runs/x/agent_stdout.log'",
     "disk_full", I),
    ("fatal: sha1 file '/tmp/.isobench_index.cGAmqC.lock' write error. Out of diskspace",
     "disk_full", I),
    ("The command '/bin/sh -c pip install -e .' returned a non-zero code: 1",
     "image_build_failed", P),
]


@pytest.mark.parametrize("line,name,error_class", CASES, ids=[c[1] + str(i)
                                                             for i, c in enumerate(CASES)])
def test_each_line_gets_its_signature(line, name, error_class):
    sig = classify_text(line, "stderr")
    assert sig is not None, line
    assert (sig.name, sig.error_class) == (name, error_class)
    assert sig.evidence and sig.source == "stderr" and sig.cause


def test_every_rule_is_exercised():
    assert {rule.name for rule in RULES} <= {name for _, name, _ in CASES}


def test_quota_429_is_not_a_rate_limit_and_is_not_retried():
    sig = classify_text("Error code: 429 - You exceeded your current quota", "trajectory")
    assert sig.name == "quota_exhausted"
    assert not sig.retry_may_help
    assert classify_text("Error code: 429 - Rate limit reached", "x").retry_may_help


@pytest.mark.parametrize("line", [
    "Limit 30000, Used 429, Requested 500",  # numbers that are not statuses
    "max_tokens=500 top_p=1",
    "everything is fine",
    "Segmentation fault (core dumped)",
])
def test_unknown_lines_are_not_classified(line):
    assert classify_text(line, "stderr") is None
    assert classify_line(line, "stderr") is None


def test_unclassified_keeps_the_raw_line_and_is_permanent():
    sig = unclassified("Segmentation fault (core dumped)", "stderr")
    assert sig.name == "unclassified"
    assert sig.evidence == "Segmentation fault (core dumped)"
    assert not sig.retry_may_help
    assert unclassified("", "stderr").evidence == "(no output)"


def test_most_specific_rule_wins_over_order_of_lines():
    text = "\n".join(["openai.APIConnectionError: Connection error.",
                      "Error code: 400 - No tool output found for function call call_3.",
                      "Request timed out."])
    assert classify_text(text, "stdout").name == "tool_output_missing"


def test_among_equal_rules_the_last_line_wins():
    text = "Error code: 500 - first\nsomething\nError code: 503 - last"
    assert classify_text(text, "stdout").evidence == "Error code: 503 - last"


def test_evidence_is_clipped():
    sig = classify_text("Request timed out. " + "x" * 2000, "stderr")
    assert len(sig.evidence) <= 500 and sig.evidence.endswith("...")


def test_structured_signatures():
    must = signature(MUST_PATCH_NO_TOOL_OUTPUT, "step 4: No tool output found", "trajectory")
    assert must.name == "must_patch_tool_output_missing"
    assert must.error_class == P and "parallel" in must.cause
    assert signature(MAX_STEPS, "exceeded", "trajectory").name == "max_steps"


def test_expired_cloud_credentials_are_auth():
    from executor.core.errors import classify_text

    for text in ("Error when retrieving token from sso: Token has expired and refresh failed",
                 "The config profile (AdministratorAccess-1234) could not be found",
                 "Error loading SSO Token: Token for kernel-bot does not exist"):
        sig = classify_text(text, "trajectory")
        assert sig is not None and sig.name == "auth" and sig.error_class.value == "permanent"


def test_anthropic_unpaired_tool_use_is_tool_output_missing():
    from executor.core.errors import classify_text

    sig = classify_text("Error code: 400 - {'message': 'messages.130: `tool_use` ids were found "
                        "without `tool_result` blocks immediately after: toolu_01'}", "trajectory")
    assert sig is not None and sig.name == "tool_output_missing"


def test_a_line_seen_before_is_named_the_same_with_this_calls_source_and_evidence():
    line = "Error code: 429 - {'error': {'code': 'insufficient_quota'}}"
    first = classify_text([line], "stderr")
    again = classify_text(f"warming up\n{line}", "journal")
    assert first.name == again.name == "quota_exhausted"
    assert (first.source, again.source) == ("stderr", "journal")
    assert again.evidence == line


def test_lines_too_long_to_remember_are_still_named():
    from executor.core.errors import MEMO_LINE_CHARS

    long_line = "x" * MEMO_LINE_CHARS + " Error code: 401 - Incorrect API key provided"
    assert classify_text(long_line, "stderr").name == "auth"
    assert classify_text(long_line.replace("401", "4o1").replace("API key", "k"), "x") is None
