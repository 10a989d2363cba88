"""The cyclic garbage collector paused while a command that only reads builds its result.

`report` and `status` make hundreds of thousands of short-lived objects that hold no cycles
(the read fields of 823 trajectories, 21,000 steps, the report's models): reference counting
frees them, yet every burst of allocations starts the cyclic collector, which walks the live
objects, imports included. On ISO-Bench's state that was 10-15% of `report`'s CPU, for 289
objects found. The collector runs as before once the block ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection inside the block (reference counting goes on)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
