"""The audit trail: each recorded `eligible`/`score` run, its inputs and its per-entity results (SPEC §6)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from chuanliu_cli import __version__
from chuanliu_cli.arrays import ArrowStream, frame_of
from chuanliu_cli.errors import DataError
from chuanliu_cli.schema import TABLES
from chuanliu_cli.sqltext import ident
from chuanliu_cli.store.database import first_row

if TYPE_CHECKING:
    import duckdb
    import polars as pl

    from chuanliu_cli.periods import Period
    from chuanliu_cli.rules.model import Ruleset
    from chuanliu_cli.scoring.pipeline import RunResult, ScorecardResult


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
    before_commit: Callable[[], None] | None = None,
) -> int:
    """Insert the run and one result row per entity of `scorecard`, with its metrics, scores and gate
    outcomes (one columnar insert); returns the run id. `before_commit` is called once every row is in,
    before the commit: if it raises, nothing is recorded."""
    res = run.scorecards[scorecard]
    sc = res.scorecard
    totals = res.totals()
    con.execute("BEGIN TRANSACTION")
    try:
        row = first_row(con.execute("SELECT nextval('run_id_seq')"))
        assert row is not None
        run_id = int(row[0])
        con.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                json.dumps(_detail(run, scorecard), ensure_ascii=False),
            ],
        )
        con.execute(
            "INSERT INTO rulesets SELECT ?, ?, ?, ? WHERE NOT EXISTS "
            "(SELECT 1 FROM rulesets WHERE sha256 = ?)",
            [run.ruleset.sha256, run.ruleset.name, run.ruleset.text, datetime.now(), run.ruleset.sha256],
        )
        table = ArrowStream(_result_table(res, run_id, scorecard))
        con.register("__run_results", table)
        try:
            con.execute("INSERT INTO run_results SELECT * FROM __run_results")
        finally:
            con.unregister("__run_results")
        if before_commit is not None:
            before_commit()
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return run_id


def _result_table(res: ScorecardResult, run_id: int, scorecard: str) -> pl.DataFrame:
    """The run_results rows of a scored scorecard as one frame, in the table's column order."""
    import polars as pl

    from chuanliu_cli.scoring.gates import gate_column

    sc = res.scorecard
    frame = res.frame
    gates = [gate_column(g) for g in sc.gates] if res.gate_outcomes is not None else []
    outcomes = res.gate_outcomes
    if gates and outcomes is not None:
        if outcomes[sc.key].equals(frame[sc.key]):  # as finish_scorecard makes them: row for row
            frame = frame.hstack(outcomes.drop(sc.key).get_columns())
        else:
            frame = frame.join(outcomes, on=sc.key, how="left", maintain_order="left")
    return frame.select(
        pl.lit(run_id, dtype=pl.Int64).alias("run_id"),
        pl.lit(scorecard).alias("scorecard"),
        pl.col(sc.key).cast(pl.Utf8).alias("entity"),
        pl.col("name").cast(pl.Utf8),
        pl.col("rank").cast(pl.Int64),
        pl.col("eligible").cast(pl.Boolean),
        pl.col("failed_gates").list.join(";").fill_null(""),
        pl.col("tier").cast(pl.Utf8),
        pl.col(sc.rank_by).cast(pl.Float64).alias("score"),
        pl.col("grant").cast(pl.Int64),
        pl.col("grant_note").cast(pl.Utf8),
        _row_lists("metric_values", [m.name for m in sc.metrics], pl.Float64),
        _row_lists("score_values", [s.name for s in sc.scores], pl.Float64),
        _row_lists("gate_values", gates, pl.Boolean),
        # the row's place in the result (rank order): reading a run back sorts on it alone
        pl.int_range(frame.height, dtype=pl.Int64).alias("position"),
    )


def _row_lists(alias: str, names: list[str], dtype: Any) -> pl.Expr:
    """Each row's values of the columns `names` as one list per row, NULLs kept and NaN kept apart from
    NULL (concat_arr: 0.05 s for 20 columns of 500k rows, where concat_list took 1.5 s)."""
    import polars as pl

    if not names:
        return pl.lit([], dtype=pl.List(dtype)).alias(alias)
    return pl.concat_arr([pl.col(n).cast(dtype) for n in names]).cast(pl.List(dtype)).alias(alias)


def _detail(run: RunResult, scorecard: str) -> dict[str, Any]:
    """What a stored run needs beside its rows to be read back as scored: the names of the stored values
    and what the data covered."""
    from chuanliu_cli.scoring.lints import data_lints

    sc = run.scorecards[scorecard].scorecard
    res = run.scorecards[scorecard]
    return {
        "key": sc.key,
        "lints": data_lints(run, scorecard),
        "ranked": int(res.frame["rank"].drop_nulls().len()),
        "size": res.frame.height,
        "totals": res.totals(),
        "metrics": [m.name for m in sc.metrics],
        "scores": [s.name for s in sc.scores],
        "gates": [g.id for g in sc.gates] if run.scorecards[scorecard].gate_outcomes is not None else [],
        "incomplete_tables": list(run.incomplete_tables),
        "data_window": {
            t: [None if lo is None else lo.isoformat(), None if hi is None else hi.isoformat()]
            for t, (lo, hi) in sorted(run.data_window.items())
        },
        "missing_history": [m.to_dict() for m in run.missing_history],
    }


def find_stored_run(
    con: duckdb.DuckDBPyConnection, ruleset: Ruleset, period: Period, scorecard: str, inputs: Inputs
) -> int | None:
    """The newest recorded run of `scorecard` in `period` that scoring now would repeat: same ruleset
    (sha256), same tool version, same data (row counts and newest load), its values stored; else None."""
    row = first_row(
        con.execute(
            "SELECT max(run_id) FROM runs WHERE period = ? AND scorecard = ? AND ruleset_sha256 = ? "
            "AND tool_version = ? AND detail IS NOT NULL AND orders_rows = ? AND reviews_rows = ? "
            "AND livestreams_rows = ? AND shops_rows = ? AND max_load_id IS NOT DISTINCT FROM ?",
            [
                period.label,
                scorecard,
                ruleset.sha256,
                __version__,
                inputs.rows["orders"],
                inputs.rows["reviews"],
                inputs.rows["livestreams"],
                inputs.rows["shops"],
                inputs.max_load_id,
            ],
        )
    )
    return None if row is None or row[0] is None else int(row[0])


def load_stored_run(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    ruleset: Ruleset,
    period: Period,
    keys: Sequence[str] | None = None,
    labelled: Sequence[str] | None = None,
    needed: Sequence[str] = (),
) -> RunResult:
    """A recorded run read back as the RunResult scoring gave (find_stored_run chose it): the frame in
    rank order, gate outcomes, data window, completeness and data lints (no Allocation object: its totals
    are in the frame). With `keys`, only those entities' rows, with the ranked count, the number of
    entities and the totals over everyone as recorded (the caller passes keys only when those rows are
    all it needs: not for an explanation whose scores rank among everyone); everyone's rows when one
    of `keys` is not among them. A shop's group_id and category are not stored but read from shops now:
    those of `labelled` only (default: `keys`, whose rows alone the caller shows; impact shows none), the
    other rows keep them NULL; every shop's when neither is given. Reading every shop's labels took 0.19 s
    of a served explanation at 500,000 shops.
    `needed` (with `keys`): the metrics and scores whose values over everyone the caller needs beside
    the rows of `keys` (an explanation whose scores rank among everyone): read as those values alone into
    the result's `population` (at 500,000 entities 0.03 s, against 0.3 s for every row in full)."""
    import polars as pl

    from chuanliu_cli.engines.duckdb import DuckDBEngine
    from chuanliu_cli.scoring.gates import gate_column
    from chuanliu_cli.scoring.pipeline import RunResult, ScorecardResult, label_columns, with_labels
    from chuanliu_cli.store.status import MissingHistory

    head = first_row(con.execute("SELECT scorecard, complete, detail FROM runs WHERE run_id = ?", [run_id]))
    assert head is not None
    name, complete, detail_text = head
    detail = json.loads(detail_text)
    sc = ruleset.scorecard(name)
    by_id = {g.id: gate_column(g) for g in sc.gates}
    some = keys is not None
    frame = frame_of(
        con.sql(
            'SELECT entity, name, rank, eligible, failed_gates, tier, "grant", grant_note, metric_values, '
            "score_values, gate_values FROM run_results WHERE run_id = ? "
            + ("AND list_contains(?, entity) " if some else "")
            + "ORDER BY position",
            params=[run_id, list(keys or ())] if some else [run_id],
        )
    )
    shown = keys if labelled is None else labelled  # the rows whose shop labels are read
    if some and not set(keys or ()) <= set(frame["entity"].to_list()):
        # a key not among the recorded rows: everyone's, so that the caller can name the nearest keys
        return load_stored_run(con, run_id, ruleset, period, labelled=shown)
    metrics, scores, gates = detail["metrics"], detail["scores"], detail["gates"]

    def spread(column: str, names: list[str]) -> list[pl.Expr]:
        return [pl.col(column).list.get(i).alias(n) for i, n in enumerate(names)]

    frame = frame.with_columns(
        *spread("metric_values", metrics),
        *spread("score_values", scores),
        *(pl.col("gate_values").list.get(i).alias(by_id[g]) for i, g in enumerate(gates)),
        pl.when(pl.col("failed_gates") == "")
        .then(pl.lit([], dtype=pl.List(pl.Utf8)))
        .otherwise(pl.col("failed_gates").str.split(";"))
        .alias("failed_gates"),
    ).rename({"entity": sc.key})
    order = [sc.key, "name", *metrics, *scores, "eligible", "failed_gates", "tier", "rank", "grant"]
    outcomes = frame.select(sc.key, *(by_id[g] for g in gates)) if gates else None
    # a shop's group_id and category are not stored: read from shops now, as scoring adds them
    shops = None
    if label_columns(sc) != ("name",):
        shops = DuckDBEngine(con).names(sc.key, None if shown is None else [str(k) for k in shown])
    rows = with_labels(sc, frame.select(*order, "grant_note"), shops)
    result = ScorecardResult(sc, period, rows, None, outcomes)
    if some:
        result = replace(
            result,
            ranked=int(detail["ranked"]),
            stored_size=int(detail["size"]),
            stored_totals=detail["totals"],
            population=_population(con, run_id, sc.key, detail, needed) if needed else None,
        )
    window = {
        t: (
            None if lo is None else datetime.fromisoformat(lo),
            None if hi is None else datetime.fromisoformat(hi),
        )
        for t, (lo, hi) in detail["data_window"].items()
    }
    missing = tuple(MissingHistory.from_dict(m) for m in detail["missing_history"])
    return RunResult(
        ruleset,
        period,
        {name: result},
        bool(complete),
        tuple(detail["incomplete_tables"]),
        window,
        missing,
        {name: tuple(detail["lints"])},
    )


def _population(
    con: duckdb.DuckDBPyConnection, run_id: int, key: str, detail: dict[str, Any], names: Sequence[str]
) -> pl.DataFrame:
    """Everyone's recorded values of the metrics and scores `names` (and the key), in rank order."""
    where = {n: ("metric_values", i) for i, n in enumerate(detail["metrics"])}
    where.update({n: ("score_values", i) for i, n in enumerate(detail["scores"])})
    wanted = list(dict.fromkeys(names))
    items = ", ".join(f"{where[n][0]}[{where[n][1] + 1}] AS {ident(n)}" for n in wanted)
    return frame_of(
        con.sql(
            f"SELECT entity AS {ident(key)}, {items} FROM run_results WHERE run_id = ? ORDER BY position",
            params=[run_id],
        )
    )


_BOM = b"\xef\xbb\xbf"


def stored_ruleset(con: duckdb.DuckDBPyConnection, sha256: str) -> Ruleset | None:
    """The ruleset a run was scored with, parsed again from the text recorded with it (the bytes are
    the text as UTF-8, with the byte-order mark the file had: the sha256 tells which); None when the run
    predates the rulesets table or the text does not give the recorded sha256 back."""
    import hashlib

    from chuanliu_cli.rules.parser import parse_ruleset_bytes

    row = first_row(con.execute("SELECT name, text FROM rulesets WHERE sha256 = ?", [sha256]))
    if row is None:
        return None
    name, text = row
    for data in (text.encode("utf-8"), _BOM + text.encode("utf-8")):
        if hashlib.sha256(data).hexdigest() == sha256:
            return parse_ruleset_bytes(data, f"<ruleset {name} {sha256[:12]} as recorded>")
    return None


#: The columns of one run's results as `runs --id` reads them, and their types (documents.ColumnType).
RUN_RESULT_TYPES: dict[str, Literal["float", "int", "bool", "str"]] = {
    "entity": "str",
    "name": "str",
    "rank": "int",
    "eligible": "bool",
    "failed_gates": "str",
    "tier": "str",
    "score": "float",
    "grant": "int",
}

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


def unknown_run(con: duckdb.DuckDBPyConnection, run_id: int) -> DataError:
    """The error for a run id the database does not hold, saying which ids it does."""
    last = first_row(con.execute("SELECT max(run_id) FROM runs"))
    hint = f"run ids go up to {last[0]}" if last and last[0] is not None else "no run is recorded yet"
    return DataError(f"unknown run {run_id}", hint=hint)


def run_results(con: duckdb.DuckDBPyConnection, run_id: int) -> tuple[dict[str, Any], pl.DataFrame]:
    """One run and its per-entity results in rank order, as a frame of RUN_RESULT_TYPES' columns (2.7M
    products: a frame, never a Python dict per entity); DataError for an unknown run id."""
    import polars as pl

    cols = ", ".join(ident(c) for c in RUN_COLUMNS)
    head = first_row(con.execute(f"SELECT {cols} FROM runs WHERE run_id = ?", [run_id]))
    if head is None:
        raise unknown_run(con, run_id)
    rows = frame_of(
        con.sql(
            f"SELECT {', '.join(ident(c) for c in RUN_RESULT_TYPES)} FROM run_results "
            f"WHERE run_id = {int(run_id)} ORDER BY rank IS NULL, rank, score DESC NULLS LAST, entity"
        )
    )
    types = {"str": pl.Utf8, "int": pl.Int64, "bool": pl.Boolean, "float": pl.Float64}
    rows = rows.select(pl.col(c).cast(types[t]) for c, t in RUN_RESULT_TYPES.items())
    return dict(zip(RUN_COLUMNS, head, strict=True)), rows


@dataclass(frozen=True)
class RecordedGrant:
    """What the latest recorded `eligible` run of a period granted for a scorecard."""

    run_id: int
    ruleset_name: str
    ruleset_sha256: str
    pool: int | None
    allocated: int | None


def latest_eligible_run(con: duckdb.DuckDBPyConnection, period: str, scorecard: str) -> RecordedGrant | None:
    """The latest recorded `eligible` run of `scorecard` in `period` (by its command: `chuanliu ...
    eligible ...` or `Session.eligible(...)`), or None. A database without a runs table has none."""
    import duckdb

    try:
        row = first_row(
            con.execute(
                "SELECT run_id, ruleset_name, ruleset_sha256, pool, allocated FROM runs "
                "WHERE period = ? AND scorecard = ? AND regexp_matches(command, '(^|[ .])eligible([ (]|$)') "
                "ORDER BY run_id DESC LIMIT 1",
                [period, scorecard],
            )
        )
    except duckdb.CatalogException:  # no runs table: not a chuanliu database
        return None
    if row is None:
        return None
    return RecordedGrant(
        int(row[0]),
        str(row[1]),
        str(row[2]),
        None if row[3] is None else int(row[3]),
        None if row[4] is None else int(row[4]),
    )


def recorded_pool(con: duckdb.DuckDBPyConnection, run_id: int) -> int | None:
    """The pool recorded with run `run_id` (None when its scorecard has no reward)."""
    row = first_row(con.execute("SELECT pool FROM runs WHERE run_id = ?", [run_id]))
    return None if row is None or row[0] is None else int(row[0])
