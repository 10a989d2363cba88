"""Torch / CUDA / Python derivation from requirements files of several vLLM eras.

Fixtures are written from the facts (FIELD_NOTES section 5), in each era's file layout.
"""

import datetime as dt

import pytest

from executor.parts.vllm.environment import derive_environment, python_allowed

SETUP_PY_2024 = 'MAIN_CUDA_VERSION = "12.1"\nsetup(name="vllm", python_requires=">=3.8")\n'
PYPROJECT_230 = ('[build-system]\nrequires = ["cmake>=3.21", "ninja", "packaging", '
                 '"setuptools >= 49.4.0", "torch == 2.3.0", "wheel"]\n')
PYPROJECT_2025 = ('[build-system]\nrequires = ["cmake>=3.26", "setuptools>=77", "torch == 2.9.0"]\n'
                  '[project]\nname = "vllm"\nrequires-python = ">=3.10,<3.14"\n')

ERAS = {
    # early 2024: one requirements.txt holds everything
    "2.1.2": ({"requirements.txt": "ninja\npsutil\ntorch == 2.1.2\nxformers == 0.0.23.post1\n",
               "setup.py": SETUP_PY_2024}, "12.1", "requirements.txt"),
    # spring 2024: requirements-common + requirements-cuda, build requires in pyproject
    "2.3.0": ({"requirements-common.txt": "numpy\nrequests\n",
               "requirements-cuda.txt": "-r requirements-common.txt\nray >= 2.9\n"
                                        "torch == 2.3.0\nxformers == 0.0.26.post1\n",
               "pyproject.toml": PYPROJECT_230, "setup.py": SETUP_PY_2024},
              "12.1", "requirements-cuda.txt"),
    "2.5.1": ({"requirements-cuda.txt": "# Dependencies for NVIDIA GPUs\ntorch == 2.5.1\n"
                                        "torchvision == 0.20.1 # for phi3v\n"},
              "12.1", "requirements-cuda.txt"),
    # 2025: requirements/ folder
    "2.6.0": ({"requirements/cuda.txt": "-r common.txt\ntorch==2.6.0\ntorchaudio==2.6.0\n",
               "requirements/build.txt": "torch==2.6.0\n"}, "12.4", "requirements/cuda.txt"),
    "2.7.0": ({"requirements/cuda.txt": "torch==2.7.0\nxformers==0.0.30; "
                                        "platform_system == 'Linux'\n"},
              "12.8", "requirements/cuda.txt"),
    "2.9.0": ({"requirements/cuda.txt": "torch==2.9.0\n", "pyproject.toml": PYPROJECT_2025},
              "12.9", "requirements/cuda.txt"),
}


@pytest.mark.parametrize("torch", list(ERAS))
def test_torch_and_cuda_come_from_the_commits_files(torch):
    files, cuda, source_file = ERAS[torch]
    env = derive_environment(files, dt.date(2030, 1, 1))  # a date that would mislead
    assert (env.torch, env.cuda, env.torch_source, env.torch_file) == \
        (torch, cuda, "requirements", source_file)
    assert env.base_image.startswith(f"nvidia/cuda:{cuda}.") and "devel" in env.base_image
    assert env.torch_index_url.endswith("cu" + cuda.replace(".", ""))
    assert any(f"torch {torch}" in r for r in env.reasons)


def test_cuda_runtime_file_outranks_build_requires():
    env = derive_environment({"requirements/build.txt": "torch==2.6.0\n",
                              "requirements/cuda.txt": "torch==2.7.0\n"}, None)
    assert env.torch == "2.7.0"


def test_local_version_tag_and_other_platform_markers_are_ignored():
    env = derive_environment({"requirements-cuda.txt":
                              'torch==2.4.0; platform_machine == "aarch64"\n'
                              "torch == 2.5.1+cu121\n"}, None)
    assert env.torch == "2.5.1"


def test_python_is_ubuntu_310_when_allowed_else_lowest_allowed():
    assert derive_environment({"pyproject.toml": PYPROJECT_2025}, None).python == "3.10"
    spec = '[project]\nname = "x"\nrequires-python = ">=3.11"\n'
    env = derive_environment({"pyproject.toml": spec, "requirements/cuda.txt": "torch==2.9.0"},
                             None)
    assert env.python == "3.11" and env.python_requires == ">=3.11"
    assert python_allowed("3.10", ">=3.9,<3.14") and not python_allowed("3.14", ">=3.9,<3.14")


def test_date_table_only_without_files_and_says_so():
    env = derive_environment({}, dt.date(2024, 8, 1))
    assert (env.torch, env.torch_source, env.cuda) == ("2.4.0", "date_table", "12.1")
    assert "date table" in env.reasons[0] and "no mirror" in env.reasons[0]
    assert derive_environment({}, dt.date(2025, 4, 1)).torch == "2.6.0"
    assert derive_environment({}, dt.date(2025, 6, 1)).torch == "2.7.0"


def test_version_literal_names_s3_wheels():
    env = derive_environment({"vllm/version.py": '__version__ = "0.5.3"\n'}, None)
    assert env.vllm_version == "0.5.3"
    env = derive_environment({"vllm/version.py": "from ._version import __version__\n"}, None)
    assert env.vllm_version is None
