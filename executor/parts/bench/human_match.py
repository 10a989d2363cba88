"""The margin by which an agent's speedup matches the human's, apart from the statistics that
apply it (stats.py): readers of results (the report) need the number, not scipy (half a
second of `isobench report`'s start-up)."""

from __future__ import annotations

# GSO's margin: the agent matches the human when it reaches 95% of the human's speedup. GSO
# applies it to point estimates; here it is the non-inferiority margin of agent/human's
# interval (stats.decide_human_match), so noise alone cannot flip a verdict across it.
HUMAN_FRACTION = 0.95
