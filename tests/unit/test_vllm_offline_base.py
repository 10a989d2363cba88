"""vLLM images on the offline Debian base: suite by Python, torch from PyPI, refusals before any
build (a wheel that is not the tree's, a full build without nvcc, no suite that fits)."""

import datetime as dt
import subprocess
import zipfile

import pytest
from click.testing import CliRunner

from executor.cli import cli
from executor.core.errors import UserInputError
from executor.parts.vllm import facts
from executor.parts.vllm.commit_image import parse_frozen
from executor.parts.vllm.environment import derive_environment, vllm_version
from executor.parts.vllm.install_script import toolchain_command, torch_command, wheel_install_command
from executor.parts.vllm.offline_base import choose_suite, on_offline_base, with_torch_index
from executor.parts.vllm.strategy import HostResources, PlanOptions, plan_install
from executor.parts.vllm.wheels import Prober, version_mismatch

UTC = dt.timezone.utc
DAY = dt.datetime(2024, 8, 5, 23, 46, 58, tzinfo=UTC)


def env_for(torch: str, python_requires: str | None):
    files = {"requirements-cuda.txt": f"torch == {torch}\n"}
    if python_requires:
        files["setup.py"] = f'setup(python_requires="{python_requires}")\n'
    return derive_environment(files, DAY.date())


@pytest.mark.parametrize("torch, spec, suite, python", [
    ("2.4.0", ">=3.8", "bookworm", "3.11"),        # vLLM 0.5.4
    ("2.6.0", ">=3.9,<3.13", "bookworm", "3.11"),  # vLLM 0.8.5
    ("2.6.0", ">=3.13", "trixie", "3.13"),
])
def test_the_oldest_suite_whose_python_fits_commit_and_torch(torch, spec, suite, python):
    env = on_offline_base(env_for(torch, spec))
    assert (env.debian_suite, env.python, env.base_kind) == (suite, python, "debian")
    assert env.base_image.startswith(f"isobench/base:{suite}-")
    assert not any(r.startswith("base image nvidia/cuda") for r in env.reasons)


def test_no_suite_fits_names_the_python_needed():
    # torch 2.4.0 has no cp313 wheels and the commit refuses 3.11: only 3.12 would do
    with pytest.raises(UserInputError, match=r"needs Python 3\.12 .*torch 2\.4\.0") as err:
        choose_suite(env_for("2.4.0", ">=3.12"))
    assert "bookworm" in str(err.value) and "trixie" in str(err.value)


def test_pypi_torch_says_whether_it_is_the_pins_cuda_build():
    same = with_torch_index(env_for("2.4.0", None), "pypi")
    assert same.torch_index_url == facts.PYPI_INDEX
    assert any("is the CUDA 12.1 build" in r for r in same.reasons)
    other = with_torch_index(env_for("2.7.0", None), "pypi")
    assert any("CUDA 12.6 build of 2.7.0" in r and "12.8" in r for r in other.reasons)
    assert with_torch_index(env_for("2.4.0", None), None).torch_index_url.startswith(
        "https://download.pytorch.org/")


def plan(tmp_path, torch="2.4.0", tree_version="0.5.4", wheel_version="0.5.4", day=DAY,
         **options):
    sha = "ab" * 20
    files = {"requirements-cuda.txt": f"torch == {torch}\n",
             "vllm/version.py": f'__version__ = "{tree_version}"\n'}

    class Source:
        def resolve(self, ref):
            return sha

        def read(self, _sha, path):
            return files.get(path)

        def commit_date(self, _sha):
            return day

        def changed_paths(self, old, new, paths=()):
            return []

        def first_parent_ancestors(self, _sha, limit):
            return []

    wheels = tmp_path / "wheels"
    if wheel_version:
        (wheels / sha).mkdir(parents=True)
        with zipfile.ZipFile(wheels / sha / f"vllm-{wheel_version}-cp38-abi3-manylinux1_x86_64"
                                            f".whl", "w") as wheel:
            wheel.writestr(f"vllm-{wheel_version}.dist-info/METADATA",
                           f"Name: vllm\nVersion: {wheel_version}\n")
    return plan_install(sha, source=Source(), commit_date=day, date_source="mirror",
                        options=PlanOptions(wheel_dir=wheels, host=HostResources(cores=2,
                                                                                  mem_gb=8),
                                            **options), prober=Prober(enabled=False))


def test_offline_plan_installs_torch_from_pypi_as_of_its_release(tmp_path):
    p = plan(tmp_path, offline_base=True, torch_index="pypi")
    assert p.strategy == "own_wheel" and p.environment.base_kind == "debian"
    assert "apt-get" not in toolchain_command(p) and "uv==" in toolchain_command(p)
    torch = torch_command(p)
    assert "--no-deps" not in torch  # PyPI dates every file: one resolution, with the cut-off
    released = facts.TORCH_RELEASED["2.4.0"]
    assert f"--exclude-newer {released} pip setuptools wheel torch==2.4.0" in torch
    assert "--seed" not in torch
    assert "--extra-index-url" not in wheel_install_command(p)
    assert f"--exclude-newer {p.exclude_newer}" in wheel_install_command(p)


def test_pytorch_index_gives_torch_alone_its_dependencies_come_dated_from_pypi(tmp_path):
    lines = torch_command(plan(tmp_path)).splitlines()
    assert "--no-deps --index-url https://download.pytorch.org/whl/cu121 torch==2.4.0" in lines[1]
    assert "--index-url" not in lines[2] and "--exclude-newer" in lines[2]


def test_a_wheel_of_another_release_is_refused_at_plan_time(tmp_path):
    with pytest.raises(UserInputError, match=r"says vLLM 0\.8\.5\.post1.*says 0\.5\.4"):
        plan(tmp_path, wheel_version="0.8.5.post1", offline_base=True)


def test_offline_base_refuses_a_full_build(tmp_path):
    with pytest.raises(UserInputError, match="no nvcc"):
        # June 2024: before per-commit wheels, and no local one
        plan(tmp_path, wheel_version=None, day=DAY.replace(month=6), offline_base=True)


@pytest.mark.parametrize("wheel, tree, refused", [
    ("0.5.4", "0.5.4", False), ("0.5.4+cu124", "0.5.4", False), ("0.5.4", "0.5.4.0", False),
    ("0.6.4.dev12+gabc", "0.6.3", False), (None, "0.5.4", False), ("0.5.4", None, False),
    ("0.8.5", "0.8.5.post1", True), ("0.8.5.post1", "0.5.4", True),
])
def test_version_mismatch(wheel, tree, refused):
    assert (version_mismatch(wheel, tree) is not None) is refused


def test_setuptools_scm_version_file_of_a_release_sdist():
    text = ("__version__: str\n__version__ = version = '0.8.5.post1'\n"
            "__version_tuple__ = version_tuple = (0, 8, 5)\n")
    assert vllm_version({"vllm/_version.py": text}) == "0.8.5.post1"


def test_vanished_packages_get_a_local_stand_in_never_todays_upload(tmp_path):
    p = plan(tmp_path, offline_base=True, torch_index="pypi")
    script = wheel_install_command(p)
    assert "pyairports @ file:///opt/isobench/stand-ins/pyairports" in script
    assert "AIRPORT_LIST = []" in script
    assert "--overrides /opt/isobench/overrides.txt" in script
    assert "exclude-newer-package" not in script
    assert any("pyairports" in r and "stand-in" in r for r in p.reasons)


def test_parse_frozen():
    text = "# comment\nTorch==2.4.0\nvllm @ file:///opt/x.whl\nnvidia_nccl_cu12==2.20.5\n"
    assert parse_frozen(text) == {"torch": "2.4.0", "vllm": "file:///opt/x.whl",
                                  "nvidia-nccl-cu12": "2.20.5"}


def test_images_build_refuses_a_mismatched_wheel_before_building(tmp_path):
    """The CLI path a user runs: no image, no download, exit 2 with the reason."""
    repo = tmp_path / "repo"
    (repo / "vllm").mkdir(parents=True)
    (repo / "vllm" / "version.py").write_text('__version__ = "0.5.4"\n')
    (repo / "requirements-cuda.txt").write_text("torch == 2.4.0\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "tree"], check=True,
                   env={"GIT_COMMITTER_DATE": "2024-08-05T23:46:58Z", "PATH": "/usr/bin:/bin"})
    sha = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True,
                         check=True).stdout.strip()
    wheels = tmp_path / "wheels" / sha
    wheels.mkdir(parents=True)
    with zipfile.ZipFile(wheels / "vllm-0.8.5.post1-cp38-abi3-manylinux1_x86_64.whl",
                         "w") as wheel:
        wheel.writestr("vllm-0.8.5.post1.dist-info/METADATA", "Name: vllm\nVersion: 0.8.5.post1\n")
    result = CliRunner().invoke(cli, ["images", "build", sha, "--repo", str(repo), "--wheel-dir",
                                      str(tmp_path / "wheels"), "--offline-base", "--torch-index",
                                      "pypi", "--no-probe", "--log-dir", str(tmp_path / "logs")])
    assert result.exit_code == 2, result.output
    assert "does not match commit" in result.output and "0.8.5.post1" in result.output
    assert not (tmp_path / "logs").exists()  # nothing was built, not even a log
