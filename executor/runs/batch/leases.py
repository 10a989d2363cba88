"""GPU leases: which devices an item may use while it runs.

Each running item holds one lease; a lease is `gpus_per_item` device ids that no other running
item holds. With `--gpus none` the pool hands out CPU slots: leases with no device ids, as many
as there are workers. Leases are taken without waiting (the dispatcher only asks when
`available()` says one is free), so nothing here blocks or polls.
"""

from __future__ import annotations

import threading

from pydantic import BaseModel, Field

from executor.core.errors import UserInputError


class GpuLease(BaseModel):
    """The devices one running item may use."""

    slot: int = Field(description="Index of the lease in its pool (stable, for display).")
    gpu_ids: tuple[str, ...] = Field(description="Device ids; empty for a CPU slot.")


def parse_gpus(spec: str | None) -> list[str]:
    """`--gpus 0,1,2,3` -> ['0','1','2','3']; `none` (or empty) -> [] (CPU slots)."""
    if spec is None or spec.strip().lower() in ("", "none", "cpu"):
        return []
    ids = [part.strip() for part in spec.split(",")]
    if any(not part for part in ids):
        raise UserInputError(f"--gpus {spec!r}: empty device id")
    if len(set(ids)) != len(ids):
        raise UserInputError(f"--gpus {spec!r}: a device is listed twice")
    return ids


class GpuLeasePool:
    """A fixed set of leases. Thread-safe so a Ray or threaded dispatcher can share it."""

    def __init__(self, gpu_ids: list[str], *, gpus_per_item: int = 1, cpu_slots: int = 1):
        if gpu_ids:
            if gpus_per_item < 1 or len(gpu_ids) < gpus_per_item:
                raise UserInputError(f"{len(gpu_ids)} GPU(s) cannot give {gpus_per_item} "
                                     f"per item")
            # Leftover devices (5 GPUs at 2 per item) stay unused rather than half-leased.
            groups = [tuple(gpu_ids[i:i + gpus_per_item])
                      for i in range(0, len(gpu_ids) - gpus_per_item + 1, gpus_per_item)]
        else:
            if cpu_slots < 1:
                raise UserInputError("need at least one CPU slot")
            groups = [()] * cpu_slots
        self._leases = [GpuLease(slot=i, gpu_ids=g) for i, g in enumerate(groups)]
        self._free = list(reversed(self._leases))  # pop() hands out slot 0 first
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return len(self._leases)

    def available(self) -> int:
        with self._lock:
            return len(self._free)

    def acquire(self) -> GpuLease | None:
        """A free lease, or None when all are held."""
        with self._lock:
            return self._free.pop() if self._free else None

    def release(self, lease: GpuLease) -> None:
        with self._lock:
            if lease not in self._leases or lease in self._free:
                raise RuntimeError(f"lease {lease.slot} released twice or not from this pool")
            self._free.append(lease)
