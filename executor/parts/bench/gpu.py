"""The GPU's state around each trial, read from `nvidia-smi` on the host.

Two jobs, both for trials that share one GPU:
  * between trials, wait until the GPU is idle: no compute process that was not there at the
    start, and memory back to its starting level (vLLM's own perf CI waits for memory to drain
    the same way; a trial that starts while the last one's process is still freeing memory, or
    while another job holds the GPU, is measuring that job);
  * per trial, record name, driver, clocks (SM, memory), temperature and power before and after
    the benchmark, so throttling or a neighbour shows up in results.json instead of as noise.

With pynvml on the host (the `gpu` extra), every trial also records NVML telemetry (clocks,
power, temperature, throttle reasons, ECC/Xid, processes; gpu_telemetry.py) and the guard tries
to lock the clocks for the benchmark, unlocking them in `close()`.

The parsers are pure functions over nvidia-smi's `--format=csv,noheader,nounits` text. With no
nvidia-smi on the host (CPU machines, CI), `GpuMonitor.detect()` is None and trials record
`gpu: None`; nothing else changes.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import time
from typing import Callable

from pydantic import BaseModel, Field

from executor.parts.bench.gpu_telemetry import ClockLock, NvmlTelemetry, TrialTelemetry

# Fields that every driver of the last years answers; an unknown field fails the whole query.
GPU_FIELDS = ("index", "uuid", "name", "driver_version", "pstate", "clocks.sm", "clocks.mem",
              "temperature.gpu", "power.draw", "memory.used", "memory.total",
              "utilization.gpu")
APP_FIELDS = ("gpu_uuid", "pid", "used_memory")
QUERY_TIMEOUT_S = 20
IDLE_TIMEOUT_S = 120
IDLE_POLL_S = 0.5
# Memory a driver or allocator may keep after a process exits without anything running.
IDLE_TOLERANCE_MIB = 256


class GpuState(BaseModel):
    """One GPU at one moment, as nvidia-smi reports it (None where it says N/A)."""

    index: int = Field(description="nvidia-smi's index of the GPU.")
    uuid: str = Field(description="Stable id of the GPU (GPU-...).")
    name: str = Field(description="Product name, e.g. 'NVIDIA H100 80GB HBM3'.")
    driver_version: str = Field(description="Driver version, e.g. '580.159.04'.")
    pstate: str | None = Field(default=None, description="Performance state, P0 (max) to P12.")
    sm_clock_mhz: float | None = Field(default=None, description="Current SM clock.")
    mem_clock_mhz: float | None = Field(default=None, description="Current memory clock.")
    temperature_c: float | None = Field(default=None, description="Core temperature.")
    power_w: float | None = Field(default=None, description="Power draw.")
    memory_used_mib: float | None = Field(default=None, description="Memory in use.")
    memory_total_mib: float | None = Field(default=None, description="Memory on the card.")
    utilization_pct: float | None = Field(default=None, description="Recent SM utilization.")


class GpuProcess(BaseModel):
    """A compute process on a GPU."""

    gpu_uuid: str = Field(description="The GPU it runs on.")
    pid: int = Field(description="Process id (in nvidia-smi's pid namespace).")
    used_memory_mib: float | None = Field(default=None, description="Its GPU memory.")


class GpuTrialInfo(BaseModel):
    """What one trial saw of its GPU(s)."""

    idle_reached: bool = Field(description="The GPU was idle before the trial started.")
    idle_wait_s: float = Field(description="How long the trial waited for an idle GPU.")
    idle_reason: str = Field(default="", description="What kept it busy, if it never idled.")
    before: list[GpuState] = Field(default_factory=list, description="State before the run.")
    after: list[GpuState] = Field(default_factory=list, description="State right after it.")
    telemetry: TrialTelemetry | None = Field(default=None, description="NVML telemetry and the "
                                             "trial's flags; None without pynvml/NVML.")


class GpuQueryError(RuntimeError):
    """nvidia-smi failed or printed something that is not its CSV."""


# --------------------------------------------------------------------------- parsing


def _cell(value: str) -> str | None:
    value = value.strip()
    # "[N/A]", "[Not Supported]", "N/A", "[Unknown Error]": no reading, not an error
    return None if not value or value.startswith("[") or value == "N/A" else value


def _number(value: str) -> float | None:
    cell = _cell(value)
    if cell is None:
        return None
    try:
        return float(cell)
    except ValueError:
        raise GpuQueryError(f"expected a number from nvidia-smi, got {value.strip()!r}") \
            from None


def _rows(text: str, width: int) -> list[list[str]]:
    rows = []
    for row in csv.reader(line for line in text.splitlines() if line.strip()):
        if len(row) == 1 and "no running processes" in row[0].lower():
            continue
        if len(row) != width:
            raise GpuQueryError(f"nvidia-smi row has {len(row)} fields, expected {width}: "
                                f"{','.join(row)[:200]!r}")
        rows.append(row)
    return rows


def parse_gpu_states(text: str) -> list[GpuState]:
    """`nvidia-smi --query-gpu=<GPU_FIELDS> --format=csv,noheader,nounits` -> one per GPU."""
    states = []
    for row in _rows(text, len(GPU_FIELDS)):
        index, uuid, name, driver, pstate, *numbers = row
        sm, mem, temp, power, used, total, util = (_number(v) for v in numbers)
        if _cell(index) is None or not index.strip().isdigit():
            raise GpuQueryError(f"nvidia-smi gave no GPU index in {','.join(row)[:200]!r}")
        states.append(GpuState(index=int(index), uuid=uuid.strip(), name=name.strip(),
                               driver_version=driver.strip(), pstate=_cell(pstate),
                               sm_clock_mhz=sm, mem_clock_mhz=mem, temperature_c=temp,
                               power_w=power, memory_used_mib=used, memory_total_mib=total,
                               utilization_pct=util))
    return states


def parse_compute_apps(text: str) -> list[GpuProcess]:
    """`nvidia-smi --query-compute-apps=<APP_FIELDS> --format=csv,noheader,nounits`."""
    apps = []
    for uuid, pid, memory in _rows(text, len(APP_FIELDS)):
        if _cell(pid) is None:
            continue  # some drivers list a process they cannot name in this namespace
        apps.append(GpuProcess(gpu_uuid=uuid.strip(), pid=int(pid),
                               used_memory_mib=_number(memory)))
    return apps


def select_gpus(states: list[GpuState], device_ids: list[str] | None) -> list[GpuState]:
    """The GPUs a trial uses: all (None) or those whose index or uuid is listed. Ids nvidia-smi
    does not know (MIG instances) select every GPU, so the wait stays on the safe side."""
    if not device_ids:
        return states
    chosen = [s for s in states if str(s.index) in device_ids or s.uuid in device_ids]
    return chosen or states


def busy_reason(states: list[GpuState], apps: list[GpuProcess], baseline: dict[str, float],
                baseline_pids: set[int], tolerance_mib: float = IDLE_TOLERANCE_MIB) -> str:
    """Why the selected GPUs are not idle yet, or '' when they are.

    Idle means: no compute process except those already there when the benchmark started,
    and memory no more than `tolerance_mib` above its level then (`baseline`, by uuid).
    """
    uuids = {s.uuid for s in states}
    foreign = [a for a in apps if a.gpu_uuid in uuids and a.pid not in baseline_pids]
    if foreign:
        return "compute process(es) still running: " + ", ".join(
            f"pid {a.pid} ({a.used_memory_mib or 0:.0f} MiB)" for a in foreign)
    for state in states:
        start = baseline.get(state.uuid)
        if start is not None and state.memory_used_mib is not None \
                and state.memory_used_mib > start + tolerance_mib:
            return (f"GPU {state.index} memory {state.memory_used_mib:.0f} MiB, "
                    f"{start:.0f} MiB at the start")
    return ""


# --------------------------------------------------------------------------- host queries


Query = Callable[[list[str]], str]


def _run_nvidia_smi(args: list[str]) -> str:
    try:
        proc = subprocess.run(["nvidia-smi", *args], capture_output=True, text=True,
                              timeout=QUERY_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GpuQueryError(f"nvidia-smi {args[0]}: {exc}") from exc
    if proc.returncode != 0:
        raise GpuQueryError(f"nvidia-smi {args[0]} exited {proc.returncode}: "
                            f"{(proc.stderr or proc.stdout).strip()[:300]}")
    return proc.stdout


class GpuMonitor:
    """Reads GPU state and compute processes through nvidia-smi on the host."""

    def __init__(self, query: Query = _run_nvidia_smi):
        self._query = query

    @classmethod
    def detect(cls) -> "GpuMonitor | None":
        """A monitor when nvidia-smi is on PATH and answers; None on machines without one."""
        if shutil.which("nvidia-smi") is None:
            return None
        monitor = cls()
        try:
            if not monitor.states():
                return None
        except GpuQueryError:
            return None
        return monitor

    def states(self) -> list[GpuState]:
        return parse_gpu_states(self._query([f"--query-gpu={','.join(GPU_FIELDS)}",
                                             "--format=csv,noheader,nounits"]))

    def compute_apps(self) -> list[GpuProcess]:
        return parse_compute_apps(self._query([f"--query-compute-apps={','.join(APP_FIELDS)}",
                                               "--format=csv,noheader,nounits"]))


class GpuGuard:
    """Per trial: wait for the GPUs to be idle, then snapshot them before and after the run.

    The baseline (memory in use, processes present) is taken when the guard is made, i.e.
    before the first trial of a benchmark.
    """

    def __init__(self, monitor: GpuMonitor, device_ids: list[str] | None = None, *,
                 idle_timeout_s: float = IDLE_TIMEOUT_S, poll_s: float = IDLE_POLL_S,
                 tolerance_mib: float = IDLE_TOLERANCE_MIB,
                 telemetry: NvmlTelemetry | None = None, lock_clocks: bool = False):
        self.monitor, self.device_ids, self.telemetry = monitor, device_ids, telemetry
        self.clock_lock: ClockLock | None = None
        if telemetry is not None:
            self.clock_lock = telemetry.lock_clocks() if lock_clocks else \
                ClockLock(attempted=False, result="not asked")
        self.idle_timeout_s, self.poll_s, self.tolerance_mib = idle_timeout_s, poll_s, \
            tolerance_mib
        start = self._selected()
        self.baseline = {s.uuid: s.memory_used_mib for s in start
                         if s.memory_used_mib is not None}
        self.baseline_pids = {a.pid for a in monitor.compute_apps()}

    def _selected(self) -> list[GpuState]:
        return select_gpus(self.monitor.states(), self.device_ids)

    def before_trial(self) -> GpuTrialInfo:
        """Wait (up to the timeout) until idle; the trial runs either way, and says so."""
        started = time.monotonic()
        while True:
            states = self._selected()
            reason = busy_reason(states, self.monitor.compute_apps(), self.baseline,
                                 self.baseline_pids, self.tolerance_mib)
            waited = time.monotonic() - started
            if not reason or waited >= self.idle_timeout_s:
                return GpuTrialInfo(idle_reached=not reason, idle_wait_s=round(waited, 3),
                                    idle_reason=reason, before=states,
                                    telemetry=self.telemetry.before_trial()
                                    if self.telemetry else None)
            time.sleep(self.poll_s)  # polling hardware state: there is nothing to wait on

    def after_trial(self, info: GpuTrialInfo) -> GpuTrialInfo:
        try:
            info.after = self._selected()
        except GpuQueryError:
            pass  # a failed read after the run must not fail a trial that measured fine
        if self.telemetry is not None and info.telemetry is not None:
            info.telemetry = self.telemetry.after_trial(info.telemetry)
        return info

    def close(self) -> dict | None:
        """Unlock the clocks if they were locked and stop NVML; the lock record as JSON."""
        if self.telemetry is None:
            return None
        lock = self.telemetry.close(self.clock_lock)
        return lock.model_dump(mode="json") if lock else None


def make_guard(device_ids: list[str] | None, log: Callable[[str], None] = print,
               idle_timeout_s: float = IDLE_TIMEOUT_S, lock_clocks: bool = False
               ) -> GpuGuard | None:
    """A guard for the host's GPUs, or None (and one log line) when nvidia-smi is absent;
    with NVML telemetry (and a clock-lock attempt) where pynvml works."""
    monitor = GpuMonitor.detect()
    if monitor is None:
        log("bench: nvidia-smi not found or not answering on this host: GPU state is not "
            "recorded and trials do not wait for an idle GPU")
        return None
    telemetry = NvmlTelemetry.open(device_ids, log)
    guard = GpuGuard(monitor, device_ids, idle_timeout_s=idle_timeout_s, telemetry=telemetry,
                     lock_clocks=lock_clocks)
    if guard.clock_lock is not None and guard.clock_lock.attempted:
        log(f"bench: GPU clock lock: {guard.clock_lock.result}"
            f"{' ' + str(guard.clock_lock.locked_mhz) if guard.clock_lock.locked_mhz else ''}")
    return guard
