"""The least a recorded `eligible` could take on this machine, against the hand-written SQL (issue #21).

A recorded `eligible` must at least (1) compute the metrics, (2) start Python with DuckDB and polars,
(3) store the run's rows in the database (SPEC §3: one DuckDB file, `run_results`) and (4) write the list.
This measures each on a platform-shaped database and adds them up, counting everything else a command
does (scores, gates, ranks, tiers, allocation, names, formula safety, the run's summary) as free:

- `sql`: the hand-written single-scan SQL as a whole process (reference_platform.py, as
  platform_shape.py times it): (1) at the hand-written speed, Python and DuckDB started, the result
  fetched;
- `polars`: what importing polars adds to a Python process that imports DuckDB (2);
- `insert`: the rows of the scorecard's latest recorded run inserted into a fresh database file as
  store/runs.record_run does (one Arrow stream, one INSERT, committed and closed), with DuckDB's
  compression and with it forced off (the cheaper of the two is the floor) (3);
- `csv`: those rows' list columns written as csv by polars from a compact frame (4).

floor = sql + polars + insert + csv, and floor / sql is the smallest ratio any implementation could
reach here. `share if met` is the smallest share recording can have in a command that meets the 1.3×
target (insert / (1.3 × sql)): above 5 %, the two targets cannot both hold on this machine.

    python benchmarks/floors_platform.py --db benchmarks/data/platform/work/<shape>/platform.duckdb --runs 3

Medians of `--runs`; `--results FILE` writes them as JSON with the machine and commit.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import duckdb  # noqa: E402
import polars as pl  # noqa: E402
from platform_shape import machine, source_version  # noqa: E402  (a sibling script)

from chuanliu_cli.arrays import ArrowStream  # noqa: E402

PY = sys.executable
RATIO_TARGET = 1.3
SHARE_TARGET = 0.05
LIST_COLUMNS = ["entity", "name", "rank", "eligible", "failed_gates", "tier", "score", "grant", "grant_note"]


def wall(command: list[str]) -> float:
    """One run of `command` as a process, its wall seconds (its output thrown away)."""
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def median_of(runs: int, action: Any) -> float:
    return statistics.median(action() for _ in range(runs))


def latest_rows(db: Path, scorecard: str) -> pl.DataFrame:
    """The run_results rows of the scorecard's latest recorded run, in the order they were recorded."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        found = con.execute(
            "SELECT max(run_id) FROM runs WHERE scorecard = ? AND detail IS NOT NULL", [scorecard]
        ).fetchall()
        if not found or found[0][0] is None:
            raise SystemExit(f"{db} has no recorded {scorecard} run: record one with `chuanliu eligible`")
        run_id = int(found[0][0])
        return pl.DataFrame(con.sql(f"SELECT * FROM run_results WHERE run_id = {run_id} ORDER BY position"))
    finally:
        con.close()


def table_ddl(db: Path) -> str:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return str(
            con.execute("SELECT sql FROM duckdb_tables() WHERE table_name = 'run_results'").fetchall()[0][0]
        )
    finally:
        con.close()


def insert_seconds(rows: pl.DataFrame, ddl: str, directory: str, compression: str | None) -> float:
    """One insert of `rows` into a fresh database file, committed and closed, as record_run inserts."""
    path = os.path.join(directory, "floor.duckdb")
    for leftover in (path, path + ".wal"):
        if os.path.exists(leftover):
            os.remove(leftover)
    con = duckdb.connect(path)
    con.execute(ddl)
    if compression is not None:
        con.execute(f"SET force_compression = '{compression}'")
    start = time.perf_counter()
    con.execute("BEGIN TRANSACTION")
    con.register("__rows", ArrowStream(rows))
    con.execute("INSERT INTO run_results SELECT * FROM __rows")
    con.unregister("__rows")
    con.execute("COMMIT")
    con.close()
    return time.perf_counter() - start


def csv_seconds(rows: pl.DataFrame, directory: str) -> float:
    listing = rows.select(LIST_COLUMNS).rechunk()
    start = time.perf_counter()
    listing.write_csv(os.path.join(directory, "list.csv"))
    return time.perf_counter() - start


def floors(db: Path, scorecard: str, month: str, memory_limit: str | None, runs: int) -> dict[str, Any]:
    reference = [PY, str(HERE / "reference_platform.py"), "--db", str(db), "--month", month]
    reference += ["--scorecard", scorecard, *(["--memory-limit", memory_limit] if memory_limit else [])]
    sql = median_of(runs, lambda: wall(reference))
    with_polars = median_of(runs, lambda: wall([PY, "-c", "import duckdb, polars"]))
    without = median_of(runs, lambda: wall([PY, "-c", "import duckdb"]))
    rows = latest_rows(db, scorecard)
    ddl = table_ddl(db)
    with tempfile.TemporaryDirectory(prefix="floors-") as tmp:
        inserts = {
            "compressed": median_of(runs, lambda: insert_seconds(rows, ddl, tmp, None)),
            "uncompressed": median_of(runs, lambda: insert_seconds(rows, ddl, tmp, "uncompressed")),
        }
        csv = median_of(runs, lambda: csv_seconds(rows, tmp))
    insert = min(inserts.values())
    polars_import = max(0.0, with_polars - without)
    floor = sql + polars_import + insert + csv
    return {
        "scorecard": scorecard,
        "entities": rows.height,
        "sql_s": round(sql, 3),
        "polars_import_s": round(polars_import, 3),
        "insert_s": {k: round(v, 3) for k, v in inserts.items()},
        "csv_s": round(csv, 3),
        "floor_s": round(floor, 3),
        "floor_ratio": round(floor / sql, 3),
        "recording_share_if_met": round(insert / (RATIO_TARGET * sql), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--db", type=Path, required=True, help="a platform-shaped database with recorded runs"
    )
    parser.add_argument("--month", default="2023-05")
    parser.add_argument("--scorecard", action="append", help="merchant, promoter, product [all three]")
    parser.add_argument("--memory-limit", default="4GB", help="as platform_shape.py ('none': no limit)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--results", type=Path, help="write the figures as JSON")
    args = parser.parse_args(argv)
    limit = None if args.memory_limit == "none" else args.memory_limit
    cards = args.scorecard or ["merchant", "promoter", "product"]
    found = [floors(args.db, card, args.month, limit, args.runs) for card in cards]
    print(
        f"{'':9} {'entities':>9} {'sql s':>6} {'polars':>6} {'insert':>13} {'csv':>5} {'floor':>6} "
        f"{'ratio':>6} {'share if met':>12}"
    )
    for f in found:
        ins = f"{f['insert_s']['compressed']:.2f}/{f['insert_s']['uncompressed']:.2f}"
        print(
            f"{f['scorecard']:9} {f['entities']:>9,} {f['sql_s']:6.2f} {f['polars_import_s']:6.2f} "
            f"{ins:>13} {f['csv_s']:5.2f} {f['floor_s']:6.2f} {f['floor_ratio']:5.2f}× "
            f"{f['recording_share_if_met']:11.1%}"
        )
    if args.results:
        report = {
            "date": date.today().isoformat(),
            "machine": machine(),
            "source": source_version("worktree"),
            "runs": args.runs,
            "memory_limit": limit,
            "targets": {"ratio": RATIO_TARGET, "recording_share": SHARE_TARGET},
            "floors": found,
        }
        args.results.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
