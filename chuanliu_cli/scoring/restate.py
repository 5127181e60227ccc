"""Restatement (SPEC §9): a recorded run's period scored again with the run's own ruleset on today's data,
and the entities whose eligibility, tier or grant changed, with the loads since the run behind each change.

Refunds and invalidated distribution orders arrive after a list is published; `runs diff RUN` says what the
list would be now and why, so that operations can adjust the next month's grants (the diff written with
`-o` is that adjustments file).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chuanliu_cli.arrays import frame_of
from chuanliu_cli.errors import DataError
from chuanliu_cli.schema import TABLES
from chuanliu_cli.sqltext import ident
from chuanliu_cli.store.database import CHANGE_WORDS, first_row

if TYPE_CHECKING:
    import duckdb
    import polars as pl

    from chuanliu_cli.periods import Period
    from chuanliu_cli.rules.model import Ruleset
    from chuanliu_cli.scoring.pipeline import RunResult

#: The columns of a diff, in order (the key column first, named after the scorecard's key).
DIFF_COLUMNS = (
    "name",
    "change",
    "eligible_before",
    "eligible_after",
    "tier_before",
    "tier_after",
    "rank_before",
    "rank_after",
    "grant_before",
    "grant_after",
    "grant_delta",
    "metrics_changed",
    "loads",
)

#: The `loads` of an entity none of whose rows changed: its grant moved because others' did.
POOL_ONLY = "none of its rows changed (the pool was shared anew)"

#: How many changed metrics each entity's line names (the rest are counted).
SHOW_METRICS = 5


@dataclass(frozen=True)
class RunDiff:
    """A restated run: its header as recorded, the ruleset it was scored with, the changed entities (one
    row each, DIFF_COLUMNS after the key) and the loads made after it."""

    run: dict[str, Any]
    ruleset: Ruleset
    period: Period
    scorecard: str
    key: str
    frame: pl.DataFrame
    loads: tuple[dict[str, Any], ...]
    allocated_before: int | None
    allocated_after: int | None
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class RunsDiffResult:
    """`runs diff`: the restated run and every warning of its scoring (Session.runs_diff)."""

    diff: RunDiff
    warnings: tuple[str, ...] = ()

    @property
    def frame(self) -> pl.DataFrame:
        """One row per changed entity: the key, then DIFF_COLUMNS."""
        return self.diff.frame


def diff_run(
    con: duckdb.DuckDBPyConnection, run_id: int, given: Ruleset | None = None
) -> tuple[RunDiff, RunResult]:
    """Score run `run_id`'s period again with its ruleset (as recorded in `rulesets`, or `given` when its
    sha256 is the run's) on the data as it is now, and compare entity by entity with the recorded rows;
    returns the diff and the new scoring (whose warnings the caller reports)."""
    import polars as pl

    from chuanliu_cli.periods import parse_period
    from chuanliu_cli.scoring.pipeline import score_period
    from chuanliu_cli.store.runs import stored_ruleset, unknown_run

    head = first_row(
        con.execute(
            "SELECT run_id, command, period, scorecard, ruleset_name, ruleset_sha256, max_load_id, "
            "allocated, tool_version, detail, started_at, pool FROM runs WHERE run_id = ?",
            [run_id],
        )
    )
    if head is None:
        raise unknown_run(con, run_id)
    names = ("run_id", "command", "period", "scorecard", "ruleset_name", "ruleset_sha256", "max_load_id",
             "allocated", "tool_version", "detail", "started_at", "pool")  # fmt: skip
    run = dict(zip(names, head, strict=True))
    detail = json.loads(run.pop("detail")) if head[9] else None
    sha = run["ruleset_sha256"]
    ruleset = given if given is not None and given.sha256 == sha else stored_ruleset(con, sha)
    if ruleset is None:
        raise DataError(
            f"run {run_id} was scored with ruleset {run['ruleset_name']} (sha256 {sha[:12]}…), whose text "
            "this database does not hold (the run was recorded before rulesets were stored)",
            hint=f"pass that ruleset file with --rules (its sha256 must be {sha})",
        )
    name, key = run["scorecard"], ruleset.scorecard(run["scorecard"]).key
    ruleset = _published_pool(ruleset, name, run)
    period = parse_period(run["period"], ruleset.period)
    before = _recorded(con, run_id, detail)
    after_run = score_period(con, ruleset, period, upto=name)
    after_res = after_run.scorecards[name]
    metrics = [m for m in (detail or {}).get("metrics", []) if m in after_res.frame.columns]
    after = after_res.frame.select(
        pl.col(key).cast(pl.Utf8).alias("entity"),
        pl.col("name").cast(pl.Utf8).alias("name_after"),
        pl.col("eligible").alias("eligible_after"),
        pl.col("tier").cast(pl.Utf8).alias("tier_after"),
        pl.col("rank").cast(pl.Int64).alias("rank_after"),
        pl.col("grant").cast(pl.Int64).alias("grant_after"),
        *(pl.col(m).cast(pl.Float64).alias(f"{m}__after") for m in metrics),
    )
    joined = before.join(after, on="entity", how="full", coalesce=True)
    grant_b = pl.col("grant_before").fill_null(0)
    grant_a = pl.col("grant_after").fill_null(0)
    changed = joined.filter(
        pl.col("eligible_before").ne_missing(pl.col("eligible_after"))
        | pl.col("tier_before").ne_missing(pl.col("tier_after"))
        | grant_b.ne(grant_a)
    )
    moved = _metric_changes(changed, metrics)
    behind = _loads_behind(con, ruleset, period, name, key, run["max_load_id"], changed["entity"].to_list())
    frame = changed.with_columns(
        pl.coalesce("name_after", "name_before").alias("name"),
        pl.when(pl.col("eligible_before").is_null())
        .then(pl.lit("new"))
        .when(pl.col("eligible_after").is_null())
        .then(pl.lit("gone"))
        .when(pl.col("eligible_before") & ~pl.col("eligible_after"))
        .then(pl.lit("leaves"))
        .when(~pl.col("eligible_before") & pl.col("eligible_after"))
        .then(pl.lit("enters"))
        .when(pl.col("tier_before").ne_missing(pl.col("tier_after")))
        .then(pl.lit("tier"))
        .otherwise(pl.lit("grant"))
        .alias("change"),
        (grant_a - grant_b).alias("grant_delta"),
        pl.Series("metrics_changed", moved, dtype=pl.Utf8),
        pl.col("entity").replace_strict(behind, default=POOL_ONLY, return_dtype=pl.Utf8).alias("loads"),
    )
    frame = frame.sort([pl.col("grant_delta").abs(), "entity"], descending=[True, False]).select(
        pl.col("entity").alias(key), *DIFF_COLUMNS
    )
    loads = tuple(_loads_after(con, run["max_load_id"]))
    warnings = []
    if run["tool_version"] != _version():
        warnings.append(
            f"run {run_id} was recorded by chuanliu {run['tool_version']}, this is {_version()}: a "
            "difference may come from the tool, not the data"
        )
    if not loads:
        warnings.append(f"no data was loaded after run {run_id}")
    allocated_after = None
    if after_res.scorecard.reward is not None:
        allocated_after = int(after_res.frame["grant"].fill_null(0).sum())
    return RunDiff(
        run, ruleset, period, name, key, frame, loads, run["allocated"], allocated_after, tuple(warnings)
    ), after_run


def _published_pool(ruleset: Ruleset, name: str, run: dict[str, Any]) -> Ruleset:
    """A budget's pool as the run had it: restating a month re-shares the pool that was published, not
    one paced again from the runs recorded since (SPEC §9)."""
    from dataclasses import replace

    sc = ruleset.scorecard(name)
    reward = sc.reward
    if reward is None or reward.budget is None or run["pool"] is None:
        return ruleset
    paced = replace(reward, pool=int(run["pool"]), basis=f"the pool recorded with run {run['run_id']}")
    cards = tuple(replace(c, reward=paced) if c.name == name else c for c in ruleset.scorecards)
    return replace(ruleset, scorecards=cards)


def _version() -> str:
    from chuanliu_cli import __version__

    return __version__


def _recorded(con: duckdb.DuckDBPyConnection, run_id: int, detail: dict[str, Any] | None) -> pl.DataFrame:
    """The run's rows as recorded: entity, name, eligibility, tier, rank, grant and each metric."""
    import polars as pl

    frame = frame_of(
        con.sql(
            'SELECT entity, name, eligible, tier, rank, "grant", metric_values FROM run_results '
            "WHERE run_id = ?",
            params=[run_id],
        )
    )
    metrics = (detail or {}).get("metrics", [])
    return frame.select(
        pl.col("entity"),
        pl.col("name").alias("name_before"),
        pl.col("eligible").alias("eligible_before"),
        pl.col("tier").alias("tier_before"),
        pl.col("rank").cast(pl.Int64).alias("rank_before"),
        pl.col("grant").cast(pl.Int64).alias("grant_before"),
        *(
            pl.col("metric_values").list.get(i, null_on_oob=True).alias(f"{m}__before")
            for i, m in enumerate(metrics)
        ),
    )


def _metric_changes(changed: pl.DataFrame, metrics: list[str]) -> list[str]:
    """Per changed entity, the metrics whose value moved, `live_days 8 → 7`, the first SHOW_METRICS."""
    out: list[str] = []
    pairs = [(m, f"{m}__before", f"{m}__after") for m in metrics if f"{m}__before" in changed.columns]
    rows = changed.select([c for _, b, a in pairs for c in (b, a)]).rows() if pairs else [()] * changed.height
    for row in rows:
        moved = []
        for i, (m, _, _) in enumerate(pairs):
            b, a = row[2 * i], row[2 * i + 1]
            if b != a and not (b is None and a is None) and not (b != b and a != a):  # (NaN == NaN here)
                moved.append(f"{m} {_num(b)} → {_num(a)}")
        extra = f" (+{len(moved) - SHOW_METRICS} more)" if len(moved) > SHOW_METRICS else ""
        out.append("; ".join(moved[:SHOW_METRICS]) + extra)
    return out


def _num(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def _loads_after(con: duckdb.DuckDBPyConnection, max_load_id: int | None) -> list[dict[str, Any]]:
    rows = con.execute(
        'SELECT load_id, "table", file, inserted, updated, time_min, time_max, finished_at FROM loads '
        "WHERE load_id > ? ORDER BY load_id",
        [max_load_id or 0],
    ).fetchall()
    names = ("load_id", "table", "file", "inserted", "updated", "time_min", "time_max", "finished_at")
    return [dict(zip(names, r, strict=True)) for r in rows]


def _loads_behind(
    con: duckdb.DuckDBPyConnection,
    ruleset: Ruleset,
    period: Period,
    scorecard: str,
    key: str,
    max_load_id: int | None,
    entities: list[str],
) -> dict[str, str]:
    """Per changed entity, the loads after the run that inserted or changed its rows inside the windows
    the scorecard reads: `load 7 orders (2023-05 refunds.csv): 3 updated`, one per load, joined by `; `.
    Tables without the scorecard's key column (or without a time column) are matched on the key alone.
    A grouped scorecard's (key_from) rows are matched through their shop's group, as they are scored."""
    from pathlib import PurePath

    from chuanliu_cli.rules.compiler import entity_key, key_table
    from chuanliu_cli.rules.windows import history_needed

    if not entities:
        return {}
    needs = history_needed(ruleset, period, upto=scorecard)
    sc = ruleset.scorecard(scorecard)
    entity = f"CAST({entity_key(sc, 't').sql(dialect='duckdb')} AS VARCHAR)"  # t.<key>, or t's group
    owner = ""
    if sc.key_from is not None:
        on, keys = ident(sc.key_from.on), ident(key_table(sc.key_from))
        owner = f"LEFT JOIN {ident(sc.key_from.table)} AS {keys} ON {keys}.{on} = t.{on} "
    parts = []
    for name, table in TABLES.items():
        if sc.row_key not in table.names or (name not in needs and table.time_column is not None):
            continue
        when = ""
        params: list[Any] = [name, max_load_id or 0]
        if table.time_column is not None:
            when = f"AND t.{ident(table.time_column)} >= ? AND t.{ident(table.time_column)} < ?"
            params += [needs[name].needed_from, period.end]
        parts.append(
            (
                f'SELECT {entity} AS entity, c.load_id, c."table", c.change, '
                f"count(*) AS n FROM load_changes c JOIN {ident(name)} t "
                f"ON CAST(t.{ident(table.key)} AS VARCHAR) = c.key {owner}"
                f'WHERE c."table" = ? AND c.load_id > ? {when} '
                f"AND list_contains(?, {entity}) GROUP BY ALL",
                [*params, entities],
            )
        )
    files = dict(
        con.execute("SELECT load_id, file FROM loads WHERE load_id > ?", [max_load_id or 0]).fetchall()
    )
    found: dict[str, dict[tuple[int, str], dict[str, int]]] = {}
    for sql, params in parts:
        for entity, load_id, table_name, change, n in con.execute(sql, params).fetchall():
            counts = found.setdefault(entity, {}).setdefault((load_id, table_name), {})
            counts[change] = counts.get(change, 0) + int(n)
    out = {}
    for entity, by_load in found.items():
        lines = []
        for (load_id, table_name), counts in sorted(by_load.items()):
            what = ", ".join(f"{n} {CHANGE_WORDS.get(c, c)}" for c, n in sorted(counts.items()))
            lines.append(
                f"load {load_id} {table_name} ({PurePath(str(files.get(load_id, '?'))).name}): {what}"
            )
        out[entity] = "; ".join(lines)
    return out
