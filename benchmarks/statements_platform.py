"""The compiled metric statement against the hand-written one, alone, on a platform-shaped database.

`benchmarks/platform_shape.py` times whole commands; this times the two statements only, in turn in one
process on the same read-only connection (each result fetched as Arrow), so that the gap between a command
and the hand-written SQL can be split into the statement and the rest of the command (imports, the result
into polars, scoring, output, recording). The engine's statement is `metric_sql` of the bundled ruleset
without its integrity flags (the hand-written SQL computes none), as the benchmark scores it.

    python benchmarks/statements_platform.py --db benchmarks/data/platform/work/<shape>/platform.duckdb \
        --scorecard merchant --runs 3

The promoter statement reads the merchant scorecard's eligibility, which only a command registers: it is
not timed here.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import reference_platform as ref
from run import write_plain_ruleset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", type=Path, required=True, help="a database loaded by `chuanliu load`")
    parser.add_argument("--month", default="2023-05")
    parser.add_argument("--scorecard", choices=["merchant", "product"], default="merchant")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--memory-limit", default="4GB")
    args = parser.parse_args(argv)

    from chuanliu_cli.periods import parse_period
    from chuanliu_cli.rules.files import load_ruleset_cached
    from chuanliu_cli.scoring.pipeline import metric_sql

    with tempfile.TemporaryDirectory() as tmp:
        ruleset = load_ruleset_cached(write_plain_ruleset(Path(tmp) / "plain.yaml"), True)
    engine_sql = metric_sql(ruleset, args.scorecard, parse_period(args.month), "duckdb", marks=False)
    hand_sql, params = ref.STATEMENTS[args.scorecard], ref.parameters(args.scorecard, args.month)
    con, spill = ref.connect(args.db, args.memory_limit)
    times: dict[str, list[float]] = {"hand-written": [], "engine": []}
    rows: dict[str, int] = {}
    try:
        for _ in range(args.runs):
            for name, sql, bound in (("hand-written", hand_sql, params), ("engine", engine_sql, None)):
                start = time.perf_counter()
                relation = con.sql(sql, params=bound) if bound else con.sql(sql)
                assert relation is not None
                rows[name] = relation.to_arrow_table().num_rows
                times[name].append(time.perf_counter() - start)
    finally:
        con.close()
        if spill:
            import shutil

            shutil.rmtree(spill, ignore_errors=True)
    for name, values in times.items():
        print(
            f"{args.scorecard} {name:12s} rows {rows[name]:,}  median {statistics.median(values):.2f} s  "
            f"({', '.join(f'{v:.2f}' for v in values)})"
        )
    ratio = statistics.median(e / h for e, h in zip(times["engine"], times["hand-written"], strict=True))
    print(f"engine / hand-written, pair by pair: median {ratio:.2f}")
    return 0 if rows["engine"] == rows["hand-written"] else 1


if __name__ == "__main__":
    sys.exit(main())
