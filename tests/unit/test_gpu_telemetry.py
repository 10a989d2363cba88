"""NVML telemetry against a fake pynvml that raises what the real one raises."""

from __future__ import annotations

import sys

import pytest

from executor.parts.bench.gpu_telemetry import NvmlTelemetry, TrialTelemetry, trial_flag
from executor.parts.bench.gpu import GpuGuard, GpuMonitor, GpuTrialInfo
from executor.parts.bench.results import TrialRecord
from executor.testing.fake_pynvml import FakeGpu, make_fake_pynvml


@pytest.fixture
def gpu(monkeypatch):
    device = FakeGpu(pids=[111])
    monkeypatch.setitem(sys.modules, "pynvml", make_fake_pynvml([device]))
    return device


def test_the_fake_maps_codes_to_error_classes_like_pynvml():
    nv = make_fake_pynvml([])
    error = nv.NVMLError(3)
    assert isinstance(error, nv.NVMLError_NotSupported) and str(error) == "Not Supported"
    assert isinstance(nv.NVMLError_NoPermission(), nv.NVMLError) and \
        nv.NVMLError_NoPermission().value == 4
    with pytest.raises(nv.NVMLError_Uninitialized):
        nv.nvmlDeviceGetCount()


def test_no_pynvml_is_one_log_line_and_no_telemetry(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    lines = []
    assert NvmlTelemetry.open(None, lines.append) is None
    assert len(lines) == 1 and "pynvml not installed" in lines[0]


def test_nvml_without_a_driver_is_no_telemetry(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", make_fake_pynvml([], library_present=False))
    lines = []
    assert NvmlTelemetry.open(None, lines.append) is None
    assert "NVML Shared Library Not Found" in lines[0]


def test_a_quiet_trial_is_sampled_and_not_flagged(gpu):
    telemetry = NvmlTelemetry.open()
    trial = telemetry.after_trial(telemetry.before_trial())
    before = trial.before[0]
    assert (before.name, before.uuid, before.sm_clock_mhz, before.mem_clock_mhz) == \
        ("NVIDIA H200", "GPU-fake-0", 1980, 3201)
    assert before.power_w == 120.0 and before.temperature_c == 38
    assert before.clock_reasons == ["gpu_idle"] and before.processes == [111]
    assert trial.flags == [] and trial_flag(_record(trial)) is None


def test_unsupported_readings_are_none_and_listed_once(gpu):
    gpu.unsupported |= {"nvmlDeviceGetViolationStatus", "nvmlDeviceGetTotalEccErrors",
                        "nvmlDeviceRegisterEvents"}
    telemetry = NvmlTelemetry.open()
    trial = telemetry.after_trial(telemetry.before_trial())
    assert trial.before[0].power_violation_ns is None and trial.before[0].ecc_uncorrected is None
    assert telemetry.events is None and trial.flags == []
    assert any(u.startswith("xid events: Not Supported") for u in telemetry.unsupported)
    assert any(u.startswith("power violation") for u in telemetry.unsupported)


def test_throttling_during_a_trial_is_flagged(gpu):
    telemetry = NvmlTelemetry.open()
    trial = telemetry.before_trial()
    gpu.power_violation_ns += 10**12  # far more than 1% of any trial's duration
    trial = telemetry.after_trial(trial)
    assert len(trial.flags) == 1 and "power violation" in trial.flags[0]
    assert trial_flag(_record(trial)).startswith("throttled: GPU 0 power violation")


def test_an_active_thermal_slowdown_reason_is_flagged_a_power_cap_is_not(gpu):
    telemetry = NvmlTelemetry.open()
    gpu.reasons = 0x4  # sw power cap: the normal state of a GPU at full load
    assert telemetry.after_trial(telemetry.before_trial()).flags == []
    gpu.reasons = 0x4 | 0x40
    flags = telemetry.after_trial(telemetry.before_trial()).flags
    assert flags == ["throttled: GPU 0 hw_thermal_slowdown"]


def test_a_new_process_at_the_start_is_contention_the_baseline_one_is_not(gpu):
    telemetry = NvmlTelemetry.open()  # pid 111 was there before the benchmark
    gpu.pids = [111, 4242]
    flags = telemetry.after_trial(telemetry.before_trial()).flags
    assert flags == ["contention: GPU 0 compute process(es) 4242 at the start"]


def test_xid_events_and_ecc_errors_during_a_trial_are_flagged(gpu):
    telemetry = NvmlTelemetry.open()
    gpu.xid_queue.append(31)  # before the trial: not this trial's
    trial = telemetry.before_trial()
    gpu.xid_queue.append(79)
    gpu.ecc_uncorrected += 2
    trial = telemetry.after_trial(trial)
    assert trial.xid_events == [79]
    assert "gpu error: Xid 79" in trial.flags
    assert "gpu error: GPU 0 uncorrected ECC errors +2" in trial.flags


def test_clock_lock_without_root_is_recorded_and_nothing_is_reset(gpu):
    telemetry = NvmlTelemetry.open()
    lock = telemetry.lock_clocks()
    assert lock.attempted and lock.result == "not permitted (needs root)"
    assert lock.locked_mhz == {} and gpu.locked is None
    assert telemetry.close(lock).reset is None


def test_clock_lock_as_root_locks_the_base_clock_and_close_resets_it(monkeypatch):
    device = FakeGpu()
    nv = make_fake_pynvml([device], root=True)
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    telemetry = NvmlTelemetry.open()
    lock = telemetry.lock_clocks()
    assert lock.result == "locked" and lock.locked_mhz == {0: 1590}
    assert device.locked == (1590, 1590)
    assert telemetry.close(lock).reset == "reset" and device.locked is None
    assert nv.state["initialized"] is False


def test_clock_lock_falls_back_to_the_max_clock_where_base_is_unsupported(monkeypatch):
    device = FakeGpu(unsupported={"nvmlDeviceGetDefaultApplicationsClock"})
    monkeypatch.setitem(sys.modules, "pynvml", make_fake_pynvml([device], root=True))
    lock = NvmlTelemetry.open().lock_clocks()
    assert lock.locked_mhz == {0: 1980}


def test_clock_lock_unsupported_gpu_is_recorded(monkeypatch):
    device = FakeGpu(unsupported={"nvmlDeviceSetGpuLockedClocks"})
    monkeypatch.setitem(sys.modules, "pynvml", make_fake_pynvml([device], root=True))
    assert NvmlTelemetry.open().lock_clocks().result == "not supported on this GPU"


def test_device_ids_select_by_index_or_uuid(monkeypatch):
    gpus = [FakeGpu(uuid="GPU-a"), FakeGpu(uuid="GPU-b"), FakeGpu(uuid="GPU-c")]
    monkeypatch.setitem(sys.modules, "pynvml", make_fake_pynvml(gpus))
    assert [i for i, _ in NvmlTelemetry.open(["1", "GPU-c"]).handles] == [1, 2]
    assert len(NvmlTelemetry.open(["MIG-x"]).handles) == 3  # unknown: watch them all


def test_the_guard_records_telemetry_per_trial_and_unlocks_on_close(monkeypatch):
    device = FakeGpu()
    monkeypatch.setitem(sys.modules, "pynvml", make_fake_pynvml([device], root=True))
    smi = {"--query-gpu": "0, GPU-fake-0, NVIDIA H200, 580.1, P0, 1980, 3201, 38, 120, 0, "
                          "143771, 0\n", "--query-compute-apps": ""}
    monitor = GpuMonitor(lambda args: smi[args[0].split("=")[0]])
    guard = GpuGuard(monitor, None, telemetry=NvmlTelemetry.open(), lock_clocks=True)
    assert device.locked == (1590, 1590)
    info = guard.before_trial()
    device.thermal_violation_ns += 10**12
    info = guard.after_trial(info)
    assert info.telemetry.flags and "thermal violation" in info.telemetry.flags[0]
    lock = guard.close()
    assert lock["result"] == "locked" and lock["reset"] == "reset" and device.locked is None


def _record(telemetry: TrialTelemetry) -> TrialRecord:
    return TrialRecord(index=0, block=0, variant="base", warmup=False, ok=True, value=1.0,
                       gpu=GpuTrialInfo(idle_reached=True, idle_wait_s=0, telemetry=telemetry))


def test_the_fake_has_only_names_the_real_pynvml_has():
    """Where nvidia-ml-py is installed (the gpu extra), hold the fake to its names and its
    error mapping; and the real module without a driver is one log line, no telemetry."""
    real = pytest.importorskip("pynvml")
    fake = make_fake_pynvml([])
    public = [n for n in dir(fake) if n.startswith(("nvml", "NVML"))]
    assert [n for n in public if not hasattr(real, n)] == []
    for code in (3, 4, 10, 12, 13):
        assert type(real.NVMLError(code)).__name__ == type(fake.NVMLError(code)).__name__
        assert str(real.NVMLError(code)) == str(fake.NVMLError(code))
