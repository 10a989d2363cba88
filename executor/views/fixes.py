"""What the user can fix before a final failure is worth running again.

The retry policy calls a permanent failure final: the same inputs fail the same way, so a
retry inside the run is wasted. Some of those inputs are the user's to change: a key, a quota,
max_tokens, TRAE's must-patch option, an agent's install. Such an item is not done; it is left
for a rerun after the fix, and the remaining plan says which fix. The agent's own outcomes (its
step limit, an empty patch after it finished, a conversation it broke) are the measurement and
stay final. So do retryable and infra failures that used up their attempts: the policy gave
them their retries (while their attempts last they are remaining anyway).
"""

from __future__ import annotations

from executor.core.journal import Attempt

# Signature name -> the fix, said as what to do before the rerun.
USER_FIXES: dict[str, str] = {
    "auth": "after the key is fixed (the API key or cloud credentials were refused)",
    "quota_exhausted": "after the key's quota is topped up (or its usage limit resets)",
    "truncated_tool_json": "a retry of a truncated response (raise the model's max_tokens)",
    "must_patch_tool_output_missing": "rerun without must-patch (TRAE's --must-patch saw an "
                                      "empty diff and broke the conversation; isobench runs "
                                      "TRAE without it)",
    "agent_startup_crash": "after the agent's install or config is fixed (it died before its "
                           "first step)",
    "invalid_request": "after the request options are fixed for this model or endpoint",
    "budget_exhausted": "with a larger token or dollar budget",
    "bad_input": "after the plan or the options are fixed",
    "image_build_failed": "after the image build is fixed (read its build log)",
}


def user_fix(attempt: Attempt | None) -> str | None:
    """The fix that makes this failed attempt worth running again; None when its outcome is
    final (the agent's own: step limit, empty patch, a broken conversation, unclassified)."""
    if attempt is None or attempt.signature is None:
        return None
    return USER_FIXES.get(attempt.signature.name)
