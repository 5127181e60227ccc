"""Each entity's rows that the integrity flags catch in a period (SPEC §11): `integrity`'s entity list and
`explain`'s flag line. The SQL is scoring/integrity.entity_query's, through the rules cache
(rules/cache.py): a served explanation need not import sqlglot to build three queries it built before
(0.1-0.2 s of a one-second command). The keys asked for are put into the remembered text as literals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from chuanliu_cli import schema
from chuanliu_cli.rules.flagnames import FLAGS
from chuanliu_cli.sqltext import literal

if TYPE_CHECKING:
    import polars as pl

    from chuanliu_cli.engines.base import Engine
    from chuanliu_cli.periods import Period
    from chuanliu_cli.rules.model import Integrity, Ruleset

#: Stands for the keys in a remembered query: a string literal no key list renders otherwise.
_KEYS = "__chuanliu_keys_4b1e9d__"


def entity_tables(key: str) -> list[str]:
    """The flagged tables that have the column `key`."""
    return [t for t in FLAGS if key in schema.TABLES[t].names]


def entity_sql(
    integrity: Integrity,
    period: Period,
    key: str,
    table: str,
    dialect: str,
    keys: Sequence[str] | None,
    marks: bool,
) -> str:
    """scoring/integrity.entity_query's text; on DuckDB remembered for every key list, the keys written in
    as DuckDB literals (the names query's way, engines/duckdb.py). Other dialects build it each time."""
    from chuanliu_cli.rules import cache

    def build(wanted: Sequence[str] | None) -> str:
        from chuanliu_cli.scoring.integrity import entity_query

        return entity_query(integrity, period, key, table, dialect, wanted, marks)

    if dialect != "duckdb":
        return build(keys)
    every = str(keys is None)
    question = (cache.model_digest(integrity), repr(period), key, table, dialect, str(marks), every)
    text = cache.remembered("entity-sql", question, lambda: build(None if keys is None else [_KEYS]))
    if keys is None:
        return text
    quoted = f"'{_KEYS}'"
    if quoted not in text:  # (cannot happen: the builder writes the keys as string literals)
        return build(keys)
    return text.replace(quoted, ", ".join(map(literal, keys)))


def entity_flags(
    engine: Engine, integrity: Integrity, period: Period, key: str, keys: Sequence[str] | None = None
) -> pl.DataFrame:
    """Per entity: its valid orders and GMV, those flagged (brushing, self purchase, either), its sessions
    and idle ones, its reviews and suspicious ones, and `share`: the largest flagged share of the three
    (GMV, sessions, reviews). Only entities with a flag unless `keys` are given."""
    import polars as pl

    frame: pl.DataFrame | None = None
    marks = engine.brushing_marks(integrity)
    for table in entity_tables(key):
        part = engine.query(entity_sql(integrity, period, key, table, engine.dialect, keys, marks))
        part = part.with_columns(pl.col("key").cast(pl.String))
        frame = part if frame is None else frame.join(part, on="key", how="full", coalesce=True)
    if frame is None:
        return pl.DataFrame({"key": []}, schema={"key": pl.String})
    counts = [c for c in frame.columns if c != "key" and not c.endswith("gmv")]
    amounts = [c for c in frame.columns if c.endswith("gmv")]
    frame = frame.with_columns(
        *(pl.col(c).fill_null(0).cast(pl.Int64) for c in counts),
        *(pl.col(c).cast(pl.Float64).fill_null(0.0) for c in amounts),
    )
    shares = []
    for flagged, whole in (
        ("flagged_gmv", "gmv"),
        ("idle_sessions", "sessions"),
        ("suspicious_reviews", "reviews"),
    ):
        if flagged in frame.columns:
            shares.append(pl.when(pl.col(whole) > 0).then(pl.col(flagged) / pl.col(whole)).otherwise(None))
    frame = frame.with_columns(
        pl.max_horizontal(*shares).alias("share") if shares else pl.lit(None).alias("share")
    )
    if keys is None:  # the entities with something flagged
        caught = [c for c in ("flagged_orders", "idle_sessions", "suspicious_reviews") if c in frame.columns]
        frame = frame.filter(pl.sum_horizontal(*caught) > 0)
    return frame.sort(["share", "key"], descending=[True, False], nulls_last=True)


def explain_flags(
    engine: Engine, ruleset: Ruleset, period: Period, key: str, value: str
) -> dict[str, Any] | None:
    """One entity's flagged rows in the period (for `explain`), or None when its key is in no flagged
    table. `excluded` lists the flags the ruleset excludes."""
    if not entity_tables(key):
        return None
    frame = entity_flags(engine, ruleset.integrity, period, key, [value])
    found = frame.row(0, named=True) if frame.height else {}
    counts: dict[str, Any] = {
        c: found.get(c, 0) or 0
        for c in (
            "orders",
            "brushing_orders",
            "self_purchase_orders",
            "flagged_orders",
            "sessions",
            "idle_sessions",
            "reviews",
            "suspicious_reviews",
        )
        if c in frame.columns
    }
    amounts: dict[str, Any] = {
        c: float(found.get(c, 0.0) or 0.0)
        for c in ("gmv", "brushing_gmv", "self_purchase_gmv", "flagged_gmv")
        if c in frame.columns
    }
    return {**counts, **amounts, "excluded": _used_flags(ruleset)}


def _used_flags(ruleset: Ruleset) -> list[str]:
    """scoring/integrity.used_flags, sorted, through the cache."""
    from chuanliu_cli.rules import cache

    def compute() -> list[str]:
        from chuanliu_cli.scoring.integrity import used_flags

        return sorted(used_flags(ruleset))

    return cache.remembered("used-flags", cache.model_digest(ruleset), compute)
