"""Serving benchmarks: a server inside the trial's container, up before the client, down after.

vLLM's benchmark_serving.py is a client: the server (`vllm serve ...` or the api_server
module) must be started first and be ready, which for a large model takes minutes. Per trial:
  start   the task's `server_command` in its own session (so stopping it reaches every
          process it forked), output to a log file in the container;
  ready   poll `server_ready_url` from inside the container (so `network=none` is fine: it is
          loopback) until it answers below 500, the server process dies, or the timeout;
  client  the task's `bench_command` runs as for any benchmark;
  stop    SIGTERM to the server's process group, SIGKILL after a grace period.
The server's log is copied next to the trial's log whatever happened.
"""

from __future__ import annotations

import contextlib
import shlex
from pathlib import Path
from typing import Iterator

from executor.parts.repo import REPO_DIR
from executor.core.task import TaskSpec

SERVER_LOG = "/tmp/isobench_server.log"
SERVER_PID = "/tmp/isobench_server.pid"
STOP_GRACE_S = 20

# Runs inside the container with the image's python3: no curl needed. Exit 0 ready, 3 the
# server process ended, 4 timeout.
_READY_PROBE = """
import os, sys, time, urllib.error, urllib.request
url, timeout, pid = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    if not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z":
        sys.exit(3)
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            if response.status < 500:
                sys.exit(0)
    except urllib.error.HTTPError as exc:
        if exc.code < 500:  # answering at all (e.g. 404 on a wrong path) means it is up
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.25)
sys.exit(4)
"""


class ServerNotReady(RuntimeError):
    """The server did not start answering; the message quotes its log."""


def _start(sandbox, command: str) -> int:
    # setsid: the server leads its own process group, which `kill -- -PID` ends as a whole.
    launch = (f"setsid bash -c {shlex.quote(command)} > {SERVER_LOG} 2>&1 < /dev/null & "
              f"echo $! > {SERVER_PID}; cat {SERVER_PID}")
    result = sandbox.check(launch, 60, workdir=REPO_DIR)
    return int(result.stdout.strip().splitlines()[-1])


def _stop(sandbox, pid: int) -> None:
    sandbox.exec(f"kill -TERM -- -{pid} 2>/dev/null; "
                 f"for _ in $(seq {STOP_GRACE_S * 10}); do "
                 f"kill -0 {pid} 2>/dev/null || exit 0; sleep 0.1; done; "
                 f"kill -KILL -- -{pid} 2>/dev/null; true", STOP_GRACE_S + 30)


def _save_log(sandbox, log_file: Path) -> str:
    try:
        text = sandbox.get_file(SERVER_LOG).decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    log_file.write_text(text)
    return text


@contextlib.contextmanager
def serving(sandbox, task: TaskSpec, log_file: Path) -> Iterator[None]:
    """Start the task's server (if it has one) for the duration of the block."""
    if not task.server_command:
        yield
        return
    pid = _start(sandbox, task.server_command)
    try:
        probe = sandbox.exec(
            f"python3 -c {shlex.quote(_READY_PROBE)} {shlex.quote(task.server_ready_url)} "
            f"{task.server_ready_timeout_s} {pid}", task.server_ready_timeout_s + 60)
        if probe.exit_code != 0:
            why = {3: "the server process exited",
                   4: f"no answer within {task.server_ready_timeout_s}s"}.get(
                probe.exit_code, f"probe failed (exit {probe.exit_code}: {probe.tail(2)})")
            tail = " | ".join(_save_log(sandbox, log_file).strip().splitlines()[-3:])
            raise ServerNotReady(f"server not ready at {task.server_ready_url}: {why}; "
                                 f"server log: {tail[-300:] or '(empty)'}")
        yield
    finally:
        _stop(sandbox, pid)
        _save_log(sandbox, log_file)
