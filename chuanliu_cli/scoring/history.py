"""`history`: an entity period by period (SPEC §9); the periods are scored or read back by api.Session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

#: The columns of a history row, in order.
HISTORY_COLUMNS = (
    "period",
    "ruleset",
    "sha256",
    "source",
    "complete",
    "in_population",
    "eligible",
    "failed_gates",
    "tier",
    "rank",
    "ranked",
    "total",
    "grant",
)


@dataclass(frozen=True)
class HistoryResult:
    """One entity period by period (Session.history): one dict per period with HISTORY_COLUMNS."""

    key: str
    key_name: str
    scorecard: str
    rows: tuple[dict[str, Any], ...]
    warnings: tuple[str, ...] = ()

    @property
    def frame(self) -> pl.DataFrame:
        """One row per period, HISTORY_COLUMNS typed (failed_gates a list of text)."""
        import polars as pl

        kinds = [pl.Utf8, pl.Utf8, pl.Utf8, pl.Utf8, pl.Boolean, pl.Boolean, pl.Boolean, pl.List(pl.Utf8),
                 pl.Utf8, pl.Int64, pl.Int64, pl.Float64, pl.Int64]  # fmt: skip
        schema: dict[str, Any] = dict(zip(HISTORY_COLUMNS, kinds, strict=True))
        return pl.DataFrame([dict(r) for r in self.rows], schema=schema)
