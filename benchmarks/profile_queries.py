"""Profile the merchant metric query: the engine's compiled SQL against the hand-written reference SQL.

On a database loaded by `chuanliu load` (opened read-only), in one process: times each query (fetching
the result as an Arrow table) `--repeat` times, interleaved, then runs EXPLAIN ANALYZE of each and writes,
into OUTDIR, the SQL, the query plans (text), and a summary of the most expensive operators of each (JSON
profile: operator timings are summed over threads). Prints everything as one JSON line. (Session 1's
A/B of a proposed compiler change lived here; the compiler has since taken a better shape, see RESULTS.md.)

    python benchmarks/profile_queries.py --db chuanliu.duckdb --month 2023-05 --out profile/
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import reference_merchant as ref


def engine_sql(month: str, scorecard: str = "merchant") -> str:
    """The SQL the engine runs for the default ruleset's scorecard (as `chuanliu rules sql` prints it)."""
    from chuanliu_cli.periods import parse_period
    from chuanliu_cli.rules.compiler import compile_scorecard
    from chuanliu_cli.rules.parser import default_ruleset_path, load_ruleset

    ruleset = load_ruleset(default_ruleset_path())
    return compile_scorecard(ruleset, scorecard, parse_period(month, ruleset.period)).sql


def _operators(node: dict[str, Any], depth: int, out: list[dict[str, Any]]) -> None:
    out.append(
        {
            "operator": node.get("name"),
            "seconds": round(float(node.get("timing") or 0.0), 3),
            "rows": node.get("intermediate_rows"),
            "depth": depth,
            "info": json.dumps(node.get("extra_info", {}), ensure_ascii=False)[:300],
        }
    )
    for child in node.get("children", []):
        _operators(child, depth + 1, out)


def explain(con: Any, sql: str, params: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """The EXPLAIN ANALYZE plan as text, and a summary of the JSON profile."""
    text = "\n".join(r[1] for r in con.execute("EXPLAIN ANALYZE " + sql, params).fetchall())
    doc = json.loads(con.execute("EXPLAIN (ANALYZE, FORMAT json) " + sql, params).fetchall()[0][1])
    ops: list[dict[str, Any]] = []
    for node in doc.get("operator", []):
        _operators(node, 0, ops)
    query, system = doc.get("query", {}), doc.get("system", {})
    summary = {
        "wall_seconds": round(query.get("total_time", 0.0), 3),
        "cpu_seconds": round(query.get("cpu_time", 0.0), 3),
        "rows_scanned": query.get("total_rows_scanned"),
        "intermediate_rows": query.get("total_intermediate_rows"),
        "peak_buffer_mb": round(system.get("peak_buffer_memory", 0) / 2**20),
        "spilled_mb": round(system.get("total_bytes_spilled", 0) / 2**20),
        "top_operators": sorted(ops, key=lambda o: -o["seconds"])[:8],
    }
    return text, summary


def main(argv: list[str] | None = None) -> int:
    import duckdb

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--month", default="2023-05")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True, help="directory for the plans and the summary")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    compiled = engine_sql(args.month)
    reference = ref.merchant_sql()
    params = ref.month_parameters(args.month)
    con = duckdb.connect(str(args.db), read_only=True)
    con.execute("set enable_progress_bar = false")
    con.execute(ref.MACROS)
    queries = {
        "engine_metric_sql": (compiled, None),
        "reference_sql": (reference, params),
    }
    times: dict[str, list[float]] = {name: [] for name in queries}
    for _ in range(args.repeat):
        for name, (sql, p) in queries.items():
            t0 = time.perf_counter()
            con.sql(sql, params=p).to_arrow_table()
            times[name].append(time.perf_counter() - t0)
    report: dict[str, Any] = {}  # (the results are compared per shop by run.py's equivalence check)
    for name, (sql, p) in queries.items():
        plan, summary = explain(con, sql, p)
        (args.out / f"{name}.sql").write_text(sql + "\n")
        (args.out / f"{name}.explain_analyze.txt").write_text(plan + "\n")
        ts = times[name]
        report[name] = {
            "seconds": [round(t, 3) for t in ts],
            "min": round(min(ts), 3),
            "median": round(statistics.median(ts), 3),
            "explain_analyze": summary,
        }
    con.close()
    (args.out / "queries.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
