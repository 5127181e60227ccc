"""What recording one run costs, and what the alternatives to today's insert would cost (issue #21).

Reads the run_results rows of a recorded run from a database (read-only), then writes them again, in one
process, each way `--runs` times, into fresh database files under a temporary directory:

- `insert` today's way (store/runs.record_run): the frame registered as an Arrow stream, one INSERT into
  run_results with its compression chosen by DuckDB, committed;
- the same insert of a group of columns alone (which columns the time goes to);
- the frame written as Parquet by polars (lz4, zstd) and that file put in a BLOB column of one row (the
  "one blob per run" layout);
- the insert in a thread while the list is written as csv by polars (recording overlapped with the output).

    python benchmarks/recording_floor.py --db benchmarks/data/platform/work/<shape>/platform.duckdb \
        --run 142 --runs 3

Medians of `--runs`, wall and process CPU seconds (DuckDB and polars both use every core).
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb
import polars as pl

from chuanliu_cli.arrays import ArrowStream

GROUPS = {
    "entity": ["entity"],
    "name": ["name"],
    "value lists": ["metric_values", "score_values", "gate_values"],
    "the rest": [
        "run_id",
        "scorecard",
        "rank",
        "eligible",
        "failed_gates",
        "tier",
        "score",
        "grant",
        "grant_note",
        "position",
    ],
}


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(action: Callable[[], None]) -> tuple[float, float]:
    wall, processor = time.perf_counter(), cpu()
    action()
    return time.perf_counter() - wall, cpu() - processor


def _insert_part(
    insert: Callable[[duckdb.DuckDBPyConnection, pl.DataFrame, str], None],
    part: pl.DataFrame,
    con: duckdb.DuckDBPyConnection,
) -> None:
    insert(con, part, "part")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", type=Path, required=True, help="a database with recorded runs")
    parser.add_argument("--run", type=int, required=True, help="the run id whose rows are written again")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)

    source = duckdb.connect(str(args.db), read_only=True)
    frame = pl.DataFrame(source.sql(f"SELECT * FROM run_results WHERE run_id = {args.run} ORDER BY position"))
    ddl = source.execute("SELECT sql FROM duckdb_tables() WHERE table_name = 'run_results'").fetchall()[0][0]
    source.close()
    if frame.height == 0:
        print(f"run {args.run} has no rows in {args.db}", file=sys.stderr)
        return 2
    print(f"run {args.run}: {frame.height:,} rows, {frame.width} columns; {args.runs} runs each, medians")

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "target.duckdb")

        def fresh(table_sql: str) -> duckdb.DuckDBPyConnection:
            for leftover in (path, path + ".wal"):
                if os.path.exists(leftover):
                    os.remove(leftover)
            con = duckdb.connect(path)
            con.execute(table_sql)
            return con

        def insert(con: duckdb.DuckDBPyConnection, rows: pl.DataFrame, table: str) -> None:
            con.execute("BEGIN TRANSACTION")
            con.register("rows_in", ArrowStream(rows))
            con.execute(f"INSERT INTO {table} SELECT * FROM rows_in")
            con.unregister("rows_in")
            con.execute("COMMIT")

        results: dict[str, list[tuple[float, float, int]]] = {}

        def measure(
            name: str,
            prepare: Callable[[], duckdb.DuckDBPyConnection],
            act: Callable[[duckdb.DuckDBPyConnection], None],
        ) -> None:
            for _ in range(args.runs):
                con = prepare()
                wall, processor = timed(partial(act, con))
                con.close()
                results.setdefault(name, []).append((wall, processor, os.path.getsize(path)))

        measure("insert (today)", lambda: fresh(ddl), lambda con: insert(con, frame, "run_results"))
        for group, columns in GROUPS.items():
            part = frame.select(columns)

            def empty(part: pl.DataFrame = part) -> duckdb.DuckDBPyConnection:
                con = fresh("CREATE TABLE ignored (x INTEGER)")
                con.register("shape", ArrowStream(part.clear()))
                con.execute("CREATE TABLE part AS SELECT * FROM shape")
                con.unregister("shape")
                return con

            measure(f"insert: {group} alone", empty, partial(_insert_part, insert, part))
        codecs: tuple[Literal["lz4", "zstd"], ...] = ("lz4", "zstd")
        for codec in codecs:

            def blob(con: duckdb.DuckDBPyConnection, codec: Literal["lz4", "zstd"] = codec) -> None:
                buffer = io.BytesIO()
                frame.write_parquet(buffer, compression=codec)
                con.execute("BEGIN TRANSACTION")
                con.execute("INSERT INTO blobs VALUES (?, ?)", [args.run, buffer.getvalue()])
                con.execute("COMMIT")

            measure(
                f"parquet ({codec}) in one BLOB",
                lambda: fresh("CREATE TABLE blobs (run_id BIGINT, data BLOB)"),
                blob,
            )
        listing = frame.drop("metric_values", "score_values", "gate_values")
        csv_path = os.path.join(tmp, "list.csv")
        measure(
            "csv of the list alone",
            lambda: fresh("CREATE TABLE ignored (x INTEGER)"),
            lambda con: listing.write_csv(csv_path),
        )

        def overlapped(con: duckdb.DuckDBPyConnection) -> None:
            worker = threading.Thread(target=insert, args=(con, frame, "run_results"))
            worker.start()
            listing.write_csv(csv_path)
            worker.join()

        measure("insert in a thread beside the csv", lambda: fresh(ddl), overlapped)

    width = max(map(len, results))
    print(f"{'':{width}}  {'wall s':>7}  {'cpu s':>6}  {'file MB':>7}")
    for name, samples in results.items():
        wall = statistics.median(s[0] for s in samples)
        processor = statistics.median(s[1] for s in samples)
        size = statistics.median(s[2] for s in samples) / 2**20
        print(f"{name:{width}}  {wall:7.2f}  {processor:6.2f}  {size:7.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
