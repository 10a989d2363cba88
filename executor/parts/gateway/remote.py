"""Leases on the driver's gateway for attempts that run in other processes (Ray tasks).

A Ray batch's driver runs the one gateway (limiter, budgets, key) and gives each task a
`RemoteGateway` handle: its URL and an admin secret. The task opens a lease over HTTP, points its
agent at the gateway with the lease's token, and on close gets the attempt's record back and
writes it into its own attempt dir, which travels back to the driver with the item. The provider
key never leaves the driver; the nodes need neither the key nor its variable.

The gateway must listen on an address the nodes (and their agent sandboxes) reach:
`--gateway-host` (127.0.0.1 serves a one-host cluster, whose sandboxes then use the host
network).
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
from pathlib import Path
from typing import Iterator

from pydantic import BaseModel, Field, SecretStr

from executor.parts.gateway.upstream import ModelRoute
from executor.core.journal import write_bytes_atomic

ADMIN_TIMEOUT_S = 60


class RemoteGateway(BaseModel):
    """How a Ray task reaches the driver's gateway (never written to disk)."""

    url: str = Field(description="The gateway's root URL, http://HOST:PORT.")
    admin_secret: SecretStr = Field(description="Lets the holder open and close leases.")

    def _call(self, method: str, path: str) -> bytes:
        from executor.parts.gateway.server import ADMIN_PATH

        request = urllib.request.Request(
            self.url + ADMIN_PATH + path, method=method, data=b"" if method == "POST" else None,
            headers={"Authorization": f"Bearer {self.admin_secret.get_secret_value()}"})
        with urllib.request.urlopen(request, timeout=ADMIN_TIMEOUT_S) as answer:
            return answer.read()

    @contextlib.contextmanager
    def leased(self, record_path: Path) -> Iterator[ModelRoute]:
        """A lease for one attempt; its record lands in `record_path` when it closes."""
        route = ModelRoute.model_validate(json.loads(self._call("POST", "")))
        try:
            yield route
        finally:
            write_bytes_atomic(record_path, self._call("DELETE", "/" + route.api_key))
