"""npm packages pinned by version and integrity, rendered as the package.json and
package-lock.json that `npm ci` installs from.

`npm ci` installs exactly what the lock file names and checks each tarball against its
`integrity` (a sha512 in Subresource Integrity form, as the registry publishes it), so a bundle
built from these files holds the bytes the pins name or its build fails. Platform packages (a
CLI's native binary per os/cpu, as `@openai/codex` ships them) are optional dependencies with
`os`/`cpu`: npm installs the one matching the build machine and skips the rest.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field


class NpmPin(BaseModel):
    """One package version in the lock file."""

    model_config = ConfigDict(frozen=True)

    path: str = Field(description="Where npm puts it: node_modules/<name or alias>.")
    name: str = Field(description="The registry's package name.")
    version: str = Field(description="Exact version.")
    integrity: str = Field(description="sha512-... as the registry publishes it.")
    os: tuple[str, ...] = Field(default=(), description="Platforms it installs on; () all.")
    cpu: tuple[str, ...] = Field(default=(), description="CPUs it installs on; () all.")
    optional: bool = Field(default=False, description="An optional dependency.")

    @property
    def alias(self) -> str:
        return self.path.removeprefix("node_modules/")


class NpmLock(BaseModel):
    """A root package with one direct dependency and the pins of everything it installs."""

    model_config = ConfigDict(frozen=True)

    root_name: str = Field(description="Name of the (private) root package.")
    direct: NpmPin = Field(description="The package the bundle is for.")
    optional: tuple[NpmPin, ...] = Field(default=(), description="Its optional dependencies.")

    def package_json(self) -> str:
        return json.dumps({"name": self.root_name, "private": True,
                           "dependencies": {self.direct.name: self.direct.version}},
                          indent=2) + "\n"

    def package_lock(self) -> str:
        packages: dict[str, dict] = {
            "": {"name": self.root_name,
                 "dependencies": {self.direct.name: self.direct.version}},
            self.direct.path: {
                "version": self.direct.version, "integrity": self.direct.integrity,
                **({"optionalDependencies": {
                    pin.alias: f"npm:{pin.name}@{pin.version}" for pin in self.optional}}
                   if self.optional else {})},
        }
        for pin in self.optional:
            entry: dict = {"name": pin.name, "version": pin.version,
                           "integrity": pin.integrity, "optional": True}
            if pin.os:
                entry["os"] = list(pin.os)
            if pin.cpu:
                entry["cpu"] = list(pin.cpu)
            packages[pin.path] = entry
        return json.dumps({"name": self.root_name, "lockfileVersion": 3, "requires": True,
                           "packages": packages}, indent=2) + "\n"

    def manifest(self) -> list[dict[str, str]]:
        """What the run's manifest records: every pin's name, version and integrity."""
        return [{"name": pin.name, "version": pin.version, "integrity": pin.integrity}
                for pin in (self.direct, *self.optional)]
