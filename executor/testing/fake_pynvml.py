"""A stand-in for the `pynvml` module (nvidia-ml-py) for machines without a GPU.

It behaves like the real binding where isobench touches it, including its errors: every
failure is an `NVMLError` whose constructor maps the NVML return code to its subclass
(`NVMLError(3)` is an `NVMLError_NotSupported`, as in the real module), functions that the
simulated GPU lacks raise NVMLError_NotSupported, privileged calls raise
NVMLError_NoPermission unless the fake runs "as root", an empty Xid event queue answers
NVMLError_Timeout, and nothing works before nvmlInit. Injected with
`sys.modules["pynvml"] = make_fake_pynvml(...)`; each FakeGpu is a mutable script of what the
device reports.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field

NVML_ERRORS = {  # return code -> class suffix, the real module's numbering
    1: "Uninitialized", 2: "InvalidArgument", 3: "NotSupported", 4: "NoPermission",
    5: "AlreadyInitialized", 6: "NotFound", 9: "DriverNotLoaded", 10: "Timeout",
    12: "LibraryNotFound", 13: "FunctionNotFound", 15: "GpuIsLost", 999: "Unknown"}
MESSAGES = {1: "Uninitialized", 3: "Not Supported", 4: "Insufficient Permissions",
            9: "Driver Not Loaded", 10: "Timeout", 12: "NVML Shared Library Not Found",
            13: "Function Not Found"}


@dataclass
class FakeGpu:
    """What one simulated device reports; tests change the fields between calls."""

    name: str = "NVIDIA H200"
    uuid: str = "GPU-fake-0"
    sm_clock: int = 1980
    mem_clock: int = 3201
    max_sm_clock: int = 1980
    base_clock: int = 1590
    power_mw: int = 120_000
    temperature: int = 38
    reasons: int = 0x1  # GpuIdle
    power_violation_ns: int = 0
    thermal_violation_ns: int = 0
    ecc_uncorrected: int = 0
    pids: list[int] = field(default_factory=list)
    unsupported: set[str] = field(default_factory=set)  # function names that answer NotSupported
    locked: tuple[int, int] | None = None
    xid_queue: list[int] = field(default_factory=list)


def make_fake_pynvml(gpus: list[FakeGpu], *, root: bool = False,
                     library_present: bool = True) -> types.ModuleType:
    """A module object with pynvml's names, backed by `gpus`."""
    nv = types.ModuleType("pynvml")
    state = {"initialized": False}

    class NVMLError(Exception):
        _by_code: dict[int, type] = {}

        def __new__(cls, value):
            if cls is NVMLError:
                cls = NVMLError._by_code.get(value, cls)
            obj = Exception.__new__(cls)
            obj.value = value
            return obj

        def __init__(self, value):
            super().__init__(value)

        def __str__(self):
            return MESSAGES.get(self.value, f"NVML Error with code {self.value}")

    nv.NVMLError = NVMLError
    for code, suffix in NVML_ERRORS.items():
        def subclass_new(cls, *_args, _code=code):
            return NVMLError.__new__(cls, _code)

        klass = type(f"NVMLError_{suffix}", (NVMLError,), {"__new__": subclass_new,
                                                            "__init__": lambda self, *a: None})
        NVMLError._by_code[code] = klass
        setattr(nv, f"NVMLError_{suffix}", klass)

    constants = dict(NVML_TEMPERATURE_GPU=0, NVML_CLOCK_GRAPHICS=0, NVML_CLOCK_SM=1,
                     NVML_CLOCK_MEM=2, NVML_PERF_POLICY_POWER=0, NVML_PERF_POLICY_THERMAL=1,
                     NVML_MEMORY_ERROR_TYPE_UNCORRECTED=1, NVML_VOLATILE_ECC=0,
                     nvmlEventTypeXidCriticalError=0x8)
    for name, value in constants.items():
        setattr(nv, name, value)

    def api(fn):
        """Like the real wrappers: uninitialized -> 1, unsupported on this device -> 3."""
        def wrapper(*args):
            if not state["initialized"]:
                raise NVMLError(1)
            handle = args[0] if args and isinstance(args[0], FakeGpu) else None
            if handle is not None and fn.__name__ in handle.unsupported:
                raise NVMLError(3)
            return fn(*args)
        wrapper.__name__ = fn.__name__
        setattr(nv, fn.__name__, wrapper)
        return wrapper

    def nvmlInit():
        if not library_present:
            raise NVMLError(12)
        state["initialized"] = True

    def nvmlShutdown():
        if not state["initialized"]:
            raise NVMLError(1)
        state["initialized"] = False

    nv.nvmlInit, nv.nvmlShutdown = nvmlInit, nvmlShutdown
    nv.state = state

    @api
    def nvmlDeviceGetCount():
        return len(gpus)

    @api
    def nvmlDeviceGetHandleByIndex(index):
        if not 0 <= index < len(gpus):
            raise NVMLError(2)
        return gpus[index]

    @api
    def nvmlDeviceGetUUID(h):
        return h.uuid

    @api
    def nvmlDeviceGetName(h):
        return h.name.encode()  # older releases return bytes; isobench decodes either

    @api
    def nvmlDeviceGetClockInfo(h, kind):
        return h.mem_clock if kind == 2 else h.sm_clock

    @api
    def nvmlDeviceGetMaxClockInfo(h, kind):
        return h.max_sm_clock

    @api
    def nvmlDeviceGetDefaultApplicationsClock(h, kind):
        return h.base_clock

    @api
    def nvmlDeviceGetPowerUsage(h):
        return h.power_mw

    @api
    def nvmlDeviceGetTemperature(h, sensor):
        return h.temperature

    @api
    def nvmlDeviceGetCurrentClocksEventReasons(h):
        return h.reasons

    @api
    def nvmlDeviceGetViolationStatus(h, policy):
        return types.SimpleNamespace(referenceTime=0, violationTime=(
            h.power_violation_ns if policy == 0 else h.thermal_violation_ns))

    @api
    def nvmlDeviceGetTotalEccErrors(h, error_type, counter_type):
        return h.ecc_uncorrected

    @api
    def nvmlDeviceGetComputeRunningProcesses(h):
        return [types.SimpleNamespace(pid=pid, usedGpuMemory=512 * 1024 * 1024)
                for pid in h.pids]

    @api
    def nvmlDeviceSetGpuLockedClocks(h, low, high):
        if not root:
            raise NVMLError(4)
        h.locked = (low, high)

    @api
    def nvmlDeviceResetGpuLockedClocks(h):
        if not root:
            raise NVMLError(4)
        h.locked = None

    @api
    def nvmlEventSetCreate():
        return {"devices": []}

    @api
    def nvmlDeviceRegisterEvents(h, event_types, event_set):
        event_set["devices"].append(h)

    @api
    def nvmlEventSetWait_v2(event_set, timeout_ms):
        for h in event_set["devices"]:
            if h.xid_queue:
                return types.SimpleNamespace(device=h, eventType=0x8,
                                             eventData=h.xid_queue.pop(0))
        raise NVMLError(10)

    return nv
