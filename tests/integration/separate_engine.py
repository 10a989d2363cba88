"""A Docker engine of the test's own, for faults that must not touch the shared one.

Restarting or filling the machine's engine would break every other test session using it, so
these tests start a second dockerd with its own data root, exec root (and so its own managed
containerd), pidfile, unix socket and bridge interface under a temp dir, without iptables
rules (the tests' sandboxes use no network or the host's). The isobench images a run needs are copied
from the shared engine (`docker save | docker load`: the layers, not a rebuild). A test points
`DOCKER_HOST` at `engine.host`. Teardown stops only the dockerd this module started.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 60


@dataclass
class SeparateEngine:
    root: Path
    data_root: Path
    proc: subprocess.Popen | None = None

    @property
    def bridge(self) -> str:
        """Its bridge interface (at most 15 characters, as Linux allows)."""
        return "isob" + self.root.name[-8:].replace("_", "0")

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def env(self) -> dict[str, str]:
        return {"DOCKER_HOST": self.host}

    def docker(self, *args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", *args], env={**os.environ, **self.env},
                              capture_output=True, text=True, check=check, **kw)

    def start(self) -> None:
        log = (self.root / "dockerd.log").open("a")
        # A bridge of its own: a dockerd started with `--bridge=none` deletes any interface
        # called docker0, which in the host's namespace is the shared engine's bridge that every
        # bridged container of every other test session needs. It stays in the host's network
        # namespace, so `--network host` sandboxes reach the tests' model servers.
        if not Path(f"/sys/class/net/{self.bridge}").exists():  # a restart keeps it
            subprocess.run(["ip", "link", "add", "name", self.bridge, "type", "bridge"],
                           check=True)
        subprocess.run(["ip", "link", "set", self.bridge, "up"], check=True)
        self.proc = subprocess.Popen(
            ["dockerd", f"--data-root={self.data_root}", f"--exec-root={self.root}/exec",
             f"--pidfile={self.root}/docker.pid", f"--host={self.host}", f"--bridge={self.bridge}",
             "--iptables=false", "--ip-masq=false", "--ip-forward=false"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while self.docker("version", check=False).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"dockerd did not start: {self.log_tail()}")
            time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM, as `systemctl stop docker` does: the engine stops its containers, then
        exits."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the session this module started
            self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def copy_images(self, tags: list[str]) -> None:
        """The shared engine's images, loaded into this one (shared layers travel once)."""
        save = subprocess.Popen(["docker", "save", *tags], stdout=subprocess.PIPE,
                                env={k: v for k, v in os.environ.items() if k != "DOCKER_HOST"})
        load = subprocess.run(["docker", "load", "-q"], stdin=save.stdout,
                              env={**os.environ, **self.env}, capture_output=True, text=True,
                              check=False)
        save.stdout.close()
        assert save.wait() == 0 and load.returncode == 0, load.stderr

    def managed_containers(self) -> list[str]:
        out = self.docker("ps", "-aq", "--filter", "label=isobench.managed")
        return out.stdout.split()

    def log_tail(self) -> str:
        path = self.root / "dockerd.log"
        return path.read_text()[-3000:] if path.exists() else ""


def shared_isobench_images(prefixes: tuple[str, ...]) -> list[str]:
    out = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
                         capture_output=True, text=True, check=True,
                         env={k: v for k, v in os.environ.items() if k != "DOCKER_HOST"})
    return [t for t in out.stdout.split() if t.startswith(prefixes)]


@contextlib.contextmanager
def separate_engine(data_root: Path | None = None) -> Iterator[SeparateEngine]:
    """`data_root`: where its images and containers live (a small filesystem, to fill it)."""
    root = Path(tempfile.mkdtemp(prefix="isobench-dockerd-", dir="/tmp"))
    engine = SeparateEngine(root=root, data_root=data_root or root / "data")
    try:
        engine.start()
        yield engine
    finally:
        engine.stop()
        subprocess.run(["ip", "link", "delete", engine.bridge], check=False, capture_output=True)
        # dockerd leaves its default netns bind-mounted under the exec root
        for mount in _mounts_under(root):
            subprocess.run(["umount", "-l", mount], check=False)
        shutil.rmtree(root, ignore_errors=True)


def _mounts_under(root: Path) -> list[str]:
    with open("/proc/mounts") as table:
        points = [line.split()[1] for line in table]
    return sorted((p for p in points if p.startswith(f"{root}/")), reverse=True)
