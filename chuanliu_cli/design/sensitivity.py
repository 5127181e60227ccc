"""Sensitivity of a scorecard's results to each of its numbers (SPEC §10: `chuanliu rules sensitivity`).

Every knob of design/variants (each gate threshold, weight, tier min_score, the cap and the pool) is moved
by each relative delta (−20 %, −5 %, +5 %, +20 % by default; pools and caps to whole units) with everything
else as written, and the variant is compared with the ruleset as written: eligible count, entrants (eligible
only in the variant), leavers (eligible only as written) and grant moved (Σ|Δ grant| / 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chuanliu_cli.design.variants import Knob, Outcome, Variants

#: The relative changes tried on every knob.
DELTAS = (-0.2, -0.05, 0.05, 0.2)


@dataclass(frozen=True)
class Change:
    """One knob moved by one delta; None counts when the variant is not a valid ruleset (tiers would not
    descend, min_grant above the cap)."""

    delta: float
    value: float
    eligible: int | None
    entrants: int | None
    leavers: int | None
    grant_moved: int | None

    def to_dict(self) -> dict[str, Any]:
        """SPEC §10: delta, eligible, entrants, leavers, grant_moved."""
        return {
            "delta": self.delta,
            "eligible": self.eligible,
            "entrants": self.entrants,
            "leavers": self.leavers,
            "grant_moved": self.grant_moved,
        }


@dataclass(frozen=True)
class KnobSensitivity:
    """A knob and its changes."""

    knob: Knob
    changes: tuple[Change, ...]

    @property
    def largest(self) -> int:
        """The largest effect of any change: grant moved, else entrants + leavers (for the tornado order)."""
        return max(((c.grant_moved or 0) + (c.entrants or 0) + (c.leavers or 0)) for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        """SPEC §10: path, value, changes."""
        return {
            "path": self.knob.path,
            "value": self.knob.value,
            "changes": [c.to_dict() for c in self.changes],
        }


@dataclass(frozen=True)
class Sensitivity:
    """Every knob of one scorecard, in the ruleset's order, and the result as written."""

    scorecard: str
    eligible: int
    allocated: int | None
    knobs: tuple[KnobSensitivity, ...]
    whole_gates: dict[str, str]  # gates whose thresholds are no knobs, and why


def moved(knob: Knob, delta: float) -> float:
    """The knob's value moved by `delta` (relative); pools and caps rounded to whole units."""
    value = knob.value * (1 + delta)
    # (6 decimals: what gates and tiers compare, so the value written and the value compared agree)
    return float(round(value)) if knob.integer else round(value, 6)


def sensitivity(variants: Variants, deltas: Sequence[float] = DELTAS) -> Sensitivity:
    """Every knob of `variants` moved by every delta and compared with the ruleset as written.

    The unchanged variant is first checked against the scored result (eligibility and grants of every
    entity): a disagreement is a bug, raised rather than reported as effects."""
    import numpy as np

    base = variants.evaluate({})
    assert base is not None  # the ruleset as written is valid
    frame = variants.result.frame
    same = np.array_equal(base.eligible, frame["eligible"].fill_null(False).to_numpy()) and (
        base.grant is None or np.array_equal(base.grant, frame["grant"].fill_null(0).to_numpy())
    )
    if not same:
        raise RuntimeError(
            "sensitivity: the unchanged ruleset evaluated over the metrics differs from its scoring"
        )
    out = []
    for knob in variants.knobs.values():
        changes = []
        for d in deltas:
            value = moved(knob, d)
            outcome = variants.evaluate({knob.path: value})
            changes.append(_change(d, value, base, outcome))
        out.append(KnobSensitivity(knob, tuple(changes)))
    allocated = int(base.grant.sum()) if base.grant is not None else None
    return Sensitivity(
        variants.scorecard.name, base.eligible_count, allocated, tuple(out), dict(variants.whole_gates)
    )


def _change(delta: float, value: float, base: Outcome, outcome: Outcome | None) -> Change:
    import numpy as np

    if outcome is None:
        return Change(delta, value, None, None, None, None)
    entrants = int((outcome.eligible & ~base.eligible).sum())
    leavers = int((base.eligible & ~outcome.eligible).sum())
    grant_moved = None
    if outcome.grant is not None and base.grant is not None:
        grant_moved = int(np.abs(outcome.grant.astype(object) - base.grant.astype(object)).sum()) // 2
    return Change(delta, value, outcome.eligible_count, entrants, leavers, grant_moved)
