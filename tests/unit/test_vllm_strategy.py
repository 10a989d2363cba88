"""Install strategy per commit (with an in-memory repository), and tag stability."""

import datetime as dt
import zipfile

from executor.engine.images import sandbox_recipe
from executor.parts.vllm.image import build_args, provisional_tag
from executor.parts.vllm.install_script import install_command
from executor.parts.vllm.strategy import HostResources, PlanOptions, build_settings, plan_install
from executor.parts.vllm.wheels import Prober

UTC = dt.timezone.utc


class FakeRepo:
    """A first-parent chain c0 <- c1 <- ... with files and changed paths per commit."""

    def __init__(self, commits):
        self.commits = commits  # list of (sha, date, changed paths, files)

    def _index(self, sha):
        return next(i for i, c in enumerate(self.commits) if c[0] == sha)

    def resolve(self, ref):
        return next((c[0] for c in self.commits if c[0].startswith(ref)), None)

    def read(self, sha, path):
        return self.commits[self._index(sha)][3].get(path)

    def commit_date(self, sha):
        return self.commits[self._index(sha)][1]

    def changed_paths(self, old, new, paths=()):
        lo, hi = self._index(old), self._index(new)
        changed = [p for c in self.commits[lo + 1:hi + 1] for p in c[2]]
        return [p for p in changed if not paths or any(p.startswith(q) for q in paths)]

    def first_parent_ancestors(self, sha, limit):
        i = self._index(sha)
        return [c[0] for c in reversed(self.commits[max(0, i - limit):i])]


FILES = {"requirements/cuda.txt": "torch==2.6.0\n"}
OPTIONS = dict(host=HostResources(cores=16, mem_gb=128))


def sha(n):
    return f"{n:040x}"


def repo(changes_at_2, day=dt.datetime(2025, 3, 10, 8, 0, tzinfo=UTC)):
    return FakeRepo([(sha(i), day + dt.timedelta(hours=i), paths, FILES)
                     for i, paths in enumerate([[], ["vllm/a.py"], changes_at_2, ["vllm/c.py"]])])


def wheel_dir(tmp_path, for_sha):
    (tmp_path / for_sha).mkdir(parents=True)
    with zipfile.ZipFile(tmp_path / for_sha / "vllm-1.0.0.dev-cp38-abi3-manylinux1_x86_64.whl",
                         "w") as wheel:
        wheel.writestr("vllm-0.8.0.dist-info/METADATA", "Name: vllm\nVersion: 0.8.0\n")
    return tmp_path


def plan(source, target, **options):
    return plan_install(target, source=source, commit_date=source.commit_date(target),
                        date_source="mirror", options=PlanOptions(**OPTIONS, **options),
                        prober=Prober(enabled=False))


def test_own_local_wheel_wins(tmp_path):
    result = plan(repo(["vllm/b.py"]), sha(3), wheel_dir=wheel_dir(tmp_path, sha(3)))
    assert result.strategy == "own_wheel" and result.wheel.status == "available"
    assert result.environment.torch == "2.6.0" and result.environment.torch_source == \
        "requirements"
    assert result.exclude_newer == "2025-03-10T11:00:00Z"


def test_nearest_wheel_when_no_native_path_changed(tmp_path):
    result = plan(repo(["vllm/b.py"]), sha(3), wheel_dir=wheel_dir(tmp_path, sha(1)))
    assert result.strategy == "nearest_wheel" and result.wheel.sha == sha(1)


PRE_WHEELS = dt.datetime(2024, 5, 2, 8, 0, tzinfo=UTC)


def test_native_change_in_between_forces_a_full_build(tmp_path):
    result = plan(repo(["csrc/b.cu"], PRE_WHEELS), sha(3), wheel_dir=wheel_dir(tmp_path, sha(1)))
    assert result.strategy == "full_build"
    assert result.native_changes_since_wheel == ["csrc/b.cu"]
    script = install_command(result).replace("'", "")
    assert "TORCH_CUDA_ARCH_LIST=9.0" in script and "MAX_JOBS=16" in script
    assert "--no-build-isolation -e ." in script
    # in the wheel era the commit's own (unverified) wheel is still preferred to compiling
    assert plan(repo(["csrc/b.cu"]), sha(3)).strategy == "own_wheel"


def test_offline_without_wheels_expects_the_eras_wheel_unprobed():
    result = plan(repo(["vllm/b.py"]), sha(3))
    assert result.strategy == "own_wheel" and result.wheel.status == "unprobed"
    assert result.wheel.era == "placeholder"


def test_install_scripts_never_rely_on_precompiled_autodetection(tmp_path):
    for target_wheels in (None, wheel_dir(tmp_path, sha(3))):
        script = install_command(plan(repo(["csrc/x.cu"]), sha(3), wheel_dir=target_wheels))
        assert "unset VLLM_USE_PRECOMPILED" in script
        assert "VLLM_USE_PRECOMPILED=" not in script
        assert "--exclude-newer 2025-03-10T11:00:00Z" in script
        assert "/opt/isobench/frozen-requirements.txt" in script


def test_build_parallelism_follows_cores_and_memory():
    big = build_settings("9.0", HostResources(cores=64, mem_gb=128), None)
    assert (big.max_jobs, big.nvcc_threads) == (32, 2)  # memory-bound: 16 units x 2 threads
    small = build_settings("9.0", HostResources(cores=4, mem_gb=64), None)
    assert (small.max_jobs, small.nvcc_threads) == (4, 1)


def test_tag_is_stable_and_moves_with_any_input(tmp_path):
    source = repo(["vllm/b.py"])
    first, again = plan(source, sha(3)), plan(source, sha(3))
    assert provisional_tag(first) == provisional_tag(again)
    other_arch = plan(source, sha(3), gpu_arch="8.0", wheel_dir=None)
    full = plan(repo(["csrc/b.cu"], PRE_WHEELS), sha(3))
    full_a100 = plan(repo(["csrc/b.cu"], PRE_WHEELS), sha(3), gpu_arch="8.0")
    assert full.strategy == "full_build"
    assert provisional_tag(full) != provisional_tag(full_a100)
    assert provisional_tag(first) == provisional_tag(other_arch)  # wheel: arch irrelevant
    recipe = sandbox_recipe("vllm_core", sha(3), "sha256:base", build_args(first))
    assert recipe.tag == sandbox_recipe("vllm_core", sha(3), "sha256:base",
                                        build_args(again)).tag
    assert recipe.tag != sandbox_recipe("vllm_core", sha(3), "sha256:other",
                                        build_args(first)).tag
