"""What-if: the same data scored under two rulesets (or one ruleset in two periods), entity by entity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chuanliu_cli.scoring.pipeline import RunResult, ScorecardResult

#: The label of an entity that is not eligible, in the tier matrix.
INELIGIBLE = "ineligible"
#: The label of an entity absent from one side's population.
ABSENT = "absent"


@dataclass(frozen=True)
class Side:
    """One side of a comparison: its label (ruleset or month) and its scored scorecard."""

    label: str
    run: RunResult
    result: ScorecardResult


@dataclass(frozen=True)
class Comparison:
    """Per-entity rows and the summary of moving from side A to side B."""

    scorecard: str
    key: str
    a: Side
    b: Side
    rows: list[dict[str, Any]]  # one per entity in either population, sorted by |Δ grant| then key
    tiers: list[str]  # matrix labels: tiers high to low, then "no tier", ineligible, absent
    matrix: dict[str, dict[str, int]]  # A label -> B label -> count

    @property
    def entrants(self) -> list[dict[str, Any]]:
        """Entities eligible under B but not under A."""
        return [r for r in self.rows if r["change"] == "entered"]

    @property
    def leavers(self) -> list[dict[str, Any]]:
        """Entities eligible under A but not under B."""
        return [r for r in self.rows if r["change"] == "left"]

    @property
    def grant_moved(self) -> int:
        """Σ |Δ grant| / 2: the traffic that changed hands."""
        return sum(abs(r["grant_delta"]) for r in self.rows) // 2

    @property
    def unchanged(self) -> bool:
        """True when no entity changes eligibility, tier, score or grant."""
        return all(r["change"] == "same" and r["total_delta"] in (0, None) for r in self.rows)

    def summary(self) -> dict[str, Any]:
        """Counts and totals of both sides, for every output format."""
        ga = sorted(
            (r for r in self.rows if r["grant_delta"] > 0), key=lambda r: (-r["grant_delta"], r["key"])
        )
        lo = sorted(
            (r for r in self.rows if r["grant_delta"] < 0), key=lambda r: (r["grant_delta"], r["key"])
        )
        ta, tb = self.a.result.totals(), self.b.result.totals()
        return {
            "a": {"label": self.a.label, **_side_info(self.a), **ta},
            "b": {"label": self.b.label, **_side_info(self.b), **tb},
            "eligible": {"a": ta["eligible"], "b": tb["eligible"]},
            "entrants": len(self.entrants),
            "leavers": len(self.leavers),
            "tier_moves": sum(1 for r in self.rows if r["change"] in ("tier up", "tier down")),
            "grant_moved": self.grant_moved,
            "unchanged": self.unchanged,
            "top_gainers": [_brief(r) for r in ga[:5]],
            "top_losers": [_brief(r) for r in lo[:5]],
            "tier_matrix": self.matrix,
        }


def _side_info(side: Side) -> dict[str, Any]:
    rs = side.run.ruleset
    return {
        "ruleset": {"name": rs.name, "sha256": rs.sha256, "path": str(rs.path)},
        "period": side.run.period.label,
        "complete": side.run.complete,
    }


def _brief(row: dict[str, Any]) -> dict[str, Any]:
    return {"key": row["key"], "name": row["name"], "grant_delta": row["grant_delta"]}


def _label(row: dict[str, Any] | None) -> str:
    if row is None:
        return ABSENT
    if not row["eligible"]:
        return INELIGIBLE
    return row["tier"] or "no tier"


def compare_results(a: Side, b: Side) -> Comparison:
    """Compare two scored versions of the same scorecard."""
    sc_a, sc_b = a.result.scorecard, b.result.scorecard
    key = sc_a.key
    if sc_b.key != key:
        from chuanliu_cli.errors import UsageError

        raise UsageError(f"scorecard {sc_a.name} is keyed by {key} in A but by {sc_b.key} in B")
    rows_a = {r[key]: r for r in a.result.frame.iter_rows(named=True)}
    rows_b = {r[key]: r for r in b.result.frame.iter_rows(named=True)}
    rank = {t.name: i for i, t in enumerate(sc_a.tiers)}
    rank.update({t.name: i for i, t in enumerate(sc_b.tiers) if t.name not in rank})
    labels = [*sorted(rank, key=lambda t: rank[t]), "no tier", INELIGIBLE, ABSENT]
    matrix = {x: dict.fromkeys(labels, 0) for x in labels}
    reasons_b = {g.id: g.reason for g in sc_b.gates}
    rows = []
    for k in sorted(set(rows_a) | set(rows_b)):
        ra, rb = rows_a.get(k), rows_b.get(k)
        la, lb = _label(ra), _label(rb)
        matrix[la][lb] += 1
        ea, eb = bool(ra and ra["eligible"]), bool(rb and rb["eligible"])
        ga, gb = (ra["grant"] or 0) if ra else 0, (rb["grant"] or 0) if rb else 0
        ta = ra[sc_a.rank_by] if ra else None
        tb = rb[sc_b.rank_by] if rb else None
        if ea and not eb:
            change = "left"
        elif eb and not ea:
            change = "entered"
        elif la != lb and la in rank and lb in rank:
            change = "tier up" if rank[lb] < rank[la] else "tier down"
        elif la != lb:
            change = "tier up" if la == "no tier" else "tier down" if lb == "no tier" else "same"
        else:
            change = "same"
        failed_a = set(ra["failed_gates"] or []) if ra else set()
        failed_b = list(rb["failed_gates"] or []) if rb else []
        newly = [g for g in failed_b if g not in failed_a]
        rows.append(
            {
                "key": k,
                "name": (rb or ra or {}).get("name"),
                "change": change,
                "eligible_a": ea,
                "eligible_b": eb,
                "tier_a": ra["tier"] if ra else None,
                "tier_b": rb["tier"] if rb else None,
                "total_a": ta,
                "total_b": tb,
                "total_delta": None if ta is None or tb is None else tb - ta,
                "grant_a": ga,
                "grant_b": gb,
                "grant_delta": gb - ga,
                "now_failing": newly,
                "now_failing_reasons": [reasons_b[g] for g in newly],
            }
        )
    rows.sort(key=lambda r: (-abs(r["grant_delta"]), r["key"]))
    return Comparison(sc_a.name, key, a, b, rows, labels, matrix)
