"""A patch touching native sources is rebuilt before timing, and the timed variant runs the new
native code. Fixture: a tiny C extension built by setuptools with the image's real gcc."""

import json
import uuid

import pytest

from executor.parts.bench.variants import VariantFailure, prepare_agent_variant
from executor.runs.pipeline import RunOptions, ensure_images
from executor.parts.repo import REPO_DIR
from executor.runs.resolve import resolve_job
from executor.engine.sandbox import Sandbox
from executor.core.resources import SandboxSpec
from tests.conftest import run_cli
from tests.integration.fixture_repos import diff_of, make_repo

pytestmark = [pytest.mark.docker]

TASK = """
    name = "native-fixture"
    repo = "."
    install_command = "python3 setup.py build_ext --inplace"
    rebuild_command = "python3 setup.py build_ext --inplace --force"
    bench_command = "python3 bench.py"
    test_command = "python3 -m unittest discover -s tests -q"
    native_paths = ["csrc/", "setup.py"]

    [metric]
    kind = "json_path"
    field = "seconds"
    lower_is_better = true
    output_file = "/tmp/isobench_bench.json"
    """
SETUP = """
    from setuptools import Extension, setup

    setup(name="fastsum", version="0.1", packages=["fastsum"],
          ext_modules=[Extension("fastsum._native", ["csrc/fastsum.c"])])
    """
C_SOURCE = """
    #define PY_SSIZE_T_CLEAN
    #include <Python.h>

    #define NATIVE_VERSION "native-v1"

    static PyObject *total(PyObject *self, PyObject *args) {
        long n;
        if (!PyArg_ParseTuple(args, "l", &n)) return NULL;
        long long s = 0;
        for (long i = 0; i < n; i++) s += i % 7;
        return PyLong_FromLongLong(s);
    }

    static PyObject *version(PyObject *self, PyObject *unused) {
        return PyUnicode_FromString(NATIVE_VERSION);
    }

    static PyMethodDef methods[] = {
        {"total", total, METH_VARARGS, "sum of i % 7 for i < n"},
        {"version", version, METH_NOARGS, "which native build this is"},
        {NULL, NULL, 0, NULL}};
    static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", NULL, -1, methods};
    PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
    """
FILES = {
    "isobench.toml": TASK,
    "setup.py": SETUP,
    "csrc/fastsum.c": C_SOURCE,
    "fastsum/__init__.py": """
        from fastsum._native import total, version

        PY_VERSION = "py-v1"
        """,
    "bench.py": """
        import json
        import time

        import fastsum

        start = time.process_time()
        fastsum.total(3_000_000)
        elapsed = time.process_time() - start
        print(f"native {fastsum.version()} python {fastsum.PY_VERSION}")
        json.dump({"seconds": max(elapsed, 1e-6)}, open("/tmp/isobench_bench.json", "w"))
        """,
    "tests/test_fastsum.py": """
        import unittest

        import fastsum


        class FastsumTest(unittest.TestCase):
            def test_total(self):
                self.assertEqual(fastsum.total(8), 21)
        """,
}


@pytest.fixture(scope="module")
def native_repo(tmp_path_factory):
    path = tmp_path_factory.mktemp("native") / "repo"
    # human: the same extension, marked v2 (its image is built from its own commit)
    shas = make_repo(path, [FILES, {"csrc/fastsum.c": C_SOURCE.replace("native-v1",
                                                                       "native-v2")}])
    return path, shas[-1], shas[0]


@pytest.fixture(scope="module")
def native_images(docker_engine, base_image, native_repo, tmp_path_factory):
    path, human, _ = native_repo
    job = resolve_job(human, repo=str(path))
    logs = tmp_path_factory.mktemp("native-logs")
    _, images = ensure_images(job, RunOptions(state_dir=logs, run_id="native"), logs,
                              lambda _: None)
    return job, images


def prepare(job, images, patch, tmp_path):
    return prepare_agent_variant(job.task, images["base"], job.base_sha, patch,
                                 run_id="native-test", item_id="native", log_dir=tmp_path)


def test_native_patch_is_rebuilt_and_the_timed_variant_runs_the_new_code(native_images,
                                                                        native_repo, tmp_path):
    path, human, base = native_repo
    marker = f"native-agent-{uuid.uuid4().hex[:8]}"  # a new patch each run: never a cached image
    patch = diff_of(path, {"csrc/fastsum.c": ('"native-v1"', f'"{marker}"')}, at=base)
    (tmp_path / "native.patch").write_bytes(patch)
    state = tmp_path / "state"
    out = run_cli("bench", human, "--repo", str(path), "--patch", str(tmp_path / "native.patch"),
                  "--trials", "2", "--warmup", "0", "--state-dir", str(state), "--run-id",
                  "native", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads(out.stdout)
    agent = results["variants"]["agent"]
    assert agent["rebuilt"] is True and agent["apply_method"] == "git-apply"
    assert results["gate"]["passed"]
    item = state / "bench" / "native-fixture" / "native" / human[:12]
    assert json.loads((item / "results.json").read_text())["verdict"] == results["verdict"]
    prepare_log = (item / "logs" / "prepare-agent.log").read_text()
    assert "$ python3 setup.py build_ext --inplace --force" in prepare_log
    assert "gcc" in prepare_log  # the real compiler ran in the variant's container
    printed = {t["variant"]: (item / "logs" / f"trial-{t['index']:03d}-{t['variant']}.log")
               .read_text() for t in results["trials"]}
    assert f"native {marker} python py-v1" in printed["agent"]
    assert "native native-v1" in printed["base"] and "native native-v2" in printed["human"]
    assert "native" in out.stderr and "rebuild" in out.stderr  # the summary table says so


def test_python_only_patch_is_not_rebuilt(native_images, native_repo, tmp_path):
    job, images = native_images
    path, _, base = native_repo
    marker = f"py-agent-{uuid.uuid4().hex[:8]}"
    patch = diff_of(path, {"fastsum/__init__.py": ('"py-v1"', f'"{marker}"')}, at=base)
    variant = prepare(job, images, patch, tmp_path)
    assert not isinstance(variant, VariantFailure), variant
    assert variant.rebuilt is False
    assert "setup.py build_ext" not in (tmp_path / "prepare-agent.log").read_text()
    spec = SandboxSpec(image=variant.image_tag, budget_s=300, run_id="native-test",
                       item="native", phase="check", network="none", workdir=REPO_DIR)
    with Sandbox(spec) as box:
        printed = box.check("python3 bench.py", 120, workdir=REPO_DIR).stdout
    assert f"native native-v1 python {marker}" in printed


def test_native_patch_that_does_not_compile_is_build_failed_with_its_log(native_images,
                                                                          native_repo, tmp_path):
    job, images = native_images
    path, _, base = native_repo
    patch = diff_of(path, {"csrc/fastsum.c": ("long long s = 0;", "long long s = 0 +;")},
                    at=base)
    failure = prepare(job, images, patch, tmp_path)
    assert isinstance(failure, VariantFailure) and failure.verdict == "build_failed"
    log = open(failure.log_file).read()
    assert "error" in log and "fastsum.c" in log


def test_a_start_up_hook_planted_by_the_rebuild_is_named(native_images, native_repo, tmp_path):
    """setup.py runs during the rebuild: it drops a .pth (code every interpreter start runs)
    into site-packages, outside the repository, where no protected path reaches."""
    job, images = native_images
    path, _, base = native_repo
    plant = (f"import site\nopen(site.getsitepackages()[0] + '/zz_speed.pth', 'w')"
             f".write('import sys  # {uuid.uuid4().hex}\\n')\n")
    anchor = "from setuptools import"
    patch = diff_of(path, {"setup.py": (anchor, plant + anchor)}, at=base)
    variant = prepare(job, images, patch, tmp_path)
    assert not isinstance(variant, VariantFailure), variant
    assert variant.rebuilt is True
    assert len(variant.startup_hooks) == 1
    assert variant.startup_hooks[0].startswith("added /") and \
        variant.startup_hooks[0].endswith("/zz_speed.pth")
    assert "start-up hook outside the repository" in (tmp_path / "prepare-agent.log").read_text()
