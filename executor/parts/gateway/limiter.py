"""One limiter for every model call of a controller: requests and tokens per minute,
concurrent requests, and the provider's own `retry-after`.

It lives on the gateway's event loop, so all workers of a local batch (threads of one
controller) share it: the batch paces itself instead of each worker meeting the provider's 429
on its own. A 429 with retry-after holds *every* caller back until then, not only the one that
was refused, because the provider's limit is per key, not per attempt.
"""

from __future__ import annotations

import asyncio
import collections
import time

from pydantic import BaseModel, Field



class Limits(BaseModel):
    """How fast the gateway lets calls go out (None: no limit of that kind)."""

    requests_per_minute: int | None = Field(default=None, ge=1,
                                            description="Upstream requests started per minute.")
    tokens_per_minute: int | None = Field(
        default=None, ge=1, description="Tokens per minute (estimated from the request size "
                                        "before the call, corrected by the reported usage).")
    max_concurrent: int | None = Field(default=None, ge=1,
                                       description="Upstream requests in flight at once.")
    upstream_retries: int = Field(default=4, ge=0, description="Times the gateway retries a "
                                  "429 itself, after its retry-after, before passing it on.")
    max_retry_wait_s: float = Field(default=60.0, ge=0, description="Longest retry-after the "
                                    "gateway waits out; a longer one goes to the agent.")
    window_s: float = Field(default=60.0, gt=0, description="Length of the rate window: the "
                            "providers' is a minute; tests shrink it.")


class SharedLimiter:
    """Admission for upstream requests. Use `async with limiter.slot(tokens) as slot:` around
    one upstream try; `slot.waited_s` says how long it was held."""

    def __init__(self, limits: Limits, clock=time.monotonic):
        self.limits = limits
        self._clock = clock
        self._starts: collections.deque[float] = collections.deque()
        self._tokens: collections.deque[list] = collections.deque()  # [time, tokens]
        self._blocked_until = 0.0
        self._admission = asyncio.Lock()
        self._in_flight = (asyncio.Semaphore(limits.max_concurrent)
                           if limits.max_concurrent else None)

    def hold_off(self, seconds: float) -> None:
        """The provider said retry-after: nobody starts a request before then."""
        self._blocked_until = max(self._blocked_until, self._clock() + max(0.0, seconds))

    def slot(self, estimated_tokens: int) -> "_Slot":
        return _Slot(self, estimated_tokens)

    def _wait_needed(self, estimated_tokens: int) -> float:
        now, window = self._clock(), self.limits.window_s
        while self._starts and self._starts[0] <= now - window:
            self._starts.popleft()
        while self._tokens and self._tokens[0][0] <= now - window:
            self._tokens.popleft()
        wait = self._blocked_until - now
        rpm, tpm = self.limits.requests_per_minute, self.limits.tokens_per_minute
        if rpm and len(self._starts) >= rpm:
            wait = max(wait, self._starts[len(self._starts) - rpm] + window - now)
        if tpm and self._tokens:
            used = sum(t for _, t in self._tokens)
            # A request bigger than the whole budget still goes once the window is empty.
            if used + estimated_tokens > tpm:
                excess, freed = used + estimated_tokens - tpm, 0
                for started, tokens in self._tokens:
                    freed += tokens
                    if freed >= excess:
                        wait = max(wait, started + window - now)
                        break
        return max(0.0, wait)

    async def _admit(self, estimated_tokens: int) -> list:
        async with self._admission:  # first come, first served
            while (wait := self._wait_needed(estimated_tokens)) > 0:
                await asyncio.sleep(wait)
            now = self._clock()
            self._starts.append(now)
            entry = [now, estimated_tokens]
            self._tokens.append(entry)
            return entry


class _Slot:
    def __init__(self, limiter: SharedLimiter, estimated_tokens: int):
        self._limiter = limiter
        self._estimate = estimated_tokens
        self._entry: list | None = None
        self.waited_s = 0.0

    async def __aenter__(self) -> "_Slot":
        started = self._limiter._clock()
        if self._limiter._in_flight is not None:
            await self._limiter._in_flight.acquire()
        try:
            self._entry = await self._limiter._admit(self._estimate)
        except BaseException:
            if self._limiter._in_flight is not None:
                self._limiter._in_flight.release()
            raise
        self.waited_s = self._limiter._clock() - started
        return self

    def settle(self, actual_tokens: int) -> None:
        """Replace the estimate by what the provider reported."""
        if self._entry is not None:
            self._entry[1] = actual_tokens

    async def __aexit__(self, *exc_info) -> None:
        if self._limiter._in_flight is not None:
            self._limiter._in_flight.release()
