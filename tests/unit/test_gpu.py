"""nvidia-smi parsing (fixtures: captured on an H200 of the lent GPU machines, 2026-11-26, and
written in the same format for cases that machine could not show: two GPUs, N/A readings)."""

import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from executor.parts.bench.gpu import (GpuGuard, GpuMonitor, GpuProcess, GpuQueryError, busy_reason,
                                make_guard, parse_compute_apps, parse_gpu_states, select_gpus)

FIXTURES = Path(__file__).parent / "fixtures" / "gpu"
H200_UUID = "GPU-5ec15fbd-2825-4c9a-338b-5167adfd98bf"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_h200_reading_parses_every_field():
    (gpu,) = parse_gpu_states(fixture("nvidia_smi_query_gpu_h200_idle.txt"))
    assert (gpu.index, gpu.uuid, gpu.name, gpu.driver_version, gpu.pstate) == \
        (0, H200_UUID, "NVIDIA H200", "580.159.04", "P0")
    assert (gpu.sm_clock_mhz, gpu.mem_clock_mhz, gpu.temperature_c, gpu.power_w) == \
        (1980, 3201, 39, 160.17)
    assert (gpu.memory_used_mib, gpu.memory_total_mib, gpu.utilization_pct) == (0, 143771, 0)


def test_not_available_readings_are_none_not_errors():
    first, second = parse_gpu_states(fixture("nvidia_smi_query_gpu_two_na.txt"))
    assert first.sm_clock_mhz == 1980 and first.memory_used_mib == 520
    assert second.index == 1 and second.pstate == "P8"
    assert second.sm_clock_mhz is None and second.power_w is None
    assert second.utilization_pct is None and second.temperature_c == 33


@pytest.mark.parametrize("text", ["0, GPU-x, H100, 550.54.15\n",
                                  "0, GPU-x, H100, 550, P0, fast, 1, 2, 3, 4, 5, 6\n",
                                  "x, GPU-x, H100, 550, P0, 1, 1, 2, 3, 4, 5, 6\n"])
def test_malformed_rows_say_what_is_wrong(text):
    with pytest.raises(GpuQueryError):
        parse_gpu_states(text)


def test_compute_apps():
    (app,) = parse_compute_apps(fixture("nvidia_smi_compute_apps_h200_busy.txt"))
    assert (app.gpu_uuid, app.pid, app.used_memory_mib) == (H200_UUID, 1494, 4614)
    assert parse_compute_apps(fixture("nvidia_smi_compute_apps_none.txt")) == []
    assert parse_compute_apps("") == []


def test_select_by_index_or_uuid_and_unknown_ids_select_all():
    states = parse_gpu_states(fixture("nvidia_smi_query_gpu_two_na.txt"))
    assert [s.index for s in select_gpus(states, ["1"])] == [1]
    assert [s.index for s in select_gpus(states, [states[0].uuid])] == [0]
    assert [s.index for s in select_gpus(states, None)] == [0, 1]
    assert [s.index for s in select_gpus(states, ["MIG-abc/1/0"])] == [0, 1]


def test_busy_reason_process_memory_and_idle():
    busy = parse_gpu_states(fixture("nvidia_smi_query_gpu_h200_busy.txt"))
    idle = parse_gpu_states(fixture("nvidia_smi_query_gpu_h200_idle.txt"))
    apps = parse_compute_apps(fixture("nvidia_smi_compute_apps_h200_busy.txt"))
    baseline = {H200_UUID: 0.0}
    assert "pid 1494" in busy_reason(busy, apps, baseline, set())
    assert "4623 MiB" in busy_reason(busy, [], baseline, set())  # process gone, memory not
    assert busy_reason(busy, apps, {H200_UUID: 4600.0}, {1494}) == ""  # both were there first
    assert busy_reason(idle, [], baseline, set()) == ""
    other_gpu = [GpuProcess(gpu_uuid="GPU-other", pid=7, used_memory_mib=1.0)]
    assert busy_reason(idle, other_gpu, baseline, set()) == ""


def _fake_nvidia_smi(tmp_path: Path, states: str) -> Path:
    """A stand-in `nvidia-smi` executable (this machine has no GPU). `states` is the GPU's
    state at successive process queries, e.g. "idle,busy,idle"; the last one repeats. The
    memory reading follows the state of the latest process query."""
    (tmp_path / "states").write_text(states)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "nvidia-smi"
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import sys
        from pathlib import Path
        fixtures, tmp = Path({str(FIXTURES)!r}), Path({str(tmp_path)!r})
        states = (tmp / "states").read_text().split(",")
        calls = int((tmp / "calls").read_text()) if (tmp / "calls").exists() else 0
        if sys.argv[1].startswith("--query-compute-apps"):
            (tmp / "calls").write_text(str(calls + 1))
            busy = states[min(calls, len(states) - 1)] == "busy"
            name = "compute_apps_h200_busy" if busy else "compute_apps_none"
        else:
            busy = calls > 0 and states[min(calls, len(states) - 1)] == "busy"
            name = "query_gpu_h200_busy" if busy else "query_gpu_h200_idle"
        sys.stdout.write((fixtures / f"nvidia_smi_{{name}}.txt").read_text())
        """))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return bindir


def test_guard_waits_until_idle_then_records_state(tmp_path, monkeypatch):
    bindir = _fake_nvidia_smi(tmp_path, "idle,busy,busy,idle")
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monitor = GpuMonitor.detect()
    assert monitor is not None
    guard = GpuGuard(monitor, ["0"], poll_s=0.01, idle_timeout_s=60)  # baseline: idle
    info = guard.before_trial()  # busy (pid 1494) twice, then idle
    assert info.idle_reached and info.idle_reason == ""
    assert int((tmp_path / "calls").read_text()) == 4
    assert info.before[0].name == "NVIDIA H200" and info.before[0].memory_used_mib == 0
    assert guard.after_trial(info).after[0].sm_clock_mhz == 1980


def test_guard_gives_up_after_its_timeout_and_says_why(tmp_path, monkeypatch):
    bindir = _fake_nvidia_smi(tmp_path, "idle,busy")
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    guard = GpuGuard(GpuMonitor(), None, poll_s=0.01, idle_timeout_s=0)
    info = guard.before_trial()
    assert not info.idle_reached and "pid 1494" in info.idle_reason
    assert info.before[0].memory_used_mib == 4623


def test_no_nvidia_smi_means_no_guard(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    lines = []
    assert GpuMonitor.detect() is None
    assert make_guard(["0"], lines.append) is None
    assert len(lines) == 1 and "not recorded" in lines[0]
