"""Wheel URL choice per era, local wheel folders, METADATA checks, offline probing."""

import datetime as dt
import time
import zipfile

from executor.parts.vllm.wheels import (Prober, find_wheel, local_wheel, version_problem,
                                  wheel_candidates, wheel_metadata_version)

SHA = "3476ed0809ec91a3457da0cb90543133a4f4b519"


def eras(day, version=None, cuda=None):
    return [(c.era, c.url, c.check_version) for c in wheel_candidates(SHA, day, version, cuda)]


def test_no_wheels_before_july_2024():
    assert wheel_candidates(SHA, dt.date(2024, 6, 30)) == []
    assert wheel_candidates(SHA, None) == []


def test_s3_pattern_named_by_version_py():
    [(era, url, check)] = eras(dt.date(2024, 7, 25), "0.5.3")
    assert era == "s3" and not check
    assert url == (f"https://vllm-wheels.s3.us-west-2.amazonaws.com/{SHA}/"
                   f"vllm-0.5.3-cp38-abi3-manylinux1_x86_64.whl")
    [(era, url, _)] = eras(dt.date(2024, 7, 25), None)
    assert era == "s3" and url is None  # the name needs version.py


def test_september_2024_tries_both_and_checks_the_cu118_trap():
    found = eras(dt.date(2024, 9, 15), "0.6.1")
    assert [e for e, _, _ in found] == ["s3", "placeholder"]
    assert found[1][1] == (f"https://wheels.vllm.ai/{SHA}/"
                           f"vllm-1.0.0.dev-cp38-abi3-manylinux1_x86_64.whl")
    assert found[1][2] is True
    assert eras(dt.date(2024, 11, 22))[0][2] is False  # after 21 Nov the trap is over


def test_2025_placeholder_then_metadata_json_from_december_2025():
    assert [e for e, _, _ in eras(dt.date(2025, 3, 1))] == ["placeholder"]
    found = eras(dt.date(2026, 1, 10), cuda="12.9")
    assert [e for e, _, _ in found] == ["metadata"]
    assert found[0][1] == f"https://wheels.vllm.ai/{SHA}/cu129/vllm/metadata.json"


def make_wheel(path, version):
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(f"vllm-{version}.dist-info/METADATA",
                       f"Metadata-Version: 2.1\nName: vllm\nVersion: {version}\n\n")
        wheel.writestr("vllm/_C.abi3.so", b"\x7fELF")
    return path


def test_local_wheel_by_folder_or_scm_name(tmp_path):
    (tmp_path / SHA).mkdir()
    by_folder = make_wheel(tmp_path / SHA / "vllm-1.0.0.dev-cp38-abi3-manylinux1_x86_64.whl",
                           "0.6.3.dev1+g3476ed08")
    assert local_wheel(tmp_path, SHA) == by_folder
    other = "89a84b0bb7b30706a02836234a94493ea8f780bf"
    by_name = make_wheel(tmp_path / "vllm-0.5.3+g89a84b0b-cp38-abi3-linux_x86_64.whl", "0.5.3")
    assert local_wheel(tmp_path, other) == by_name
    assert local_wheel(tmp_path, "0" * 40) is None
    assert wheel_metadata_version(by_folder) == "0.6.3.dev1+g3476ed08"


def test_cu118_build_is_refused(tmp_path):
    assert version_problem("0.6.2+cu118") and not version_problem("0.6.2")
    (tmp_path / SHA).mkdir()
    make_wheel(tmp_path / SHA / "vllm-1.0.0.dev-cp38-abi3-manylinux1_x86_64.whl", "0.6.2+cu118")
    choice = find_wheel(SHA, dt.date(2024, 10, 1), None, "12.1", tmp_path, Prober(enabled=False))
    assert choice is not None and choice.source == "url" and choice.status == "unprobed"


def test_offline_probe_degrades_to_unprobed_quickly_and_once_per_host():
    prober = Prober(enabled=True, timeout_s=2)
    started = time.monotonic()
    first = prober.head("http://127.0.0.1:9/a.whl")  # nothing listens on the discard port
    second = prober.head("http://127.0.0.1:9/b.whl")
    assert first.status == second.status == "unprobed"
    assert "unreachable earlier" in second.detail
    assert time.monotonic() - started < 5
    assert Prober(enabled=False).head("https://wheels.vllm.ai/x.whl").status == "unprobed"
