"""What-if: the same data scored under two rulesets (or one ruleset in two periods), entity by entity."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

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
    """Per-entity rows and the summary of moving from side A to side B.

    `frame` holds one row per entity in either population (the columns of ROW_COLUMNS), sorted by
    |Δ grant| descending then key; every count of the summary is a polars expression over it, so a
    comparison of 500,000 entities costs about a second. `rows` is the same table as dicts, built on
    first use (only outputs that list every entity need it).
    """

    scorecard: str
    key: str
    a: Side
    b: Side
    frame: pl.DataFrame
    tiers: list[str]  # matrix labels: tiers high to low, then "no tier", ineligible, absent
    matrix: dict[str, dict[str, int]]  # A label -> B label -> count

    @cached_property
    def rows(self) -> list[dict[str, Any]]:
        """One dict per entity (ROW_COLUMNS), in the order of `frame`."""
        return self.frame.to_dicts()

    def flat(self, rows: pl.DataFrame | None = None) -> pl.DataFrame:
        """`frame` (or `rows` of it) with the list cells joined ("a;b", reasons "x; y"; none: empty), for
        csv and parquet."""
        import polars as pl

        return (self.frame if rows is None else rows).with_columns(
            pl.col("now_failing").list.join(";").fill_null(""),
            pl.col("now_failing_reasons").list.join("; ").fill_null(""),
        )

    @property
    def entrants(self) -> list[dict[str, Any]]:
        """Entities eligible under B but not under A."""
        return self._where("entered")

    @property
    def leavers(self) -> list[dict[str, Any]]:
        """Entities eligible under A but not under B."""
        return self._where("left")

    def _where(self, change: str) -> list[dict[str, Any]]:
        import polars as pl

        return self.frame.filter(pl.col("change") == change).to_dicts()

    @property
    def grant_moved(self) -> int:
        """Σ |Δ grant| / 2: the traffic that changed hands."""
        return int(self._counts["moved"]) // 2

    @property
    def unchanged(self) -> bool:
        """True when no entity changes eligibility, tier, score or grant."""
        return self._counts["changed"] == 0

    @cached_property
    def _counts(self) -> dict[str, Any]:
        import polars as pl

        change = pl.col("change")
        delta = pl.col("total_delta")
        return self.frame.select(
            (change == "entered").sum().alias("entrants"),
            (change == "left").sum().alias("leavers"),
            change.is_in(["tier up", "tier down"]).sum().alias("tier_moves"),
            pl.col("grant_delta").abs().sum().alias("moved"),
            # (a NaN delta is a change: NaN == 0 is false)
            ((change != "same") | ~(delta.is_null() | (delta == 0))).sum().alias("changed"),
        ).row(0, named=True)

    def summary(self) -> dict[str, Any]:
        """Counts and totals of both sides, for every output format."""
        import polars as pl

        counts = self._counts
        # `frame` is sorted by |Δ grant| descending then key: the first rows of each sign are the largest
        ga = self.frame.filter(pl.col("grant_delta") > 0).head(5)
        lo = self.frame.filter(pl.col("grant_delta") < 0).head(5)
        ta, tb = self.a.result.totals(), self.b.result.totals()
        return {
            "a": {"label": self.a.label, **_side_info(self.a), **ta},
            "b": {"label": self.b.label, **_side_info(self.b), **tb},
            "eligible": {"a": ta["eligible"], "b": tb["eligible"]},
            "entrants": int(counts["entrants"]),
            "leavers": int(counts["leavers"]),
            "tier_moves": int(counts["tier_moves"]),
            "grant_moved": self.grant_moved,
            "unchanged": self.unchanged,
            "top_gainers": _briefs(ga),
            "top_losers": _briefs(lo),
            "tier_matrix": self.matrix,
        }


#: The columns of Comparison.frame (and the keys of each of its `rows`), in order.
ROW_COLUMNS = (
    "key",
    "name",
    "change",
    "eligible_a",
    "eligible_b",
    "tier_a",
    "tier_b",
    "total_a",
    "total_b",
    "total_delta",
    "grant_a",
    "grant_b",
    "grant_delta",
    "now_failing",
    "now_failing_reasons",
)


def _side_info(side: Side) -> dict[str, Any]:
    rs = side.run.ruleset
    return {
        "ruleset": {"name": rs.name, "sha256": rs.sha256, "path": str(rs.path)},
        "period": side.run.period.label,
        "complete": side.run.complete,
    }


def _briefs(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return frame.select("key", "name", "grant_delta").to_dicts()


def _side(result: ScorecardResult, suffix: str) -> pl.DataFrame:
    """One side's columns for the join: key, then name, eligible, tier, total, grant, failed gates."""
    import polars as pl

    sc = result.scorecard
    return result.frame.select(
        pl.col(sc.key).alias("key"),
        pl.col("name").alias(f"name_{suffix}"),
        pl.col("eligible").fill_null(False).alias(f"eligible_{suffix}"),
        pl.col("tier").alias(f"tier_{suffix}"),
        pl.col(sc.rank_by).alias(f"total_{suffix}"),
        pl.col("grant").fill_null(0).alias(f"grant_{suffix}"),
        pl.col("failed_gates").alias(f"failed_{suffix}"),
        pl.lit(True).alias(f"in_{suffix}"),
    )


def _label(suffix: str) -> pl.Expr:
    """The tier-matrix label of each row on one side: absent, ineligible, its tier or "no tier"."""
    import polars as pl

    return (
        pl.when(~pl.col(f"in_{suffix}"))
        .then(pl.lit(ABSENT))
        .when(~pl.col(f"eligible_{suffix}"))
        .then(pl.lit(INELIGIBLE))
        .otherwise(pl.col(f"tier_{suffix}").fill_null("no tier"))
    )


def compare_results(a: Side, b: Side) -> Comparison:
    """Compare two scored versions of the same scorecard (a full join of the two frames, in polars)."""
    import polars as pl

    sc_a, sc_b = a.result.scorecard, b.result.scorecard
    key = sc_a.key
    if sc_b.key != key:
        from chuanliu_cli.errors import UsageError

        raise UsageError(f"scorecard {sc_a.name} is keyed by {key} in A but by {sc_b.key} in B")
    rank = {t.name: i for i, t in enumerate(sc_a.tiers)}
    rank.update({t.name: i for i, t in enumerate(sc_b.tiers) if t.name not in rank})
    labels = [*sorted(rank, key=lambda t: rank[t]), "no tier", INELIGIBLE, ABSENT]
    reasons_b = {g.id: g.reason for g in sc_b.gates}
    joined = (
        _side(a.result, "a")
        .join(_side(b.result, "b"), on="key", how="full", coalesce=True)
        .with_columns(
            pl.col("in_a", "in_b", "eligible_a", "eligible_b").fill_null(False),
            pl.col("grant_a", "grant_b").fill_null(0),
            pl.col("failed_a", "failed_b").fill_null(pl.lit([], dtype=pl.List(pl.Utf8))),
        )
        .with_columns(_label("a").alias("label_a"), _label("b").alias("label_b"))
        .with_row_index("__row")
    )
    ea, eb = pl.col("eligible_a"), pl.col("eligible_b")
    la, lb = pl.col("label_a"), pl.col("label_b")
    rank_a = la.replace_strict(rank, default=None, return_dtype=pl.Int64)
    rank_b = lb.replace_strict(rank, default=None, return_dtype=pl.Int64)
    change = (
        pl.when(ea & ~eb)
        .then(pl.lit("left"))
        .when(eb & ~ea)
        .then(pl.lit("entered"))
        .when((la != lb) & rank_a.is_not_null() & rank_b.is_not_null())
        .then(pl.when(rank_b < rank_a).then(pl.lit("tier up")).otherwise(pl.lit("tier down")))
        .when((la != lb) & (la == "no tier"))
        .then(pl.lit("tier up"))
        .when((la != lb) & (lb == "no tier"))
        .then(pl.lit("tier down"))
        .otherwise(pl.lit("same"))
    )
    # gates B fails and A did not, in B's order (an entity absent from A fails none there)
    newly = (
        joined.select("__row", pl.col("failed_b").alias("gate"))
        .explode("gate")
        .drop_nulls("gate")
        .join(
            joined.select("__row", pl.col("failed_a").alias("gate")).explode("gate").drop_nulls("gate"),
            on=["__row", "gate"],
            how="anti",
            maintain_order="left",
        )
        .group_by("__row", maintain_order=True)
        .agg(
            pl.col("gate").alias("now_failing"),
            pl.col("gate").replace_strict(reasons_b, return_dtype=pl.Utf8).alias("now_failing_reasons"),
        )
    )
    frame = (
        joined.join(newly, on="__row", how="left", maintain_order="left")
        .with_columns(
            pl.when(pl.col("in_b")).then(pl.col("name_b")).otherwise(pl.col("name_a")).alias("name"),
            change.alias("change"),
            (pl.col("total_b") - pl.col("total_a")).alias("total_delta"),
            (pl.col("grant_b") - pl.col("grant_a")).alias("grant_delta"),
            pl.col("now_failing", "now_failing_reasons").fill_null(pl.lit([], dtype=pl.List(pl.Utf8))),
        )
        .sort([pl.col("grant_delta").abs(), "key"], descending=[True, False])
    )
    matrix = {x: dict.fromkeys(labels, 0) for x in labels}
    for x, y, n in frame.group_by("label_a", "label_b").len().iter_rows():
        matrix[x][y] += n  # (a label outside `labels` is a KeyError, never a silent drop)
    return Comparison(sc_a.name, key, a, b, frame.select(ROW_COLUMNS), labels, matrix)
