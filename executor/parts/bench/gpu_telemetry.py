"""GPU telemetry per trial from NVML (the `nvidia-ml-py` package, `import pynvml`).

nvidia-smi (gpu.py) answers "is the GPU idle, what were its clocks"; NVML answers what a trial
needs to be trusted, without parsing text: SM and memory clocks, power, temperature, the
clock-event (throttle) reasons, the driver's cumulative power- and thermal-violation time, ECC
error counts, Xid events, and the compute processes on the GPU.

The flagging rule (`telemetry_flags`), one reason per line in `TrialTelemetry.flags`:
  throttled     power or thermal violation time grew by more than THROTTLE_SHARE of the
                trial's duration, or a hardware/thermal slowdown reason was active before or
                after the trial (a power cap at idle is not, it is the idle state)
  contention    a compute process that was not on the GPU when the benchmark started was on it
                when the trial started (after gpu.py's idle wait gave up)
  gpu error     an Xid event during the trial, or the volatile uncorrected ECC count grew
measure.py leaves flagged trials out of the decision and runs them again, a bounded number of
times (BenchOptions.max_reruns).

Clock locking: `nvmlDeviceSetGpuLockedClocks` to the GPU's default applications (base) clock,
which the GPU can hold under load, so boost clocks that depend on temperature do not move the
numbers; it needs root and a Volta or later GPU. The attempt and its result are recorded
(`ClockLock`) either way, and `close()` resets exactly what was locked.

No pynvml, or NVML cannot start (no driver): `NvmlTelemetry.open` logs one line and returns
None; trials then record `telemetry: null`. Functions a GPU does not support
(NVMLError_NotSupported) or may not be called (NVMLError_NoPermission) leave their fields None
and are listed once in `unsupported`.
"""

from __future__ import annotations

import importlib
import time
from typing import Any, Callable

from pydantic import BaseModel, Field

Log = Callable[[str], None]
THROTTLE_SHARE = 0.01
MIB = 1024 * 1024
# Clock-event reasons that slow a running workload (NVML's nvmlClocksEventReason* bits).
SLOWDOWN_REASONS = {0x8: "hw_slowdown", 0x20: "sw_thermal_slowdown",
                    0x40: "hw_thermal_slowdown", 0x80: "hw_power_brake_slowdown"}
OTHER_REASONS = {0x1: "gpu_idle", 0x2: "applications_clocks_setting", 0x4: "sw_power_cap",
                 0x10: "sync_boost", 0x100: "display_clock_setting"}


class GpuSample(BaseModel):
    """One GPU at one moment, from NVML (None: not supported or not permitted)."""

    index: int = Field(description="NVML device index.")
    uuid: str | None = Field(default=None, description="GPU-... id.")
    name: str | None = Field(default=None, description="Product name.")
    at: float = Field(description="time.monotonic() of the sample (for violation rates).")
    sm_clock_mhz: int | None = Field(default=None, description="Current SM clock.")
    mem_clock_mhz: int | None = Field(default=None, description="Current memory clock.")
    power_w: float | None = Field(default=None, description="Power draw.")
    temperature_c: int | None = Field(default=None, description="Core temperature.")
    clock_reasons: list[str] = Field(default_factory=list, description="Active clock-event "
                                     "(throttle) reasons.")
    power_violation_ns: int | None = Field(default=None, description="Cumulative time the "
                                           "power policy held clocks down.")
    thermal_violation_ns: int | None = Field(default=None, description="Cumulative time the "
                                             "thermal policy held clocks down.")
    ecc_uncorrected: int | None = Field(default=None, description="Volatile uncorrected ECC "
                                        "errors since the driver loaded.")
    processes: list[int] = Field(default_factory=list, description="Pids of compute processes "
                                 "(host pid namespace).")


class TrialTelemetry(BaseModel):
    """What NVML saw around one trial, and whether that disqualifies it."""

    before: list[GpuSample] = Field(default_factory=list, description="At the trial's start.")
    after: list[GpuSample] = Field(default_factory=list, description="Right after the run.")
    xid_events: list[int] = Field(default_factory=list, description="Xid codes during it.")
    flags: list[str] = Field(default_factory=list, description="Why the trial should not count "
                             "(see the module doc); empty: it counts.")


class ClockLock(BaseModel):
    """The clock-locking attempt and what became of it."""

    attempted: bool = Field(description="Locking was asked for.")
    locked_mhz: dict[int, int] = Field(default_factory=dict, description="Per device index, the "
                                       "SM clock it was locked at.")
    result: str = Field(description="locked | not permitted (needs root) | not supported | "
                                    "not asked | error text.")
    reset: str | None = Field(default=None, description="reset | error text; None: nothing "
                                                        "was locked.")


def telemetry_flags(telemetry: TrialTelemetry, baseline_pids: set[int]) -> list[str]:
    """The flagging rule of the module doc, as reasons (empty: the trial counts)."""
    flags = []
    after = {s.index: s for s in telemetry.after}
    for start in telemetry.before:
        end = after.get(start.index)
        slow = [r for s in (start, end) if s for r in s.clock_reasons
                if r in SLOWDOWN_REASONS.values()]
        if slow:
            flags.append(f"throttled: GPU {start.index} {', '.join(sorted(set(slow)))}")
        if end is not None and end.at > start.at:
            window_ns = (end.at - start.at) * 1e9
            for what in ("power", "thermal"):
                a = getattr(start, f"{what}_violation_ns")
                b = getattr(end, f"{what}_violation_ns")
                if a is not None and b is not None and b - a > THROTTLE_SHARE * window_ns:
                    flags.append(f"throttled: GPU {start.index} {what} violation "
                                 f"{(b - a) / window_ns:.1%} of the trial")
            if start.ecc_uncorrected is not None and end.ecc_uncorrected is not None \
                    and end.ecc_uncorrected > start.ecc_uncorrected:
                flags.append(f"gpu error: GPU {start.index} uncorrected ECC errors "
                             f"+{end.ecc_uncorrected - start.ecc_uncorrected}")
        foreign = sorted(set(start.processes) - baseline_pids)
        if foreign:
            flags.append(f"contention: GPU {start.index} compute process(es) "
                         f"{', '.join(map(str, foreign))} at the start")
    if telemetry.xid_events:
        flags.append(f"gpu error: Xid {', '.join(map(str, telemetry.xid_events))}")
    return flags


def trial_flag(record) -> str | None:
    """measure.Flagger: the trial's telemetry flags as one line, or None (no flags, no NVML)."""
    telemetry = record.gpu.telemetry if record.gpu is not None else None
    return "; ".join(telemetry.flags) if telemetry is not None and telemetry.flags else None


class NvmlTelemetry:
    """Samples the selected GPUs through pynvml; see the module doc."""

    def __init__(self, nvml: Any, device_ids: list[str] | None = None):
        self.nvml = nvml
        self.unsupported: set[str] = set()
        count = nvml.nvmlDeviceGetCount()
        handles = [(i, nvml.nvmlDeviceGetHandleByIndex(i)) for i in range(count)]
        if device_ids:
            chosen = [(i, h) for i, h in handles
                      if str(i) in device_ids or self._read("uuid", nvml.nvmlDeviceGetUUID, h)
                      in device_ids]
            handles = chosen or handles  # MIG or unknown ids: watch them all, as gpu.py does
        self.handles = handles
        self.locked: dict[int, int] = {}
        self.events = self._xid_event_set()
        self.baseline_pids = {pid for s in self.sample() for pid in s.processes}

    @classmethod
    def open(cls, device_ids: list[str] | None = None, log: Log = print
             ) -> "NvmlTelemetry | None":
        """Telemetry for the host's GPUs, or None (and one log line) without pynvml/NVML."""
        try:
            nvml = importlib.import_module("pynvml")
        except ImportError:
            log("bench: pynvml not installed (pip install 'isobench[gpu]'): no GPU telemetry "
                "(clocks, throttling, Xid) per trial")
            return None
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            log(f"bench: NVML did not start ({exc}): no GPU telemetry per trial")
            return None
        try:
            return cls(nvml, device_ids)
        except nvml.NVMLError as exc:
            log(f"bench: NVML could not list the GPUs ({exc}): no GPU telemetry per trial")
            nvml.nvmlShutdown()
            return None

    # ----------------------------------------------------------------------- reading

    def _read(self, what: str, fn: Callable, *args) -> Any:
        """fn(*args), or None when NVML says the GPU cannot or may not answer it."""
        nvml = self.nvml
        try:
            value = fn(*args)
        except (nvml.NVMLError_NotSupported, nvml.NVMLError_NoPermission,
                nvml.NVMLError_FunctionNotFound) as exc:
            self.unsupported.add(f"{what}: {exc}")
            return None
        return value.decode() if isinstance(value, bytes) else value

    def _xid_event_set(self) -> Any:
        """An event set for Xid errors on the selected GPUs; None where NVML has none."""
        nvml = self.nvml
        try:
            event_set = nvml.nvmlEventSetCreate()
            for _, h in self.handles:
                nvml.nvmlDeviceRegisterEvents(h, nvml.nvmlEventTypeXidCriticalError, event_set)
        except (nvml.NVMLError_NotSupported, nvml.NVMLError_NoPermission,
                nvml.NVMLError_FunctionNotFound) as exc:
            self.unsupported.add(f"xid events: {exc}")
            return None
        return event_set

    def _drain_xids(self) -> list[int]:
        codes = []
        while self.events is not None:
            try:
                data = self.nvml.nvmlEventSetWait_v2(self.events, 0)
            except self.nvml.NVMLError_Timeout:
                break  # no event pending: the normal case
            except self.nvml.NVMLError as exc:
                self.unsupported.add(f"xid events: {exc}")
                self.events = None
                break
            codes.append(int(data.eventData))
        return codes

    def sample(self) -> list[GpuSample]:
        nvml, read = self.nvml, self._read
        samples = []
        for index, h in self.handles:
            reasons = read("clock reasons", _reasons_fn(nvml), h)
            power = read("power", nvml.nvmlDeviceGetPowerUsage, h)
            procs = read("processes", nvml.nvmlDeviceGetComputeRunningProcesses, h) or []
            violation = {what: read(f"{what} violation", nvml.nvmlDeviceGetViolationStatus, h,
                                    policy)
                         for what, policy in (("power", nvml.NVML_PERF_POLICY_POWER),
                                              ("thermal", nvml.NVML_PERF_POLICY_THERMAL))}
            samples.append(GpuSample(
                index=index, uuid=read("uuid", nvml.nvmlDeviceGetUUID, h),
                name=read("name", nvml.nvmlDeviceGetName, h), at=time.monotonic(),
                sm_clock_mhz=read("sm clock", nvml.nvmlDeviceGetClockInfo, h,
                                  nvml.NVML_CLOCK_SM),
                mem_clock_mhz=read("memory clock", nvml.nvmlDeviceGetClockInfo, h,
                                   nvml.NVML_CLOCK_MEM),
                power_w=None if power is None else power / 1000,
                temperature_c=read("temperature", nvml.nvmlDeviceGetTemperature, h,
                                   nvml.NVML_TEMPERATURE_GPU),
                clock_reasons=[] if reasons is None else _reason_names(reasons),
                power_violation_ns=_violation(violation["power"]),
                thermal_violation_ns=_violation(violation["thermal"]),
                ecc_uncorrected=read("ecc", nvml.nvmlDeviceGetTotalEccErrors, h,
                                     nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
                                     nvml.NVML_VOLATILE_ECC),
                processes=sorted(int(p.pid) for p in procs)))
        return samples

    # ----------------------------------------------------------------------- per trial

    def before_trial(self) -> TrialTelemetry:
        self._drain_xids()  # events from before this trial are not its events
        return TrialTelemetry(before=self.sample())

    def after_trial(self, telemetry: TrialTelemetry) -> TrialTelemetry:
        telemetry.after = self.sample()
        telemetry.xid_events = self._drain_xids()
        telemetry.flags = telemetry_flags(telemetry, self.baseline_pids)
        return telemetry

    # ----------------------------------------------------------------------- clocks

    def lock_clocks(self) -> ClockLock:
        """Lock each selected GPU's SM clock at its base clock; recorded whether or not."""
        nvml = self.nvml
        for index, h in self.handles:
            try:
                try:
                    mhz = nvml.nvmlDeviceGetDefaultApplicationsClock(h, nvml.NVML_CLOCK_GRAPHICS)
                except nvml.NVMLError_NotSupported:
                    mhz = nvml.nvmlDeviceGetMaxClockInfo(h, nvml.NVML_CLOCK_SM)
                nvml.nvmlDeviceSetGpuLockedClocks(h, mhz, mhz)
            except nvml.NVMLError_NoPermission:
                return self._locked_result("not permitted (needs root)")
            except nvml.NVMLError_NotSupported:
                return self._locked_result("not supported on this GPU")
            except nvml.NVMLError as exc:
                return self._locked_result(f"error: {exc}")
            self.locked[index] = int(mhz)
        return self._locked_result("locked")

    def _locked_result(self, result: str) -> ClockLock:
        return ClockLock(attempted=True, locked_mhz=dict(self.locked), result=result)

    def close(self, lock: ClockLock | None = None) -> ClockLock | None:
        """Reset every clock this object locked, then shut NVML down; returns `lock` with the
        reset's outcome."""
        nvml = self.nvml
        errors = []
        for index, h in self.handles:
            if index in self.locked:
                try:
                    nvml.nvmlDeviceResetGpuLockedClocks(h)
                except nvml.NVMLError as exc:
                    errors.append(f"GPU {index}: {exc}")
        if lock is not None and self.locked:
            lock.reset = "; ".join(errors) if errors else "reset"
        self.locked.clear()
        try:
            nvml.nvmlShutdown()
        except nvml.NVMLError:
            pass  # shutting down: nothing is left to protect
        return lock


def _reasons_fn(nvml: Any) -> Callable:
    # The "event reasons" name is the current one; drivers before 535 have only "throttle".
    return getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
        nvml.nvmlDeviceGetCurrentClocksThrottleReasons


def _reason_names(bits: int) -> list[str]:
    names = {**SLOWDOWN_REASONS, **OTHER_REASONS}
    return [name for bit, name in sorted(names.items()) if bits & bit]


def _violation(value: Any) -> int | None:
    return None if value is None else int(value.violationTime)
