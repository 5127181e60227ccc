"""The audit trail: each recorded `eligible`/`score` run, its inputs and its per-entity results (SPEC §6)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chuanliu_cli import __version__
from chuanliu_cli.errors import DataError
from chuanliu_cli.schema import TABLES
from chuanliu_cli.sqltext import ident
from chuanliu_cli.store.database import first_row

if TYPE_CHECKING:
    import duckdb

    from chuanliu_cli.scoring.pipeline import RunResult


@dataclass(frozen=True)
class Inputs:
    """What the scored data was: row counts per table and the newest load, read while scoring."""

    rows: dict[str, int]
    max_load_id: int | None


def snapshot_inputs(con: duckdb.DuckDBPyConnection) -> Inputs:
    """Row counts of the data tables and the latest load id."""
    rows = {}
    for name in TABLES:
        row = first_row(con.execute(f"SELECT count(*) FROM {ident(name)}"))
        rows[name] = int(row[0]) if row else 0
    load = first_row(con.execute("SELECT max(load_id) FROM loads"))
    return Inputs(rows, int(load[0]) if load and load[0] is not None else None)


def record_run(
    con: duckdb.DuckDBPyConnection,
    run: RunResult,
    scorecard: str,
    command: str,
    inputs: Inputs,
    started_at: datetime,
) -> int:
    """Insert the run and one result row per entity of `scorecard`; returns the run id."""
    res = run.scorecards[scorecard]
    sc = res.scorecard
    totals = res.totals()
    con.execute("BEGIN TRANSACTION")
    try:
        row = first_row(con.execute("SELECT nextval('run_id_seq')"))
        assert row is not None
        run_id = int(row[0])
        con.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                started_at,
                datetime.now(),
                command,
                run.period.label,
                run.period.start,
                run.period.end,
                run.complete,
                scorecard,
                run.ruleset.name,
                run.ruleset.sha256,
                str(run.ruleset.path),
                inputs.rows["orders"],
                inputs.rows["reviews"],
                inputs.rows["livestreams"],
                inputs.rows["shops"],
                inputs.max_load_id,
                totals["entities"],
                totals["eligible"],
                totals["pool"] if sc.reward else None,
                totals["allocated"] if sc.reward else None,
                __version__,
            ],
        )
        frame = res.frame.select(
            sc.key, "name", "rank", "eligible", "failed_gates", "tier", sc.rank_by, "grant"
        )
        rows = [
            (run_id, scorecard, key, name, rank, eligible, ";".join(failed or []), tier, score, grant)
            for key, name, rank, eligible, failed, tier, score, grant in frame.iter_rows()
        ]
        if rows:  # an empty period is a run too (recorded with no result rows); executemany refuses []
            con.executemany("INSERT INTO run_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return run_id


RUN_COLUMNS = (
    "run_id",
    "started_at",
    "command",
    "period",
    "complete",
    "scorecard",
    "ruleset_name",
    "ruleset_sha256",
    "orders_rows",
    "reviews_rows",
    "livestreams_rows",
    "max_load_id",
    "entities",
    "eligible",
    "allocated",
    "tool_version",
)


def list_runs(con: duckdb.DuckDBPyConnection, limit: int = 50) -> list[dict[str, Any]]:
    """The latest runs, newest first."""
    cols = ", ".join(ident(c) for c in RUN_COLUMNS)
    rows = con.execute(f"SELECT {cols} FROM runs ORDER BY run_id DESC LIMIT ?", [limit]).fetchall()
    return [dict(zip(RUN_COLUMNS, r, strict=True)) for r in rows]


def run_results(con: duckdb.DuckDBPyConnection, run_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One run and its per-entity results in rank order; DataError for an unknown run id."""
    cols = ", ".join(ident(c) for c in RUN_COLUMNS)
    head = first_row(con.execute(f"SELECT {cols} FROM runs WHERE run_id = ?", [run_id]))
    if head is None:
        last = first_row(con.execute("SELECT max(run_id) FROM runs"))
        hint = f"run ids go up to {last[0]}" if last and last[0] is not None else "no run is recorded yet"
        raise DataError(f"unknown run {run_id}", hint=hint)
    names = ("entity", "name", "rank", "eligible", "failed_gates", "tier", "score", "grant")
    rows = con.execute(
        'SELECT entity, name, rank, eligible, failed_gates, tier, score, "grant" FROM run_results '
        "WHERE run_id = ? ORDER BY rank IS NULL, rank, score DESC NULLS LAST, entity",
        [run_id],
    ).fetchall()
    return dict(zip(RUN_COLUMNS, head, strict=True)), [dict(zip(names, r, strict=True)) for r in rows]
