"""elf_versions.py on a real ELF (a copy of the system's libstdc++), checked against readelf."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from executor.parts.vllm.elf_versions import VER_FLG_WEAK, main, version_needs, weaken

SYSTEM_LIB = Path("/usr/lib/x86_64-linux-gnu/libstdc++.so.6")

pytestmark = pytest.mark.skipif(not SYSTEM_LIB.is_file(),
                                reason=f"needs a real ELF with version needs: {SYSTEM_LIB}")


@pytest.fixture()
def elf(tmp_path):
    copy = tmp_path / "libcopy.so"
    shutil.copyfile(SYSTEM_LIB, copy)
    return copy


def readelf_needs(path):
    """(library, version, flags) per need, as binutils' readelf -V prints them."""
    if shutil.which("readelf") is None:
        pytest.skip("readelf (binutils) is not installed")
    text = subprocess.run(["readelf", "-V", "-W", str(path)], capture_output=True, text=True,
                          check=True).stdout
    section = text.split("Version needs section", 1)[1]
    out, library = [], None
    for line in section.splitlines():
        if m := re.search(r"File: (\S+)", line):
            library = m.group(1)
        elif m := re.search(r"Name: (\S+)\s+Flags: (\S+)", line):
            out.append((library, m.group(1), m.group(2)))
    return out


def flag_word(flags):
    return {0: "none", VER_FLG_WEAK: "WEAK"}[flags]


def needs_shared_by_two_libraries(needs):
    by_name = {}
    for library, name, _at, _flags in needs:
        by_name.setdefault(name, set()).add(library)
    return sorted(name for name, libraries in by_name.items() if len(libraries) > 1)


def test_version_needs_agree_with_readelf(elf):
    needs = version_needs(elf.read_bytes())
    assert len(needs) > 5
    assert [(lib, name, flag_word(flags)) for lib, name, _at, flags in needs] == \
        readelf_needs(elf)


def test_weaken_flips_one_entry_and_is_idempotent(elf):
    before = elf.read_bytes()
    library, name, _at, _flags = next(n for n in version_needs(before) if n[0] == "libc.so.6")
    assert weaken(elf, {name}, library) == [f"{library}:{name}"]
    after = elf.read_bytes()
    assert len(after) == len(before)
    assert sum(a != b for a, b in zip(before, after)) <= 2
    expected = [(lib, n, "WEAK" if (lib, n) == (library, name) else flags)
                for lib, n, flags in readelf_needs(SYSTEM_LIB)]
    assert readelf_needs(elf) == expected
    assert weaken(elf, {name}, library) == []
    assert elf.read_bytes() == after


def test_weaken_without_library_takes_every_library_needing_the_name(elf):
    shared = needs_shared_by_two_libraries(version_needs(elf.read_bytes()))
    if not shared:
        pytest.skip("this libstdc++ needs no version name from two libraries")
    done = weaken(elf, {shared[0]})
    assert len(done) == 2 and all(d.endswith(f":{shared[0]}") for d in done)


def test_main_weakens_only_what_the_named_library_lacks(elf, tmp_path, capsys):
    needs = version_needs(elf.read_bytes())
    libc_names = [name for lib, name, _at, _flags in needs if lib == "libc.so.6"]
    shared = needs_shared_by_two_libraries(needs)
    # also needed from another library (libm): must stay untouched there
    only_libc = [name for name in libc_names if name not in shared]
    missing = {only_libc[0], *shared[:1]}
    fake = tmp_path / "lib" / "libc.so.6"  # the soname is the file's name
    fake.parent.mkdir()
    fake.write_bytes(b"\x00junk\x00" + b"".join(
        name.encode() + b"\x00" for name in libc_names if name not in missing))
    assert main(["--weaken-missing", str(fake), str(elf)]) == 0
    weak = {(lib, name) for lib, name, flags in readelf_needs(elf) if flags == "WEAK"}
    assert weak == {("libc.so.6", name) for name in missing}
    assert "weakened libc.so.6:" in capsys.readouterr().out
    assert main(["--weaken-missing", str(fake), str(elf)]) == 0
    assert "every libc.so.6 version need is met" in capsys.readouterr().out


def test_not_an_elf_is_a_value_error(tmp_path):
    text = tmp_path / "not.so"
    text.write_bytes(b"#!/bin/sh\necho hi\n" * 10)
    with pytest.raises(ValueError, match="not a little-endian ELF64"):
        version_needs(text.read_bytes())
    with pytest.raises(ValueError):
        weaken(text, {"GLIBCXX_3.4.32"})
