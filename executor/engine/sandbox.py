"""One container, always removed, on whichever engine the run uses (engine/base.py).

A `Sandbox` is a context manager over a fresh container whose main process is
`sleep <budget>` under an init. That gives three guarantees:
  * it expires by itself (and `auto_remove` deletes it) even if the controller is killed -9;
  * `__exit__` removes it on every path, Ctrl-C included;
  * labels name its run, item, phase and controller process, so `reap_orphans` can remove
    the containers of a controller that died, and nothing else.

Commands run through `exec`, wrapped in coreutils `timeout` (which signals the whole process
group), with a controller-side watchdog as a second line for processes that ignore signals.
Secrets travel only as exec-time environment and are redacted from everything captured.
"""

from __future__ import annotations

import io
import os
import re
import socket
import sys
import tarfile
import threading
import time
import uuid
from pathlib import Path, PurePosixPath
from typing import Callable, Literal

from executor.engine.chosen import current_engine, engine_client
from executor.engine.cgroup_cpu import cpu_usage_file, read_cpu_seconds
from executor.engine.docker import ENGINE_ERRORS, APIError, ImageNotFound, NotFound
from executor.core.determinism import DETERMINISM_ENV
from executor.core.errors import EngineUnavailable, InfraError, classify_text, unclassified
from executor.core.redact import LineRedactor, Redactor
from executor.core.resources import ExecResult, SandboxSpec
from executor.core.tarballs import safe_extract

LABEL_MANAGED = "isobench.managed"
LABEL_RUN = "isobench.run_id"
LABEL_ITEM = "isobench.item"
LABEL_PHASE = "isobench.phase"
LABEL_HOST = "isobench.host"
LABEL_PID = "isobench.controller_pid"
LABEL_PID_START = "isobench.controller_start"
LABEL_EXPIRES = "isobench.expires_at"

CAPTURE_LIMIT = 2 * 1024 * 1024  # bytes of each stream kept in memory; files get everything
WATCHDOG_GRACE_S = 60  # after `timeout -k` should have killed everything


# The cgroup's OOM-kill counter, seen from inside the container (cgroup v2, then v1).
OOM_COUNT_COMMAND = ("cat /sys/fs/cgroup/memory.events 2>/dev/null || "
                     "cat /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null || true")


# --------------------------------------------------------------------------- the engine


def engine_facts() -> dict[str, str]:
    """The current engine's name, version, storage driver and kernel (hostfacts records them)."""
    return current_engine().facts()


_warned_limits: set[str] = set()


def warn_unenforced_limits(spec: SandboxSpec) -> None:
    """Say once per process, in one line, which of the sandbox's limits the engine cannot set
    (rootless podman on cgroup v1: none of them); the host facts record them too."""
    asked = [name for name in ("cpus", "cpuset", "memory", "pids")
             if getattr(spec.limits, name) is not None]
    try:
        unenforced = current_engine().unenforced_limits()
    except (EngineUnavailable, *ENGINE_ERRORS):
        return  # a warning never fails a sandbox: starting it will say what is wrong
    unset = [name for name in unenforced if name in asked and name not in _warned_limits]
    if unset:
        _warned_limits.update(unset)
        print(f"isobench: warning: {current_engine().name} cannot enforce the "
              f"{', '.join(unset)} limit(s) on this host (rootless on cgroup v1, or controllers "
              f"not delegated): sandboxes run without them; see docs/podman.md", file=sys.stderr)


# --------------------------------------------------------------------------- controller identity


def _process_start_ticks(pid: int) -> str:
    """Kernel start time of a process: (pid, start) names a process even after pid reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def controller_labels() -> dict[str, str]:
    pid = os.getpid()
    return {LABEL_MANAGED: "1", LABEL_HOST: socket.gethostname(), LABEL_PID: str(pid),
            LABEL_PID_START: _process_start_ticks(pid)}


def _controller_alive(labels: dict[str, str]) -> bool:
    pid = labels.get(LABEL_PID, "")
    if not pid.isdigit():
        return False
    return _process_start_ticks(int(pid)) == labels.get(LABEL_PID_START) != ""


def reap_orphans(client=None) -> list[str]:
    """Remove this host's isobench containers whose controller process is gone, or whose
    expiry has passed.

    Containers of live controllers, and of other hosts sharing the engine, are left alone,
    exited ones included: their controller may be about to read why one exited (OOMKilled)
    and removes it itself. Returns the names removed.
    """
    client = client or engine_client()
    removed = []
    host = socket.gethostname()
    # ignore_removed: a container can expire (auto_remove) between the list and its inspect.
    for container in client.containers.list(all=True, filters={"label": LABEL_MANAGED},
                                            ignore_removed=True):
        labels = container.labels or {}
        if labels.get(LABEL_HOST) != host:
            continue
        expired = float(labels.get(LABEL_EXPIRES, "inf")) < time.time()
        if expired or not _controller_alive(labels):
            try:
                container.remove(force=True)
                removed.append(container.name)
            except NotFound:
                pass  # it expired and removed itself meanwhile
            except APIError as exc:
                if "already in progress" not in str(exc):
                    raise
    return removed


def list_managed(client, **label_filters: str) -> list:
    filters = [LABEL_MANAGED] + [f"{k}={v}" for k, v in label_filters.items()]
    return client.containers.list(all=True, filters={"label": filters}, ignore_removed=True)


# --------------------------------------------------------------------------- stopping an item

# (run_id, item) pairs whose sandboxes this process must not start: a cancelled batch item.
# Module state because the sandboxes of one item are opened in several places (agent, variant,
# gate, trials) that know the run and item but not the batch.
_stopped: set[tuple[str, str]] = set()
_stopped_lock = threading.Lock()


class SandboxStopped(InfraError):
    """The item was stopped (its batch was cancelled): no sandbox of it may start."""


def refuse_item_sandboxes(run_id: str, item: str) -> None:
    """From now on `Sandbox.start` of this item raises SandboxStopped, until
    `allow_item_sandboxes`. Call before `remove_item_sandboxes`: `start` checks again once its
    container exists, so a container created meanwhile is listed there or removed by its
    creator."""
    with _stopped_lock:
        _stopped.add((run_id, item))


def remove_item_sandboxes(run_id: str, item: str,
                          client=None) -> list[str]:
    """Remove this process's running sandboxes of one item: the commands running in them end,
    so whoever waits on them returns. Returns the names removed."""
    mine = {LABEL_RUN: run_id, LABEL_ITEM: item, LABEL_PID: str(os.getpid())}
    removed = []
    for container in list_managed(client or engine_client(), **mine):
        try:
            container.remove(force=True)
            removed.append(container.name)
        except NotFound:
            pass  # its own `with Sandbox` removed it meanwhile
        except APIError as exc:
            if "already in progress" not in str(exc):
                raise
    return removed


def allow_item_sandboxes(run_id: str, item: str) -> None:
    with _stopped_lock:
        _stopped.discard((run_id, item))


def _item_stopped(spec: "SandboxSpec") -> bool:
    with _stopped_lock:
        return (spec.run_id, spec.item) in _stopped


# --------------------------------------------------------------------------- sandbox


def _container_name(spec: SandboxSpec) -> str:
    raw = f"isobench-{spec.run_id}-{spec.item}-{spec.phase}-{uuid.uuid4().hex[:6]}"
    return re.sub(r"[^a-zA-Z0-9_.-]", "-", raw)[:200]


def container_kwargs(spec: SandboxSpec, name: str) -> dict:
    """`containers.run` arguments for a sandbox, GPUs as the current engine gives them (pure:
    unit-testable without GPUs)."""
    labels = {**controller_labels(), LABEL_RUN: spec.run_id, LABEL_ITEM: spec.item,
              LABEL_PHASE: spec.phase, LABEL_EXPIRES: str(int(time.time()) + spec.budget_s)}
    kwargs: dict = dict(
        image=spec.image, command=["sleep", str(spec.budget_s)], name=name, labels=labels,
        detach=True, auto_remove=True, init=True,
        environment={**DETERMINISM_ENV, **spec.env},
        working_dir=spec.workdir, network_mode=spec.network, pids_limit=spec.limits.pids,
        mem_limit=spec.limits.memory, cpuset_cpus=spec.limits.cpuset,
        nano_cpus=int(spec.limits.cpus * 1e9) if spec.limits.cpus else None,
        volumes={m.host_path: {"bind": m.container_path, "mode": "ro" if m.read_only else "rw"}
                 for m in spec.mounts})
    if spec.gpus.mode == "none":
        kwargs["shm_size"] = spec.limits.shm_size
        return kwargs
    kwargs.update(current_engine().gpu_run_options(spec.gpus))
    kwargs["environment"] = {"NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
                             **kwargs["environment"]}
    return kwargs


class Sandbox:
    """A fresh container for one phase of one item. Use as a context manager."""

    def __init__(self, spec: SandboxSpec, client=None,
                 redactor: Redactor | None = None):
        self.spec = spec
        self._client = client or engine_client()
        self._stream_client = engine_client(timeout=None)
        self._redactor = redactor or Redactor()
        self.container = None
        self.name = _container_name(spec)
        self._cpu_file: Path | Literal[False] | None = None  # False: looked, none readable

    # -- lifecycle

    def __enter__(self) -> "Sandbox":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.remove()

    def start(self) -> None:
        spec = self.spec
        if _item_stopped(spec):
            raise SandboxStopped(f"{spec.item} was stopped: sandbox {spec.phase} not started")
        warn_unenforced_limits(spec)
        try:
            self.container = current_engine().run_container(self._client,
                                                            container_kwargs(spec, self.name))
        except ImageNotFound as exc:
            raise InfraError(f"image {spec.image} is not on this engine; build it first") from exc
        except APIError as exc:
            sig = classify_text(str(exc), "docker") or unclassified(str(exc), "docker")
            raise InfraError(f"could not start sandbox {self.name}: {exc.explanation or exc}",
                             sig) from exc
        if _item_stopped(spec):  # stopped while the container was being created
            self.remove()
            raise SandboxStopped(f"{spec.item} was stopped: sandbox {spec.phase} removed")

    def remove(self) -> None:
        if self.container is None:
            return
        try:
            self.container.remove(force=True)
        except NotFound:
            pass  # expired on its own
        except APIError as exc:
            if "already in progress" not in str(exc):
                raise
        finally:
            self.container = None

    @property
    def id(self) -> str:
        assert self.container is not None, "sandbox not started"
        return self.container.id

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of this sandbox for its memory limit. The
        engine's OOMKilled flag covers only the main process; an exec'd one (the agent, a
        trial) killed by the cgroup's OOM killer shows only in the cgroup's oom_kill count."""
        try:
            self.container.reload()
            if self.container.attrs["State"].get("OOMKilled"):
                return True
            if self.container.status != "running":
                return False
            out = self.container.exec_run(["sh", "-c", OOM_COUNT_COMMAND], user="root")
            return any(line.split()[:1] == ["oom_kill"] and line.split()[1:2] != ["0"]
                       for line in out.output.decode(errors="replace").splitlines())
        except NotFound:
            return False

    # -- commands

    def exec(self, command: str, timeout_s: float, *, env: dict[str, str] | None = None,
             secret_env: dict[str, str] | None = None, workdir: str | None = None,
             user: str | None = None, stdout_file: Path | None = None,
             stderr_file: Path | None = None,
             on_output: Callable[[str, str], None] | None = None) -> ExecResult:
        """Run a bash command; kill its process group after `timeout_s`.

        `secret_env` is merged into the environment of this process only and its values are
        redacted from the captured output, the files and `on_output`.
        """
        redactor = self._redactor.with_secrets((secret_env or {}).values())
        full_env = {**(env or {}), **(secret_env or {})}
        argv = ["timeout", "-k", "10", str(max(1, int(timeout_s))), "bash", "-c", command]
        api = self._stream_client.api
        started = time.monotonic()
        exec_id = api.exec_create(self.id, argv, environment=full_env, workdir=workdir,
                                  user=user or "")["Id"]
        watchdog = threading.Timer(timeout_s + WATCHDOG_GRACE_S, self._watchdog_kill)
        watchdog.daemon = True
        watchdog.start()
        streams = {"stdout": (LineRedactor(redactor), io.StringIO(), stdout_file),
                   "stderr": (LineRedactor(redactor), io.StringIO(), stderr_file)}
        handles = {name: (open(path, "a", encoding="utf-8") if path else None)
                   for name, (_, _, path) in streams.items()}
        try:
            for out, err in api.exec_start(exec_id, stream=True, demux=True):
                for name, chunk in (("stdout", out), ("stderr", err)):
                    if chunk:
                        self._emit(name, streams[name][0].feed(chunk.decode("utf-8", "replace")),
                                   streams[name][1], handles[name], on_output)
            for name, (line_redactor, buffer, _) in streams.items():
                self._emit(name, line_redactor.flush(), buffer, handles[name], on_output)
        finally:
            watchdog.cancel()
            for handle in handles.values():
                if handle:
                    handle.close()
        exit_code = api.exec_inspect(exec_id).get("ExitCode")
        exit_code = -1 if exit_code is None else int(exit_code)
        return ExecResult(exit_code=exit_code, stdout=streams["stdout"][1].getvalue(),
                          stderr=streams["stderr"][1].getvalue(),
                          duration_s=time.monotonic() - started,
                          timed_out=exit_code in (124, 137) and
                          time.monotonic() - started >= timeout_s)

    @staticmethod
    def _emit(name: str, text: str, buffer: io.StringIO, handle, on_output) -> None:
        if not text:
            return
        if buffer.tell() < CAPTURE_LIMIT:
            buffer.write(text[: CAPTURE_LIMIT - buffer.tell()])
        if handle:
            handle.write(text)
            handle.flush()
        if on_output:
            on_output(name, text)

    def _watchdog_kill(self) -> None:
        # `timeout -k` failed to end the command (e.g. uninterruptible sleep): end the sandbox.
        self.remove()

    def check(self, command: str, timeout_s: float = 300, **kwargs) -> ExecResult:
        """Run a command that must succeed; a failure is an InfraError with the output tail."""
        result = self.exec(command, timeout_s, **kwargs)
        if not result.ok:
            tail = result.tail()
            sig = classify_text(tail, "sandbox") or unclassified(tail.splitlines()[-1:][0]
                                                                 if tail else "", "sandbox")
            raise InfraError(f"`{command[:80]}` failed in {self.name} "
                             f"(exit {result.exit_code}): {tail[-400:]}", sig)
        return result

    def commit(self, tag: str, labels: dict[str, str]) -> str:
        """Snapshot this container as an image (the prepared agent variant); returns its id.

        The image keeps the base image's command and gets `labels` instead of the sandbox's
        run labels, so containers started from it are not mistaken for this one.
        """
        repository, _, version = tag.rpartition(":")
        # Unpaused where the engine cannot freeze (rootless podman on cgroup v1): only the
        # sandbox's `sleep` runs while a commit copies, so nothing writes meanwhile.
        image = self.container.commit(repository=repository, tag=version,
                                      conf={"Labels": labels, "Cmd": ["bash"]},
                                      pause=current_engine().can_pause())
        return image.id

    def cpu_usage_s(self) -> float | None:
        """CPU seconds the container's processes have used, from the container's cgroup, read
        outside the container (nothing inside can change it); None when it cannot be read.

        The cgroup's counter file is read directly where this host can see it (cgroup_cpu.py):
        microseconds, against about half a second for the engine's stats API, which stays the
        fallback (a remote engine)."""
        if self._cpu_file is None:  # looked up once per container
            if not current_engine().measures_container_cpu():
                return None
            self._cpu_file = self._find_cpu_file() or False
        if self._cpu_file and (seconds := read_cpu_seconds(self._cpu_file)) is not None:
            return seconds
        try:
            stats = self.container.stats(stream=False, one_shot=True)
            return int(stats["cpu_stats"]["cpu_usage"]["total_usage"]) / 1e9
        except (APIError, KeyError, TypeError, ValueError):
            return None

    def _find_cpu_file(self) -> Path | None:
        try:
            self.container.reload()  # `run` returns the attributes from before the start
        except APIError:
            return None
        pid = (self.container.attrs.get("State") or {}).get("Pid") or 0
        return cpu_usage_file(int(pid), must_contain=self.container.id) if pid else None

    def changes(self) -> list[tuple[str, str]]:
        """What changed in the container's filesystem against its image, as (kind, path) with
        kind A(dded), C(hanged) or D(eleted): `docker diff`."""
        kinds = {0: "C", 1: "A", 2: "D"}
        return [(kinds.get(c.get("Kind"), "?"), c.get("Path", ""))
                for c in (self.container.diff() or [])]

    # -- files

    def put_archive(self, directory: str, tar: bytes) -> None:
        """Unpack a tar into a directory of the container."""
        self.container.put_archive(directory, tar)

    def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        target = PurePosixPath(path)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo(target.name)
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            tar.addfile(info, io.BytesIO(data))
        self.check(f"mkdir -p '{target.parent}'", 30)
        self.container.put_archive(str(target.parent), buffer.getvalue())

    def get_file(self, path: str) -> bytes:
        """Bytes of one file in the container; FileNotFoundError if it is not there."""
        try:
            chunks, _ = self.container.get_archive(path)
        except NotFound as exc:
            raise FileNotFoundError(path) from exc
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            member = tar.next()
            if member is None or not member.isfile():
                raise FileNotFoundError(path)
            return tar.extractfile(member).read()

    def get_tree(self, path: str, host_dir: Path) -> None:
        """Copy a directory out of the container into host_dir (regular files and
        directories only: no links, devices or paths outside it); FileNotFoundError if it is
        not there. OpenHands' persisted conversation is read this way."""
        try:
            chunks, _ = self.container.get_archive(path)
        except NotFound as exc:
            raise FileNotFoundError(path) from exc
        host_dir.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            safe_extract(tar, host_dir, members=[m for m in tar.getmembers()
                                                 if m.isfile() or m.isdir()])


def engine_gpu_runtime() -> bool:
    """Whether the current engine can give containers GPUs (a runtime or a CDI spec)."""
    return current_engine().gpu_ready()
