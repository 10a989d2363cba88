"""A real single-node Slurm for tests: Debian's slurm-wlm and munge, started on localhost.

munged, slurmctld and slurmd run as this session's own processes, with every file (munge key
and socket, slurm.conf, gres.conf, state, spool, logs, pid files) under one temp dir and ports
chosen free, so nothing of the host's own Slurm or munge (if any) is touched. The node has two
"GPUs" for --gres: character devices made in the temp dir (Slurm counts and hands out gres by
file; nothing here opens them), the way the Ray tests use logical GPUs.

`slurm_cluster()` installs the packages with apt-get when they are missing and we are root
(.ci/run installs them first), and tears everything down after, killing only the processes it
started.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

NODE = "isonode"
START_TIMEOUT_S = 60
PACKAGES = ("slurm-wlm", "munge")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_installed() -> None:
    """apt-get the packages when missing (root only); otherwise skip, or fail under CI."""
    if all(shutil.which(t, path="/usr/sbin:/usr/bin") for t in ("slurmctld", "slurmd",
                                                                   "munged", "sbatch")):
        return
    if os.geteuid() != 0:
        if os.environ.get("ISOBENCH_CI") == "1":
            pytest.fail("Slurm tests need slurm-wlm and munge (.ci/run installs them)")
        pytest.skip("slurm-wlm and munge are not installed and we are not root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *PACKAGES], check=True, env=env,
                   stdout=subprocess.DEVNULL)


@dataclass
class SlurmCluster:
    """A running cluster: its config (SLURM_CONF for the tools) and its daemons."""

    root: Path
    conf: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def tool(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), capture_output=True, text=True, check=check,
                              env={**os.environ, **self.env}, timeout=60)

    def start_slurmd(self) -> None:
        self.procs["slurmd"] = self._daemon("slurmd", ["/usr/sbin/slurmd", "-D", "-N", NODE])

    def _daemon(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = (self.root / "log" / f"{name}.out").open("a")
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, **self.env}, start_new_session=True)

    def wait_node(self, state: str = "idle") -> None:
        """Until sinfo says the node is `state` (a hang is a failure, not a skip)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            out = self.tool("sinfo", "-h", "-N", "-o", "%T", check=False)
            if out.returncode == 0 and out.stdout.strip().rstrip("*") == state:
                return
            time.sleep(0.5)
        raise AssertionError(f"node not {state}: {self.logs()}")

    def jobs(self, name: str) -> dict[str, str]:
        """Job id -> state of jobs named `name` (any state squeue remembers)."""
        out = self.tool("squeue", "-h", "-t", "all", f"--name={name}", "--format=%i|%T")
        return dict(line.split("|", 1) for line in out.stdout.split())

    def all_active(self) -> list[str]:
        out = self.tool("squeue", "-h", "--format=%i|%T")
        return out.stdout.split()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}"
                         for p in sorted((self.root / "log").glob("*")) if p.is_file())

    def stop(self) -> None:
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the session this fixture started
                proc.wait()


def write_config(root: Path) -> Path:
    host = socket.gethostname()
    for sub in ("munge", "state", "spool", "log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "munge").chmod(0o711)  # munged wants its socket's dir searchable by all
    for n in (0, 1):
        os.mknod(root / f"gpu{n}", 0o600 | 0o020000, os.makedev(1, 3))  # char dev, like null
    (root / "gres.conf").write_text(f"NodeName={NODE} Name=gpu File={root}/gpu[0-1]\n")
    conf = root / "slurm.conf"
    conf.write_text(f"""\
ClusterName=isobench
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
AuthInfo=socket={root}/munge/munge.sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool/slurmd-%n
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd-%n.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
KillWait=5
SlurmdTimeout=6
InactiveLimit=0
GresTypes=gpu
NodeName={NODE} NodeHostname={host} NodeAddr=127.0.0.1 CPUs=2 RealMemory=2000 Gres=gpu:2 \
State=UNKNOWN
PartitionName=isobench Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
""")
    return conf


@contextlib.contextmanager
def slurm_cluster() -> Iterator[SlurmCluster]:
    ensure_installed()
    root = Path(tempfile.mkdtemp(prefix="isobench-slurm-", dir="/tmp"))
    cluster = SlurmCluster(root=root, conf=write_config(root))
    try:
        key = root / "munge" / "munge.key"
        subprocess.run(["/usr/sbin/mungekey", "-c", "-k", str(key)], check=True)
        key.chmod(0o400)
        cluster.procs["munged"] = cluster._daemon("munged", [
            "/usr/sbin/munged", "-F", "-f", f"--socket={root}/munge/munge.sock",
            f"--key-file={key}", f"--pid-file={root}/munge/munged.pid",
            f"--seed-file={root}/munge/seed", f"--log-file={root}/log/munged.log"])
        cluster.procs["slurmctld"] = cluster._daemon(
            "slurmctld", ["/usr/sbin/slurmctld", "-D", "-i"])
        cluster.start_slurmd()
        cluster.wait_node()
        yield cluster
    finally:
        leftover = cluster.tool("squeue", "-h", "--format=%i", check=False).stdout.split() \
            if "slurmctld" in cluster.procs else []
        if leftover:  # a failed test's jobs: end them while slurmd can still signal them
            cluster.tool("scancel", *leftover, check=False)
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
