"""A scripted OpenAI-compatible server: real HTTP on 127.0.0.1, replaying a script of model turns.

It serves the Responses API (`POST /v1/responses`, stateless or chained with
`previous_response_id`), Chat Completions (`POST /v1/chat/completions`), both also streamed
(`stream: true`, server-sent events) and `GET /v1/models`; it can enforce a request rate
(`LlmScript.rate_limit`, 429 with retry-after above it), and
rejects what the real service rejects (unpaired tool calls, duplicate items, a wrong key) with the
same status and JSON body, so agents fail here the way they fail in production. Every request is
recorded, Authorization redacted, for assertions.

    with ScriptedLLM(LlmScript(turns=[reply(None, call("bash", command="ls")), reply("done")])) as llm:
        client = openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0)

Or from a shell: `python -m executor.testing.scripted_llm --script FILE --port 8321`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr

from executor.core.redact import MASK, Redactor
from executor.testing import anthropic_messages
from executor.testing import openai_rules as rules
from executor.testing.llm_script import LlmScript, Reply, ScriptedError, Turn
from executor.testing.openai_bodies import (IdMint, chat_body, models_body, resolve_call_ids,
                                            responses_body)
from executor.testing.openai_stream import chat_stream, responses_stream
from executor.testing.responses_stream import failed_stream

SECRET_HEADERS = ("authorization", "api-key", "x-api-key")


class RecordedRequest(BaseModel):
    """One request as the server saw it, secrets removed, and what it answered."""

    method: str = Field(description="HTTP method.")
    path: str = Field(description="Request path, e.g. /v1/responses.")
    headers: dict[str, str] = Field(description="Lower-cased headers, credentials masked.")
    body: Any = Field(default=None, description="Parsed JSON body (None if absent or not JSON).")
    status: int = Field(description="HTTP status answered.")
    response: Any = Field(description="JSON body answered.")
    turn: int | None = Field(default=None, description="1-based script turn consumed, if any.")


class _Answer(BaseModel):
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = Field(default_factory=dict)
    events: list[str] | None = Field(default=None, description="SSE events when streamed.")


class ScriptedLLM:
    """The server. A context manager: `with ScriptedLLM(script) as llm: ... llm.base_url`."""

    def __init__(self, script: LlmScript | list[Turn], host: str = "127.0.0.1", port: int = 0):
        self.script = script if isinstance(script, LlmScript) else LlmScript(turns=script)
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._next = 0  # index of the next script turn
        self._ids = IdMint()
        self._requests: list[RecordedRequest] = []
        self._chains: dict[str, list[dict[str, Any]]] = {}  # response id -> conversation items
        self._items: dict[str, dict[str, Any]] = {}  # stored item id -> item (item_reference)
        self._call_times: list[float] = []  # model calls admitted, for the rate window
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------- lifecycle

    def __enter__(self) -> "ScriptedLLM":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        self._httpd = _HTTPServer((self._host, self._port), _Handler, self)
        # A short poll interval: stop() (shutdown) waits for the loop to notice, 0.5 s by default.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,),
                                        name="scripted-llm", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd = self._thread = None

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """What clients take as base_url: http://127.0.0.1:PORT/v1."""
        return f"http://{self._host}:{self.port}/v1"

    # ------------------------------------------------------------------- observation

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def turns_served(self) -> int:
        with self._lock:
            return self._next

    @property
    def turns_left(self) -> int:
        with self._lock:
            return len(self.script.turns) - self._next

    # ------------------------------------------------------------------- request handling

    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> _Answer:
        """Answer one request; the HTTP layer only moves bytes."""
        headers = {k.lower(): v for k, v in headers.items()}
        route = path.split("?", 1)[0].rstrip("/")
        body: Any = None
        turn_no: int | None = None
        if anthropic_messages.is_anthropic_route(route) or "anthropic-version" in headers:
            done = anthropic_messages.answer(self, method, route, headers, raw)
            answer = _Answer(status=done.status, body=done.body, headers=done.headers,
                             events=done.events)
            self._record(method, route, headers, done.request, answer, done.turn)
            return answer
        try:
            self._check_key(headers)
            if method == "GET" and route == "/v1/models":
                answer = _Answer(status=200, body=models_body(self.script.models))
            elif method == "POST" and route in ("/v1/responses", "/v1/chat/completions"):
                body = _parse_json(raw)
                answer, turn_no = self._model_call(route, body)
            else:
                raise rules.not_found_error(method, route)
        except rules.ApiError as err:
            answer = _Answer(status=err.status, body=err.body(), headers=err.headers)
            turn_no = err.turn_no if isinstance(err, _TurnError) else None
        self._record(method, route, headers, body, answer, turn_no)
        return answer

    def _check_key(self, headers: dict[str, str]) -> None:
        if self.script.api_key is None:
            return
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise rules.missing_key_error()
        if auth[7:].strip() != self.script.api_key.get_secret_value():
            raise rules.wrong_key_error(auth[7:].strip())

    def _model_call(self, route: str, body: dict[str, Any]) -> tuple[_Answer, int]:
        model = body.get("model")
        if not model:
            raise rules.missing_param_error("model")
        self._check_rate(model)
        if route == "/v1/responses":
            items, prior = self._responses_conversation(body)
        else:
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                raise rules.missing_param_error("messages")
            rules.check_chat_pairing(messages)
        turn_no, turn = self._take_turn()
        if isinstance(turn, ScriptedError):
            error = rules.scripted_error(turn, model)
            if turn.in_stream and route == "/v1/responses" and body.get("stream"):
                return _failed_in_stream(turn, body, model, self._ids, error), turn_no
            raise _TurnError(error, turn_no)
        call_ids = resolve_call_ids(turn, self._ids)
        if route == "/v1/responses":
            reply = responses_body(turn, body, model, self._ids, call_ids)
            if body.get("store", True) is not False:
                self._store(reply, prior + items)
        else:
            reply = chat_body(turn, body, model, self._ids, call_ids)
        events = None
        if body.get("stream"):
            events = responses_stream(reply) if route == "/v1/responses" \
                else chat_stream(reply, body)
        return _Answer(status=200, body=reply, events=events), turn_no

    def _check_rate(self, model: str) -> None:
        """429 above the scripted rate, with the retry-after that frees the oldest slot."""
        window = self.script.rate_limit
        if window is None:
            return
        with self._lock:
            now = time.monotonic()
            self._call_times = [t for t in self._call_times if t > now - window.window_s]
            if len(self._call_times) >= window.requests:
                wait = self._call_times[0] + window.window_s - now
                raise rules.ApiError(
                    429, f"Rate limit reached for {model} in organization org-scripted on "
                    f"requests per min (RPM): Limit {window.requests}, Used "
                    f"{len(self._call_times)}, Requested 1. Please try again in {wait:.3f}s.",
                    "requests", None, "rate_limit_exceeded",
                    {"retry-after": f"{max(wait, 0.001):.3f}",
                     "retry-after-ms": str(max(1, int(wait * 1000) + 1))})
            self._call_times.append(now)

    def _responses_conversation(self, body: dict[str, Any]) -> tuple[list, list]:
        raw_input = body.get("input")
        if raw_input is None:
            raise rules.missing_param_error("input")
        items = [{"role": "user", "content": raw_input}] if isinstance(raw_input, str) \
            else [self._dereference(item) for item in raw_input]
        prior: list[dict[str, Any]] = []
        previous = body.get("previous_response_id")
        if previous:
            with self._lock:
                chain = self._chains.get(previous)
            if chain is None:
                raise rules.ApiError(400, f"Previous response with id '{previous}' not found.",
                                     "invalid_request_error", "previous_response_id",
                                     "previous_response_not_found")
            prior = chain
        rules.check_no_duplicates(prior, items)
        rules.check_responses_pairing(prior + items)
        return items, prior

    def _dereference(self, item: dict[str, Any]) -> dict[str, Any]:
        if rules.item_type(item) != "item_reference":
            return item
        with self._lock:
            stored = self._items.get(item.get("id", ""))
        if stored is None:
            raise rules.ApiError(400, f"Item with id '{item.get('id')}' not found.",
                                 "invalid_request_error", "input")
        return stored

    def _take_turn(self) -> tuple[int, Reply | ScriptedError]:
        with self._lock:
            if self._next >= len(self.script.turns):
                raise rules.script_exhausted_error(self._next)
            turn = self.script.turns[self._next]
            self._next += 1
            return self._next, turn

    def _store(self, reply: dict[str, Any], conversation: list[dict[str, Any]]) -> None:
        with self._lock:
            self._chains[reply["id"]] = conversation + reply["output"]
            self._items.update({item["id"]: item for item in reply["output"]})

    def _record(self, method: str, route: str, headers: dict[str, str], body: Any,
                answer: _Answer, turn_no: int | None) -> None:
        secrets = [self.script.api_key.get_secret_value()] if self.script.api_key else []
        secrets += [headers[h].removeprefix("Bearer ").strip() for h in SECRET_HEADERS
                    if h in headers]
        redactor = Redactor(secrets)
        safe_headers = {k: (MASK if k in SECRET_HEADERS else redactor.text(v))
                        for k, v in headers.items()}
        safe_body = json.loads(redactor.text(json.dumps(body))) if body is not None else None
        with self._lock:
            self._requests.append(RecordedRequest(
                method=method, path=route, headers=safe_headers, body=safe_body,
                status=answer.status, response=answer.body, turn=turn_no))


class _TurnError(rules.ApiError):
    """A scripted error: like any ApiError, but it consumed a turn."""

    def __init__(self, error: rules.ApiError, turn_no: int):
        super().__init__(error.status, error.message, error.type, error.param, error.code,
                         error.headers)
        self.turn_no = turn_no


def _failed_in_stream(turn: ScriptedError, request: dict[str, Any], model: str, ids: IdMint,
                      error: rules.ApiError) -> _Answer:
    body = responses_body(Reply(), request, model, ids, [])
    code = error.code or turn.error
    return _Answer(status=200, body=body, events=failed_stream(body, code, error.message))


def _parse_json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise rules.invalid_json_error() from None
    if not isinstance(body, dict):
        raise rules.invalid_json_error()
    return body


# ----------------------------------------------------------------------- HTTP layer


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type, llm: ScriptedLLM):
        self.llm = llm
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx clients expect
    # Headers and body go out in separate writes; with Nagle on, a keep-alive client's delayed
    # ACK adds ~40 ms to every answer, which real services do not.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        answer = self.server.llm.handle(method, self.path, dict(self.headers.items()), raw)
        if answer.events is not None:
            self._stream(answer)
            return
        payload = json.dumps(answer.body).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _stream(self, answer: _Answer) -> None:
        """Server-sent events, one write (and flush) per event, chunked like the real service."""
        self.send_response(answer.status)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        for event in answer.events:
            data = event.encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # every request is recorded; printing them would only add noise to test output


# ----------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m executor.testing.scripted_llm",
                                     description="Serve a scripted OpenAI-compatible API.")
    parser.add_argument("--script", required=True, type=Path, help="JSON script (LlmScript)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key-env", metavar="VAR",
                        help="require the key held in this environment variable")
    parser.add_argument("--record", type=Path, help="write recorded requests here on exit")
    args = parser.parse_args(argv)

    script = LlmScript.load(args.script)
    if args.api_key_env:
        key = os.environ.get(args.api_key_env)
        if not key:
            parser.error(f"environment variable {args.api_key_env} is empty")
        script = script.model_copy(update={"api_key": SecretStr(key)})
    llm = ScriptedLLM(script, host=args.host, port=args.port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with llm:
        print(f"scripted LLM: {len(script.turns)} turns at {llm.base_url}", flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    if args.record:
        args.record.write_text(json.dumps([r.model_dump() for r in llm.requests], indent=2))
    print(f"scripted LLM: served {llm.turns_served} turns, {len(llm.requests)} requests",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
