"""The controller's model gateway: an OpenAI-compatible proxy that agents talk to instead of
the provider.

One instance per controller process (run-commit, or a local batch with all its workers), on a
background thread with its own event loop (aiohttp server and client). Each attempt gets a
lease: a random token the agent uses as its API key, the upstream (or a replay source) its
calls go to, and the file its calls are recorded in. The provider key stays in this process:
the sandbox sees only the gateway's URL and the token, which is revoked when the attempt ends.

Per call: check the token, check the budgets, wait for the shared limiter, forward with the
real key (streams pass through chunk by chunk), retry a 429 after its retry-after within a
bound (the agent sees a slower success instead of a 429), read the usage the provider
reported, and append one CallRecord to the attempt's record.

Listening address: 127.0.0.1 by default; the agent sandbox then runs on the host network (as
for any loopback endpoint, executor.parts.agents.llm_common.Endpoint.sandbox_network). `host` can
name another address (a docker bridge address, or a cluster-reachable one).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import aiohttp
from aiohttp import web
from pydantic import BaseModel, Field, SecretStr

from executor.parts.gateway import anthropic
from executor.parts.gateway.budget import Budgets, Spend, budget_error_body
from executor.parts.gateway.limiter import Limits, SharedLimiter
from executor.parts.gateway.record import (CallRecord, RecordWriter, body_sha256, normalise_usage,
                                     usage_in, usage_in_sse)
from executor.parts.gateway.replay import ReplaySource, replay_key
from executor.parts.gateway.upstream import ModelRoute, Upstream
from executor.core.redact import Redactor

if TYPE_CHECKING:  # the remote handle imports this module: named for types only
    from executor.parts.gateway.remote import RemoteGateway

TOKEN_PREFIX = "isobench-attempt-"
ADMIN_PATH = "/_isobench/leases"  # outside /v1: never reachable with an attempt token
# Request headers never forwarded: the agent's credentials (replaced by the real key),
# hop-by-hop headers and those aiohttp sets itself.
DROP_REQUEST_HEADERS = {"authorization", "api-key", "x-api-key", "host", "content-length",
                        "connection", "keep-alive", "transfer-encoding", "accept-encoding",
                        "te", "upgrade", "proxy-authorization"}
PASS_RESPONSE_HEADERS = ("retry-after", "x-request-id", "openai-processing-ms",
                         "openai-version", "openai-organization")


class GatewayOptions(BaseModel):
    """How the controller's gateway listens, paces, budgets and records."""

    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=0, ge=0, description="Port; 0 picks a free one.")
    limits: Limits = Field(default_factory=Limits, description="The shared limiter.")
    budgets: Budgets = Field(default_factory=Budgets, description="Token and dollar budgets.")
    keep_bodies: bool = Field(default=True, description="Record request and response bodies "
                                                        "(needed for replay).")
    upstream_timeout_s: float = Field(default=600.0, gt=0,
                                      description="Longest wait for an upstream answer.")
    replay: Path | None = Field(default=None, description="Serve every attempt from this "
                                                          "record instead of an upstream.")


class Lease:
    """One attempt's access to the gateway."""

    def __init__(self, token: str, upstream: Upstream | None, replay: ReplaySource | None,
                 record_path: Path, redactor: Redactor):
        self.token = token
        self.upstream = upstream
        self.replay = replay
        self.writer = RecordWriter(record_path)
        self.redactor = redactor.with_secrets(
            [token] + ([upstream.api_key.get_secret_value()] if upstream else []))
        self.spend = Spend()
        self._seq = 0
        self._lock = threading.Lock()

    @property
    def record_path(self) -> Path:
        return self.writer.path

    def next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq


class Gateway:
    """The gateway. `with Gateway(options) as gw:` starts it; `gw.lease(...)` per attempt."""

    def __init__(self, options: GatewayOptions | None = None):
        self.options = options or GatewayOptions()
        self.run_spend = Spend()
        self._leases: dict[str, Lease] = {}
        self._leases_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._limiter: SharedLimiter | None = None
        self._port = 0
        # For attempts in other processes (Ray tasks): they open leases over HTTP with this
        # secret, on this upstream; their records are spooled here until the lease closes.
        self.admin_secret = secrets.token_urlsafe(32)
        self.remote_upstream: Upstream | None = None
        self._spool: Path | None = None

    # ------------------------------------------------------------------- lifecycle

    def __enter__(self) -> "Gateway":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="model-gateway",
                                        daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result()

    async def _start(self) -> None:
        self._limiter = SharedLimiter(self.options.limits)
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30,
                                          sock_read=self.options.upstream_timeout_s),
            auto_decompress=True)
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/v1/{tail:.*}", self._handle)
        app.router.add_post(ADMIN_PATH, self._open_remote)
        app.router.add_delete(ADMIN_PATH + "/{token}", self._close_remote)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.options.host, self.options.port)
        await site.start()
        self._port = site._server.sockets[0].getsockname()[1]  # the port 0 resolved to

    def stop(self) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()
        self._loop = self._thread = None
        if self._spool is not None:
            shutil.rmtree(self._spool, ignore_errors=True)

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    @property
    def base_url(self) -> str:
        return f"http://{self.options.host}:{self._port}/v1"

    # ------------------------------------------------------------------- leases

    def lease(self, record_path: Path, *, upstream: Upstream | None = None,
              replay: ReplaySource | None = None, redactor: Redactor | None = None) -> Lease:
        """Register an attempt: its token, where its calls go, where they are recorded."""
        assert (upstream is None) != (replay is None), "an upstream or a replay source"
        token = TOKEN_PREFIX + secrets.token_urlsafe(24)
        lease = Lease(token, upstream, replay, record_path, redactor or Redactor())
        with self._leases_lock:
            self._leases[token] = lease
        return lease

    def revoke(self, lease: Lease) -> None:
        with self._leases_lock:
            self._leases.pop(lease.token, None)

    @contextlib.contextmanager
    def leased(self, record_path: Path, **kwargs: Any) -> Iterator[Lease]:
        lease = self.lease(record_path, **kwargs)
        try:
            yield lease
        finally:
            self.revoke(lease)

    def route(self, lease: Lease) -> ModelRoute:
        return ModelRoute(base_url=self.base_url, api_key=lease.token)

    def remote(self) -> "RemoteGateway":
        """The handle that attempts in other processes use to lease from this gateway."""
        from executor.parts.gateway.remote import RemoteGateway

        return RemoteGateway(url=f"http://{self.options.host}:{self._port}",
                             admin_secret=SecretStr(self.admin_secret))

    # ------------------------------------------------------------------- remote leases

    def _admin(self, request: web.Request) -> bool:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return secrets.compare_digest(sent.encode(), self.admin_secret.encode())

    async def _open_remote(self, request: web.Request) -> web.Response:
        if not self._admin(request):
            return _json_error(401, "isobench gateway: admin secret required",
                               "invalid_request_error", "invalid_api_key")
        if self._spool is None:
            self._spool = Path(tempfile.mkdtemp(prefix="isobench-gateway-"))
        record = self._spool / f"{secrets.token_hex(8)}.jsonl"
        if self.options.replay is not None:
            from executor.parts.gateway.replay import replay_from

            lease = self.lease(record, replay=replay_from(self.options.replay))
        elif self.remote_upstream is not None:
            lease = self.lease(record, upstream=self.remote_upstream)
        else:
            return _json_error(409, "isobench gateway: no upstream for remote attempts",
                               "invalid_request_error", "no_upstream")
        return _json_response(200, self.route(lease).model_dump())

    async def _close_remote(self, request: web.Request) -> web.Response:
        if not self._admin(request):
            return _json_error(401, "isobench gateway: admin secret required",
                               "invalid_request_error", "invalid_api_key")
        with self._leases_lock:
            lease = self._leases.pop(request.match_info["token"], None)
        if lease is None:
            return _json_error(404, "isobench gateway: no such lease", "invalid_request_error",
                               "unknown_lease")
        record = lease.record_path.read_bytes()
        lease.record_path.unlink(missing_ok=True)
        return web.Response(status=200, body=record, content_type="application/x-ndjson")

    def _lease_for(self, request: web.Request) -> Lease | None:
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.startswith("Bearer ") else \
            request.headers.get("api-key", "") or anthropic.attempt_token(request.headers)
        with self._leases_lock:
            return self._leases.get(token)

    # ------------------------------------------------------------------- one call

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        lease = self._lease_for(request)
        raw = await request.read()
        tail = request.match_info["tail"]
        speaks = anthropic.speaks_anthropic(tail, request.headers)  # the answers' dialect
        if lease is None:
            return _own(speaks, 401, _error_body(
                "Incorrect API key provided: this isobench attempt token is unknown or "
                "revoked.", "invalid_request_error", "invalid_api_key"))
        body = _parse(raw)
        call = CallRecord(seq=lease.next_seq(), method=request.method, path=tail, status=0,
                          request_sha256=body_sha256(raw),
                          # keyed after redaction: the attempt token is new each attempt
                          replay_key=replay_key(tail, lease.redactor.bytes(raw)),
                          stream=bool(isinstance(body, dict) and body.get("stream")),
                          model=body.get("model") if isinstance(body, dict) else None)
        if self.options.keep_bodies and raw:
            call.request_body = _redacted(lease.redactor, body, raw)
        try:
            if lease.replay is not None:
                return await self._replayed(lease, call, speaks)
            refused = self._over_budget(lease)
            if refused is not None:
                call.gateway_error = "budget_exhausted"
                return self._answer(lease, call, _own(speaks, 400, refused))
            return await self._forward(request, lease, call, raw, speaks)
        finally:
            call.latency_s = round(time.monotonic() - started, 6)
            lease.writer.append(call)

    def _over_budget(self, lease: Lease) -> dict | None:
        budgets = self.options.budgets
        for scope, spend, budget in (("attempt", lease.spend, budgets.attempt),
                                     ("run", self.run_spend, budgets.run)):
            spent = spend.over(budget)
            if spent is not None:
                return budget_error_body(scope, spent)
        return None

    async def _replayed(self, lease: Lease, call: CallRecord,
                        speaks: bool = False) -> web.StreamResponse:
        answer = lease.replay.answer(call.path, call.request_sha256, call.replay_key)
        if answer.call is None:
            call.gateway_error = "replay_mismatch"
            if speaks:  # the refusal in the dialect of the request, as the gateway's own
                answer.body = json.dumps(anthropic.error_body(
                    answer.status, json.loads(answer.body)["error"]["message"])).encode()
        else:
            call.usage, call.upstream_statuses = answer.call.usage, [answer.status]
            self._account(lease, call)
        call.status, call.response_type = answer.status, answer.content_type
        if self.options.keep_bodies:
            call.response_body = _redacted(lease.redactor, _parse(answer.body), answer.body)
        return web.Response(status=answer.status, body=answer.body,
                            content_type=answer.content_type.split(";")[0])

    async def _forward(self, request: web.Request, lease: Lease, call: CallRecord,
                       raw: bytes, speaks: bool = False) -> web.StreamResponse:
        upstream, limits = lease.upstream, self.options.limits
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in DROP_REQUEST_HEADERS}
        key = upstream.api_key.get_secret_value()
        headers.update(anthropic.upstream_headers(key) if speaks
                       else {"Authorization": f"Bearer {key}"})
        url = upstream.url(request.match_info["tail"])
        if request.query_string:
            url += "?" + request.query_string
        estimate = max(1, len(raw) // 4)
        for try_no in range(limits.upstream_retries + 1):
            async with self._limiter.slot(estimate) as slot:
                call.waited_s = round(call.waited_s + slot.waited_s, 6)
                try:
                    async with self._session.request(request.method, url, data=raw or None,
                                                     headers=headers) as resp:
                        call.upstream_statuses.append(resp.status)
                        wait = _retry_wait(resp, limits.max_retry_wait_s)
                        if resp.status == 429:
                            payload = await resp.read()
                            if wait is not None and try_no < limits.upstream_retries \
                                    and b"insufficient_quota" not in payload \
                                    and not anthropic.refused_for_good(payload):
                                self._limiter.hold_off(wait)
                                call.upstream_retries += 1
                                continue
                            return self._answer(lease, call, _passed(resp, payload))
                        if resp.content_type == "text/event-stream":
                            return await self._stream(request, resp, lease, call, slot,
                                                      speaks)
                        payload = await resp.read()
                        call.usage = (anthropic.usage_in if speaks else usage_in)(
                            _parse(payload))
                        self._account(lease, call, slot)
                        return self._answer(lease, call, _passed(resp, payload))
                except asyncio.TimeoutError:
                    call.upstream_statuses.append(0)
                    call.timeouts += 1
                    call.gateway_error = "upstream_timeout"
                    return self._answer(lease, call, _own(speaks, 504, _error_body(
                        f"Request timed out: the upstream {upstream.base_url} did not answer "
                        f"within {self.options.upstream_timeout_s:g}s (isobench gateway).",
                        "server_error", "upstream_timeout")))
                except aiohttp.ClientError as exc:
                    call.upstream_statuses.append(0)
                    call.timeouts += 1
                    call.gateway_error = "upstream_unreachable"
                    return self._answer(lease, call, _own(speaks, 502, _error_body(
                        f"Bad Gateway: cannot reach the upstream {upstream.base_url}: "
                        f"{type(exc).__name__} (isobench gateway).", "server_error",
                        "upstream_unreachable")))
        raise AssertionError("unreachable: the last try always answers")

    async def _stream(self, request: web.Request, resp: aiohttp.ClientResponse, lease: Lease,
                      call: CallRecord, slot, speaks: bool = False) -> web.StreamResponse:
        """Server-sent events passed through chunk by chunk; the usage is read from the
        events once the stream has ended (the last chunk or `response.completed`)."""
        out = web.StreamResponse(status=resp.status, headers=_pass_headers(resp))
        out.content_type = "text/event-stream"
        await out.prepare(request)
        chunks: list[bytes] = []
        async for chunk in resp.content.iter_any():
            chunks.append(chunk)
            await out.write(chunk)
        await out.write_eof()
        text = b"".join(chunks).decode(errors="replace")
        call.status, call.response_type = resp.status, "text/event-stream"
        call.usage = (anthropic.usage_in_sse if speaks else usage_in_sse)(text)
        self._account(lease, call, slot)
        if self.options.keep_bodies:
            call.response_body = lease.redactor.text(text)
        return out

    def _account(self, lease: Lease, call: CallRecord, slot=None) -> None:
        prices = lease.upstream.prices if lease.upstream else None
        model = call.model or (lease.upstream.model if lease.upstream else None)
        call.tokens = normalise_usage(call.usage, model, prices)
        if call.tokens is None:
            return
        beside = anthropic.is_anthropic_usage(call.usage)  # cache reads not in input_tokens
        lease.spend.add(call.tokens, beside)
        self.run_spend.add(call.tokens, beside)
        if slot is not None:
            slot.settle(call.tokens.input_tokens + call.tokens.output_tokens)

    def _answer(self, lease: Lease, call: CallRecord, response: web.Response) -> web.Response:
        call.status = response.status
        call.response_type = response.content_type or "application/json"
        if self.options.keep_bodies:
            call.response_body = _redacted(lease.redactor, _parse(response.body),
                                           response.body)
        return response


# ----------------------------------------------------------------------- helpers


def _parse(raw: bytes | None) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _redacted(redactor: Redactor, parsed: Any, raw: bytes) -> Any:
    if parsed is None:
        return redactor.text(raw.decode(errors="replace"))
    return json.loads(redactor.text(json.dumps(parsed)))


def _retry_wait(resp: aiohttp.ClientResponse, longest: float) -> float | None:
    """Seconds the provider asked for, when the gateway may wait that long itself."""
    if resp.status != 429:
        return None
    value = resp.headers.get("retry-after-ms")
    seconds = float(value) / 1000 if value and _is_number(value) else None
    if seconds is None:
        value = resp.headers.get("retry-after", "1")
        seconds = float(value) if _is_number(value) else None
    return seconds if seconds is not None and seconds <= longest else None


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _pass_headers(resp: aiohttp.ClientResponse) -> dict[str, str]:
    return {k: v for k, v in resp.headers.items()
            if k.lower() in PASS_RESPONSE_HEADERS + anthropic.PASS_RESPONSE_HEADERS
            or k.lower().startswith(("x-ratelimit-",) + anthropic.PASS_RESPONSE_PREFIXES)}


def _passed(resp: aiohttp.ClientResponse, payload: bytes) -> web.Response:
    out = web.Response(status=resp.status, body=payload, headers=_pass_headers(resp))
    out.content_type = resp.content_type or "application/json"
    return out


def _error_body(message: str, type_: str, code: str) -> dict:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def _own(speaks_anthropic: bool, status: int, body: dict) -> web.Response:
    """The gateway's own error answer, in the dialect of the request it answers."""
    if speaks_anthropic:
        body = anthropic.error_body(status, body["error"]["message"])
    return _json_response(status, body)


def _json_error(status: int, message: str, type_: str, code: str) -> web.Response:
    return _json_response(status, _error_body(message, type_, code))


def _json_response(status: int, body: dict) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(),
                        content_type="application/json")
