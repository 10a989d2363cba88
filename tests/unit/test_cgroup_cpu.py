"""Finding and reading a container's cgroup CPU counter from the host (cgroup v1, v2, hybrid),
on fake /proc and cgroup trees."""

from pathlib import Path

from executor.engine.cgroup_cpu import cgroup_paths, cpu_mounts, cpu_usage_file, read_cpu_seconds

CID = "43b036c80b43" + "0" * 52
V1_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / {root}/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / {root}/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
40 31 0:37 / {root}/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / {root}/unified rw,relatime - cgroup2 cgroup2 rw
"""
V1_CGROUP = f"""\
9:name=systemd:/docker/{CID}
2:cpuacct:/docker/{CID}
1:cpu:/docker/{CID}
0::/docker/{CID}
"""


def fake_proc(tmp_path: Path, mountinfo: str, cgroup: str, pid: int = 42) -> Path:
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / str(pid)).mkdir()
    (proc / "self" / "mountinfo").write_text(mountinfo.format(root=tmp_path / "cg"))
    (proc / str(pid) / "cgroup").write_text(cgroup)
    return proc


def test_v1_reads_cpuacct_usage_of_the_containers_cgroup(tmp_path):
    usage = tmp_path / "cg" / "cpuacct" / "docker" / CID / "cpuacct.usage"
    usage.parent.mkdir(parents=True)
    usage.write_text("2500000000\n")
    proc = fake_proc(tmp_path, V1_MOUNTINFO, V1_CGROUP)
    found = cpu_usage_file(42, must_contain=CID, proc=proc)
    assert found == usage and read_cpu_seconds(found) == 2.5


def test_v2_reads_usage_usec_of_cpu_stat(tmp_path):
    path = f"/user.slice/user-1000.slice/user@1000.service/libpod-{CID}.scope"
    stat = tmp_path / "cg" / path.lstrip("/") / "cpu.stat"
    stat.parent.mkdir(parents=True)
    stat.write_text("usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n")
    proc = fake_proc(tmp_path, "30 23 0:26 / {root} rw - cgroup2 cgroup2 rw\n", f"0::{path}\n")
    found = cpu_usage_file(42, must_contain=CID, proc=proc)
    assert found == stat and read_cpu_seconds(found) == 1.5


def test_hybrid_hosts_count_in_v1s_cpuacct():
    mounts = cpu_mounts(V1_MOUNTINFO.format(root="/sys/fs/cgroup"))
    assert [(m.version, str(m.mount_point)) for m in mounts] == [
        (1, "/sys/fs/cgroup/cpuacct"), (2, "/sys/fs/cgroup/unified")]
    assert cgroup_paths(V1_CGROUP) == {1: f"/docker/{CID}", 2: f"/docker/{CID}"}


def test_a_mount_showing_a_subtree_maps_paths_below_its_root(tmp_path):
    usage = tmp_path / "cg" / "cpuacct" / CID / "cpuacct.usage"
    usage.parent.mkdir(parents=True)
    usage.write_text("1000000000")
    mountinfo = "33 31 0:30 /docker {root}/cpuacct rw - cgroup cgroup rw,cpuacct\n"
    proc = fake_proc(tmp_path, mountinfo, f"2:cpuacct:/docker/{CID}\n")
    assert cpu_usage_file(42, must_contain=CID, proc=proc) == usage
    outside = fake_proc(tmp_path / "other", mountinfo, f"2:cpuacct:/elsewhere/{CID}\n")
    assert cpu_usage_file(42, must_contain=CID, proc=outside) is None


def test_no_file_when_the_pid_is_not_the_containers_or_not_visible(tmp_path):
    usage = tmp_path / "cg" / "cpuacct" / "docker" / CID / "cpuacct.usage"
    usage.parent.mkdir(parents=True)
    usage.write_text("1")
    proc = fake_proc(tmp_path, V1_MOUNTINFO, V1_CGROUP)
    # another pid namespace: the pid names some other process, in another cgroup
    assert cpu_usage_file(42, must_contain="f" * 64, proc=proc) is None
    assert cpu_usage_file(7, must_contain=CID, proc=proc) is None  # no such process here
    usage.unlink()  # the container is gone
    assert cpu_usage_file(42, must_contain=CID, proc=proc) is None
    assert read_cpu_seconds(usage) is None
