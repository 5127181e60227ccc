"""Build a chuanliu database from the Parquet files of `chuanliu sample` in one set-based statement per table.

For scale runs (100M orders) where `chuanliu load` is impractical on a small machine (see RESULTS.md), and
as a measured prototype of a faster Parquet load path. It creates the database with chuanliu's own schema
(store.open_database), and converts each file with chuanliu's own conversion SQL (loading.convert: the same
parsing, derived columns and validation), but reads the file with DuckDB's `read_parquet` inside that one
statement and appends the valid rows with one INSERT: no Python batches, no staging copies, no upsert.
It assumes what `chuanliu sample` guarantees: canonical headers, unique keys, an empty target database (the
primary key would reject a duplicate). Rejected rows are counted, not stored; `loads` is not written.

    python benchmarks/build_db.py DATA_DIR DB [--memory-limit 4GB]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def build(data_dir: Path, db_path: Path, memory_limit: str | None) -> dict[str, dict[str, float]]:
    import pyarrow.parquet as pq

    from chuanliu_cli.ingest.canonical import install_macros
    from chuanliu_cli.ingest.conversion import conversion_sql
    from chuanliu_cli.ingest.loader import DEFAULT_TIMEZONE
    from chuanliu_cli.ingest.mapping import default_mapping
    from chuanliu_cli.schema import TABLES
    from chuanliu_cli.sqltext import ident, literal
    from chuanliu_cli.store.database import open_database

    mapping = default_mapping()
    report: dict[str, dict[str, float]] = {}
    with open_database(str(db_path), "write", 60.0, memory_limit) as db:
        con = db.con
        con.execute("SET enable_progress_bar = false")
        install_macros(con, DEFAULT_TIMEZONE)
        for name, table in TABLES.items():
            path = data_dir / f"{name}.parquet"
            if not path.exists():
                continue
            t0 = time.perf_counter()
            tm = mapping.for_table(name)
            source = f"read_parquet({literal(str(path))}, file_row_number = true)"
            con.execute(
                "CREATE OR REPLACE TEMP VIEW batch AS SELECT *, file_row_number + 1 AS __line, "
                f"CAST(NULL AS VARCHAR) AS __shape FROM {source}"
            )
            types = {r[0]: str(r[1]) for r in con.execute("DESCRIBE SELECT * FROM batch").fetchall()}
            present = {c: types[c] for c in table.names if c in types}
            sql, columns = conversion_sql(tm, present, DEFAULT_TIMEZONE, source="batch")
            cols = ", ".join(ident(c) for c in columns)
            file_rows = pq.ParquetFile(path).metadata.num_rows
            con.execute("BEGIN TRANSACTION")
            con.execute(f"INSERT INTO {ident(name)} SELECT {cols} FROM ({sql}) WHERE __reason IS NULL")
            t1 = time.perf_counter()
            con.execute("COMMIT")
            t2 = time.perf_counter()
            rows = con.execute(f"SELECT count(*) FROM {ident(name)}").fetchall()[0][0]
            report[name] = {
                "rows": rows,
                "rejected": file_rows - rows,
                "insert_s": round(t1 - t0, 2),
                "commit_s": round(t2 - t1, 2),
                "seconds": round(t2 - t0, 2),
                "rows_per_s": round(rows / (t2 - t0)),
            }
            print(f"{name}: {json.dumps(report[name])}", file=sys.stderr, flush=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("data", type=Path, help="directory of the sample's Parquet files")
    parser.add_argument("db", type=Path, help="database file to create (must not exist)")
    parser.add_argument("--memory-limit", help="DuckDB memory limit, e.g. 4GB")
    args = parser.parse_args(argv)
    if args.db.exists():
        parser.error(f"{args.db} exists")
    t0 = time.perf_counter()
    report = build(args.data, args.db, args.memory_limit)
    print(json.dumps({"tables": report, "seconds": round(time.perf_counter() - t0, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
