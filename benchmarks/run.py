"""The speed benchmark of SPEC §7: chuanliu against hand-written DuckDB SQL, Polars and pandas, in one run.

    python benchmarks/run.py --orders 10000000 --merchants 2500 --repeat 3 --out benchmarks/data
    python benchmarks/run.py --smoke        # 100k orders, 1 repetition, asserts the results agree (CI)

Steps (each timed command runs in its own subprocess; wall time, CPU time and peak RSS via GNU time):
1. data: `chuanliu sample --format parquet` (and `--format csv`), generated once per parameters and
   cached under OUT/orders<N>-merchants<M>-seed<S>/{parquet,csv}/;
2. `chuanliu load --dir` of the Parquet files into a fresh database (rows/s; `--build direct` uses
   build_db.py instead, for 100M-order runs), and `chuanliu load orders` of the CSV orders file;
3. `chuanliu --help` start-up (10 runs; 3 with --smoke);
4. on the loaded database, round-robin for --repeat repetitions: `chuanliu eligible --month M --format csv
   -o /dev/null --no-record` (merchant, then promoter; with --memory-limit also merchant under that limit;
   with --smoke `--all -o FILE`, the files the check reads); reference_merchant.py's hand-written SQL on
   the same database (merchant, promoter); polars_merchant.py and pandas_merchant.py on the Parquet files;
5. equivalence: the metrics of the engine (`eligible --all --format csv`), the reference SQL, Polars and
   pandas agree per shop within a relative 1e-9, and the engine's scores, eligibility, failed gates and
   tiers agree with the reference's (merchant and promoter);
6. with --profile: profile_queries.py (the engine's compiled merchant SQL and the reference SQL, timed in
   one process, with EXPLAIN ANALYZE), a cProfile and a py-spy profile of `chuanliu eligible`, under
   OUT/work/<data>/profile/.

`--reuse-db` scores the database of an earlier run with the same parameters (no load is timed); `--skip`
leaves steps out. Prints a table and writes benchmarks/results-<date>.json (with --smoke:
OUT/results-smoke.json). Exits 1 if a command fails or the results disagree.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PY = sys.executable

#: Relative tolerance of the equivalence check (absolute for values below 1).
TOLERANCE = 1e-9
STEPS = ("csv", "help", "engine", "reference", "polars", "pandas", "check")
GNU_TIME = "/usr/bin/time" if Path("/usr/bin/time").exists() else None


# --------------------------------------------------------------------------------------------------
# Running and measuring commands


@dataclass
class Sample:
    seconds: float  # wall clock
    peak_rss_mb: float
    cpu_seconds: float  # user + system: less sensitive than wall time to other processes on the machine
    load_avg: float  # 1-minute load average when the command ended


@dataclass
class Measure:
    """Repeated runs of one command."""

    name: str
    command: list[str]
    samples: list[Sample] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def min(self) -> float:
        return min(s.seconds for s in self.samples)

    @property
    def median(self) -> float:
        return statistics.median(s.seconds for s in self.samples)

    @property
    def cpu_median(self) -> float:
        return statistics.median(s.cpu_seconds for s in self.samples)

    @property
    def peak_rss_mb(self) -> float:
        return max(s.peak_rss_mb for s in self.samples)

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "command": " ".join(self.command),
            "seconds": [round(s.seconds, 3) for s in self.samples],
            "min": round(self.min, 3),
            "median": round(self.median, 3),
            "cpu_seconds": [round(s.cpu_seconds, 2) for s in self.samples],
            "cpu_median": round(self.cpu_median, 2),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "load_avg_1min": [round(s.load_avg, 2) for s in self.samples],
            **self.extra,
        }


class CommandFailed(RuntimeError):
    pass


def chuanliu_command() -> list[str]:
    """The `chuanliu` console script of this interpreter's environment (else `python -m chuanliu_cli`)."""
    script = Path(PY).with_name("chuanliu")
    return [str(script)] if script.exists() else [PY, "-m", "chuanliu_cli"]


#: What the bundled ruleset adds for the integrity flags (SPEC §11). The references (hand-written SQL,
#: Polars, pandas) compute SPEC §5's metrics without the flags, so the engine is compared with them on the
#: bundled ruleset without these; the flags' cost is measured apart (`integrity_cost`).
INTEGRITY_TEXT = (
    " and not brushing and not self_purchase",
    " and not idle",
    "        where: genuine_review\n",
    "  genuine_review: not suspicious\n",
)


def without_integrity(text: str) -> str:
    """The bundled ruleset's text with its integrity exclusions taken out (a ValueError when one is no
    longer there, or when a flag is still read: the benchmark must not compare different metrics)."""
    for part in INTEGRITY_TEXT:
        if part not in text:
            raise ValueError(f"the bundled ruleset no longer holds {part!r}: update benchmarks/run.py")
        text = text.replace(part, "")
    for flag in ("brushing", "self_purchase", "idle", "suspicious"):
        if f"not {flag}" in text:
            raise ValueError(f"the ruleset still excludes {flag} rows: update benchmarks/run.py")
    return text


def write_plain_ruleset(path: Path) -> Path:
    """Write the bundled ruleset without its integrity exclusions to `path` (the ruleset every comparison
    with a hand-written reference scores with: the references compute no flags); returns `path`."""
    from chuanliu_cli.rules.files import default_ruleset_path

    path.write_text(without_integrity(default_ruleset_path().read_text(encoding="utf-8")), encoding="utf-8")
    return path


def run_measured(command: list[str]) -> Sample:
    """Run `command` to completion (stdout discarded); its wall time, CPU time and peak RSS.

    Peak RSS and CPU come from GNU time when it is installed: the ru_maxrss of a child as this process
    sees it would start at this process's own RSS, which Linux carries over exec. Without GNU time it
    falls back to wait4's figures (an over-estimate for small commands).
    """
    stats_file = None
    full = command
    if GNU_TIME:
        fd, name = tempfile.mkstemp(prefix="bench-time-", suffix=".txt")
        os.close(fd)
        stats_file = Path(name)
        full = [GNU_TIME, "-f", "%M %U %S", "-o", str(stats_file), *command]
    env = {**os.environ, "NO_COLOR": "1"}
    # as a user's install runs: Python keeps the compiled modules (a machine with PYTHONDONTWRITEBYTECODE
    # set and no compiled files yet compiles every module chuanliu imports in every process: 0.09 s of
    # `eligible --data sample_data`, measured)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen(full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=REPO)
        assert proc.stderr is not None
        err = proc.stderr.read()  # read before reaping, so that the child never blocks on a full pipe
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        rss_kb, cpu = float(usage.ru_maxrss), usage.ru_utime + usage.ru_stime
        if stats_file is not None:
            with contextlib.suppress(ValueError):
                rss, user, system = stats_file.read_text().split()[-3:]
                rss_kb, cpu = float(rss), float(user) + float(system)
    finally:
        if stats_file is not None:
            stats_file.unlink(missing_ok=True)
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-6:]
        raise CommandFailed(f"exit {proc.returncode}: {' '.join(command)}\n  " + "\n  ".join(tail))
    return Sample(seconds, rss_kb / 1024, cpu, os.getloadavg()[0])


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# Data and databases


def dataset(out: Path, orders: int, merchants: int, seed: int, fmt: str, timings: dict[str, float]) -> Path:
    """The directory of a generated dataset, generating it unless a complete one is cached."""
    directory = out / f"orders{orders}-merchants{merchants}-seed{seed}" / fmt
    done = directory / ".done"
    if done.exists():
        return directory
    if directory.exists():
        shutil.rmtree(directory)
    log(f"generating {fmt}: {orders:,} orders, {merchants:,} merchants -> {directory}")
    command = [*chuanliu_command(), "-q", "sample", str(directory), "--merchants", str(merchants)]
    command += ["--orders", str(orders), "--seed", str(seed), "--format", fmt]
    timings[f"sample_{fmt}"] = round(run_measured(command).seconds, 1)
    done.write_text(json.dumps({"orders": orders, "merchants": merchants, "seed": seed}) + "\n")
    return directory


def row_counts(parquet_dir: Path) -> dict[str, int]:
    import pyarrow.parquet as pq

    return {p.stem: pq.ParquetFile(p).metadata.num_rows for p in sorted(parquet_dir.glob("*.parquet"))}


def load_stats(db: Path) -> list[dict[str, Any]]:
    """Per file loaded: table, rows read and seconds, from the database's `loads` table."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            'SELECT "table", rows_read, epoch_ms(finished_at) - epoch_ms(started_at) '
            "FROM loads ORDER BY load_id"
        ).fetchall()
    finally:
        con.close()
    return [{"table": t, "rows": int(n), "seconds": ms / 1000} for t, n, ms in rows]


def remove_db(path: Path) -> None:
    for p in (path, Path(f"{path}.wal"), Path(f"{path}.lock")):
        p.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------
# Equivalence

MERCHANT_METRICS = [
    "live_days", "live_hours", "live_weeks", "new_followers", "distribution_gmv", "distribution_promoters",
    "distribution_orders_90d", "self_live_gmv", "self_live_gmv_prev", "self_gmv_all", "self_live_growth",
    "distribution_share", "converted_buyers", "reviews_90d", "quality_avg_90d", "logistics_avg_90d",
    "service_avg_90d", "negative_rate_90d", "complaint_rate_90d", "quality_return_rate_90d",
]  # fmt: skip
MERCHANT_SCORES = ["store_experience", "diligence", "distribution", "incremental", "total"]
PROMOTER_METRICS = [
    "carried_gmv", "carried_merchants", "promoter_live_days", "reviews_90d", "quality_avg_90d",
    "service_avg_90d", "negative_rate_90d",
]  # fmt: skip
PROMOTER_SCORES = ["reputation", "contribution", "total"]
DECISIONS = {"eligible": "eligible", "tier": "tier", "failed_gates": "failed_gates"}


def read_csv(path: Path, key: str) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return {row[key]: row for row in csv.DictReader(f)}


def _number(text: str) -> float | None:
    text = text.strip().lstrip("'")
    return None if text == "" else float(text)


def _text(text: str) -> str:
    """Booleans in lower case; a list of gate ids (`a,b` or `a;b`) sorted and comma-separated."""
    text = text.strip().lstrip("'")
    text = {"True": "true", "False": "false"}.get(text, text)
    return ",".join(sorted(filter(None, text.replace(";", ",").split(","))))


def _differs(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return (a is None) != (b is None)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) != math.isnan(b)
    return abs(a - b) > TOLERANCE * max(1.0, abs(a), abs(b))


def compare(
    name: str,
    expected: dict[str, dict[str, str]],
    actual: dict[str, dict[str, str]],
    numeric: list[str],
    exact: dict[str, str] | None = None,
) -> list[str]:
    """Differences between two results keyed by entity: entities present in one only, numbers beyond the
    tolerance, and `exact` columns (expected column -> actual column) that differ."""
    problems: list[str] = []
    if expected.keys() != actual.keys():
        only_e = sorted(expected.keys() - actual.keys())[:5]
        only_a = sorted(actual.keys() - expected.keys())[:5]
        problems.append(f"{name}: entities differ: only in expected {only_e}, only in actual {only_a}")
    for k in sorted(expected.keys() & actual.keys()):
        e, a = expected[k], actual[k]
        for col in numeric:
            x, y = _number(e[col]), _number(a[col])
            if _differs(x, y):
                problems.append(f"{name}: {k}.{col}: expected {x!r}, got {y!r}")
        for ecol, acol in (exact or {}).items():
            x_text, y_text = _text(e[ecol]), _text(a[acol])
            if x_text != y_text:
                problems.append(f"{name}: {k}.{ecol}: expected {x_text!r}, got {y_text!r}")
        if len(problems) > 20:
            problems.append(f"{name}: … (stopped after 20 differences)")
            break
    return problems


def check_results(files: dict[str, Path]) -> list[str]:
    """Compare every result file present with the reference SQL's."""
    if "reference_merchant" not in files:
        return ["no reference result to compare with"]
    problems: list[str] = []
    ref = read_csv(files["reference_merchant"], "shop_id")
    if "engine_merchant_all" in files:
        engine = read_csv(files["engine_merchant_all"], "shop_id")
        label = "engine vs reference (merchant)"
        problems += compare(label, ref, engine, MERCHANT_METRICS + MERCHANT_SCORES, DECISIONS)
    for name in ("polars", "pandas"):
        if name in files:
            other = read_csv(files[name], "shop_id")
            problems += compare(f"{name} vs reference", ref, other, MERCHANT_METRICS)
    if "reference_promoter" in files and "engine_promoter_all" in files:
        ref_p = read_csv(files["reference_promoter"], "promoter_id")
        engine_p = read_csv(files["engine_promoter_all"], "promoter_id")
        label = "engine vs reference (promoter)"
        problems += compare(label, ref_p, engine_p, PROMOTER_METRICS + PROMOTER_SCORES, DECISIONS)
    return problems


# --------------------------------------------------------------------------------------------------
# Profiling (--profile)


def profile(db: Path, month: str, outdir: Path, repeat: int) -> dict[str, Any]:
    """profile_queries.py on the database, and a cProfile of `chuanliu eligible` (top 40, cumulative)."""
    import io
    import pstats

    outdir.mkdir(parents=True, exist_ok=True)
    log("profile: the two merchant queries, timed in one process, and EXPLAIN ANALYZE")
    command = [PY, str(HERE / "profile_queries.py"), "--db", str(db), "--month", month]
    command += ["--repeat", str(repeat), "--out", str(outdir)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise CommandFailed(f"profile_queries.py failed: {done.stderr.strip()[-2000:]}")
    info: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    log("profile: cProfile of chuanliu eligible")
    prof = outdir / "eligible.prof"
    command = [PY, "-m", "cProfile", "-o", str(prof), "-m", "chuanliu_cli", "-q", "--db", str(db)]
    command += ["eligible", "--month", month, "--format", "csv", "-o", os.devnull, "--no-record"]
    run_measured(command)
    buf = io.StringIO()
    pstats.Stats(str(prof), stream=buf).sort_stats("cumulative").print_stats(40)
    (outdir / "eligible_cprofile.txt").write_text(buf.getvalue())
    spy = shutil.which("py-spy") or str(Path(PY).with_name("py-spy"))
    if Path(spy).exists():
        log("profile: py-spy of chuanliu eligible")
        raw = outdir / "eligible.pyspy.txt"
        command = [spy, "record", "-r", "200", "-f", "raw", "-o", str(raw), "--", *chuanliu_command()]
        command += ["-q", "--db", str(db), "eligible", "--month", month, "--format", "csv", "-o", os.devnull]
        try:
            run_measured([*command, "--no-record"])
            info["py_spy"] = summarize_py_spy(raw)
        except CommandFailed as exc:  # e.g. no ptrace permission
            info["py_spy"] = {"error": str(exc).splitlines()[-1]}
    info["files"] = sorted(p.name for p in outdir.iterdir())
    info["directory"] = str(outdir)
    return info


#: Phases of `chuanliu eligible`, by the function whose frame marks them in a py-spy stack.
PHASES = {
    "imports": "_find_and_load",
    "ruleset load and check": "_ruleset (chuanliu_cli/cli.py",
    "metric query (DuckDB)": ".query (chuanliu_cli/scoring.py",
    "scores, gates, allocation": "finish_scorecard (",
    "data window": "data_window (",
    "output": "_emit (",
}


def summarize_py_spy(raw: Path) -> dict[str, Any]:
    """Share of the samples of a py-spy raw (collapsed stacks) file spent in each phase (inclusive)."""
    total = 0
    phases = dict.fromkeys(PHASES, 0)
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        total += int(count)
        for phase, marker in PHASES.items():
            if marker in stack:
                phases[phase] += int(count)
    shares = {k: round(v / total, 3) for k, v in phases.items()} if total else {}
    return {"samples": total, "rate_hz": 200, "share_inclusive": shares}


# --------------------------------------------------------------------------------------------------
# Report


def machine() -> dict[str, Any]:
    def first(path: str, prefix: str) -> str:
        with contextlib.suppress(OSError):
            for line in Path(path).read_text().splitlines():
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
        return ""

    mem_kb = first("/proc/meminfo", "MemTotal").split()
    versions = {}
    for module in ("duckdb", "polars", "pyarrow", "pandas", "numpy"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = None
    return {
        "cpu": first("/proc/cpuinfo", "model name"),
        "nproc": os.cpu_count(),
        "mem_gb": round(int(mem_kb[0]) / 2**20, 1) if mem_kb else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        **versions,
    }


def source_version() -> dict[str, Any]:
    """The commit benchmarked, and whether chuanliu_cli/ had uncommitted changes (read-only git)."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=REPO, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    return {
        "commit": git("rev-parse", "--short", "HEAD") or None,
        "engine_modified": bool(git("status", "--porcelain", "--", "chuanliu_cli")),
    }


def targets(measures: dict[str, Measure], orders: int, memory_limit: str | None) -> dict[str, Any]:
    """SPEC §7's targets, met or not (only those measured)."""
    out: dict[str, Any] = {}
    engine = measures.get("engine_merchant")
    for suffix in ("", "_memlimit"):
        e, r = measures.get(f"engine_merchant{suffix}"), measures.get(f"reference_merchant{suffix}")
        if e and r:
            ratio = e.median / r.median
            out[f"eligible_vs_sql{suffix}"] = {
                "target": "<= 1.5x",
                "ratio_median": round(ratio, 2),
                "ratio_min": round(e.min / r.min, 2),
                "ratio_cpu": round(e.cpu_median / r.cpu_median, 2),
                "met": ratio <= 1.5,
            }
    limited = measures.get("engine_merchant_memlimit")
    if limited and orders >= 100_000_000:
        out["100m_orders_under_memory_limit"] = {
            "target": "completes under --memory-limit 4GB",
            "memory_limit": memory_limit,
            "seconds": round(limited.median, 1),
            "peak_rss_mb": round(limited.peak_rss_mb),
            "met": memory_limit is not None and memory_limit.upper().replace(" ", "") in ("4GB", "4GIB"),
        }
    for name in ("polars", "pandas"):
        other = measures.get(name)
        if engine and other:
            out[f"eligible_vs_{name}"] = {
                "target": "faster",
                "ratio_median": round(engine.median / other.median, 2),
                "ratio_cpu": round(engine.cpu_median / other.cpu_median, 2),
                "met": engine.median < other.median,
            }
    flagged = measures.get("engine_merchant_integrity")
    if engine and flagged:  # issue #25: the flags cost at most 25 % of the scoring time
        cost = flagged.median / engine.median - 1
        out["integrity_cost"] = {"target": "<= 25 %", "cost": round(cost, 3), "met": cost <= 0.25}
    load = measures.get("load_parquet")
    if load:
        rate = load.extra["rows"] / load.median
        out["parquet_load"] = {"target": ">= 1,000,000 rows/s", "rows_per_s": round(rate), "met": rate >= 1e6}
    helped = measures.get("help")
    if helped:
        out["help_startup"] = {"target": "< 0.3 s", "min": round(helped.min, 3), "met": helped.min < 0.3}
    return out


def print_table(measures: dict[str, Measure], report: dict[str, Any]) -> None:
    mach, par, rows = report["machine"], report["parameters"], report["rows"]
    print(
        f"\nchuanliu benchmark {report['date']} · {mach['cpu']} · {mach['nproc']} CPUs · {mach['mem_gb']} GB"
    )
    print(
        f"data: {rows.get('orders', 0):,} orders, {rows.get('reviews', 0):,} reviews, "
        f"{rows.get('livestreams', 0):,} live sessions, {par['merchants']:,} merchants; month {par['month']}"
    )
    header = f"{'measure':<56} {'n':>2} {'min s':>8} {'median s':>8} {'CPU s':>7} {'peak RSS MB':>11}  note"
    print("\n" + header + "\n" + "-" * len(header))
    for m in measures.values():
        note = ""
        if "rows_per_s" in m.extra:
            note = f"{m.extra['rows_per_s']:,} rows/s"
            if "orders_file_rows_per_s" in m.extra:
                note += f" (orders file alone {m.extra['orders_file_rows_per_s']:,})"
        print(
            f"{m.name:<56} {len(m.samples):>2} {m.min:>8.3f} {m.median:>8.3f} {m.cpu_median:>7.2f} "
            f"{m.peak_rss_mb:>11.0f}  {note}"
        )
    if report["targets"]:
        print("\ntargets (SPEC §7):")
        for name, t in report["targets"].items():
            detail = ", ".join(f"{k} {v}" for k, v in t.items() if k not in ("target", "met"))
            print(f"  {'met   ' if t['met'] else 'MISSED'} {name} ({t['target']}): {detail}")
    check = report.get("check")
    if check:
        print(f"\nequivalence of {', '.join(check['compared'])}: {'OK' if check['ok'] else 'DIFFERENT'}")
    prof = report.get("profile")
    if prof:
        e, r = prof["engine_metric_sql"], prof["reference_sql"]
        print(
            f"\nquery only, one process: engine metric SQL min {e['min']:.3f} s "
            f"(EXPLAIN ANALYZE CPU {e['explain_analyze']['cpu_seconds']} s), "
            f"reference SQL min {r['min']:.3f} s "
            f"(CPU {r['explain_analyze']['cpu_seconds']} s); plans in {prof['directory']}"
        )


# --------------------------------------------------------------------------------------------------
# Main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--orders", type=int, default=10_000_000, help="orders to generate [10000000]")
    parser.add_argument("--merchants", type=int, default=2500, help="merchants to generate [2500]")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--month", default="2023-05", help="the month to score [2023-05]")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each scoring command [3]")
    parser.add_argument("--load-repeat", type=int, help="repetitions of each load [--repeat]")
    parser.add_argument("--out", type=Path, default=HERE / "data", help="data and work directory")
    parser.add_argument("--results", type=Path, help="JSON file [benchmarks/results-<date>.json]")
    parser.add_argument("--memory-limit", help="also time `eligible --memory-limit LIMIT` (e.g. 4GB)")
    parser.add_argument(
        "--memory-limit-only",
        action="store_true",
        help="time chuanliu and the hand-written SQL only under --memory-limit (100M-order runs)",
    )
    parser.add_argument("--load-memory-limit", help="pass --memory-limit LIMIT to the loads")
    parser.add_argument(
        "--build",
        choices=["load", "direct"],
        default="load",
        help="make the database with `chuanliu load` (timed) or build_db.py (for 100M-order runs) [load]",
    )
    parser.add_argument("--skip", default="", help=f"comma-separated steps to skip: {', '.join(STEPS)}")
    parser.add_argument("--profile", action="store_true", help="EXPLAIN ANALYZE and cProfile (step 6)")
    parser.add_argument(
        "--reuse-db", action="store_true", help="score the database of an earlier run (loads are not timed)"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="100k orders, 25 merchants, 1 repetition, --help x3 (for CI)"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.orders, args.merchants, args.repeat = 100_000, 25, 1
    args.load_repeat = args.load_repeat or args.repeat
    if args.memory_limit_only and not args.memory_limit:
        parser.error("--memory-limit-only needs --memory-limit")
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = args.skip - set(STEPS)
    if unknown:
        parser.error(f"unknown step(s) in --skip: {', '.join(sorted(unknown))}")
    if "pandas" not in args.skip:
        try:
            import pandas  # noqa: F401
        except ImportError:
            log("pandas is not installed: skipping the pandas measurement (pip install pandas)")
            args.skip.add("pandas")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    cl = chuanliu_command()
    out: Path = args.out.resolve()
    workdir = out / "work" / f"orders{args.orders}-merchants{args.merchants}-seed{args.seed}-{args.build}"
    db = workdir / "bench.duckdb"
    loaded = workdir / "bench.duckdb.done"
    reuse = args.reuse_db and loaded.exists()
    if args.reuse_db and not reuse:
        log("--reuse-db: no complete database from an earlier run; loading")
    for name in ("results", "profile"):
        shutil.rmtree(workdir / name, ignore_errors=True)
    if not reuse:
        shutil.rmtree(workdir, ignore_errors=True)
    results_dir = workdir / "results"
    results_dir.mkdir(parents=True)
    generation: dict[str, float] = {}
    parquet_dir = dataset(out, args.orders, args.merchants, args.seed, "parquet", generation)
    counts = row_counts(parquet_dir)
    log(f"data: {', '.join(f'{k} {v:,}' for k, v in counts.items())}")
    measures: dict[str, Measure] = {}
    extra: dict[str, Any] = {}

    # --- loads ----------------------------------------------------------------------------------------
    load_limit = ["--memory-limit", args.load_memory_limit] if args.load_memory_limit else []
    if args.build == "direct":
        m = measures["build_direct"] = Measure(
            "build_db.py (set-based, not chuanliu load)",
            [PY, str(HERE / "build_db.py"), str(parquet_dir), str(db), *load_limit],
        )
    else:
        m = measures["load_parquet"] = Measure(
            "load --dir (Parquet, all tables)",
            [*cl, "-q", "--db", str(db), "load", "--dir", str(parquet_dir), *load_limit],
        )
    per_file: list[list[dict[str, Any]]] = []
    for i in range(0 if reuse else args.load_repeat):
        loaded.unlink(missing_ok=True)
        remove_db(db)
        log(f"{m.name} {i + 1}/{args.load_repeat}")
        m.samples.append(run_measured(m.command))
        if args.build == "load":
            per_file.append(load_stats(db))
    loaded.touch()
    total_rows = sum(counts.values())
    if reuse:
        del measures[next(iter(measures))]  # not measured this time
    else:
        m.extra = {"rows": total_rows, "rows_per_s": round(total_rows / m.median)}
    if per_file:
        orders_seconds = [next(f["seconds"] for f in files if f["table"] == "orders") for files in per_file]
        m.extra["orders_file_seconds"] = [round(s, 2) for s in orders_seconds]
        m.extra["orders_file_rows_per_s"] = round(counts["orders"] / statistics.median(orders_seconds))
        m.extra["files"] = per_file[-1]
    if "csv" not in args.skip:
        csv_dir = dataset(out, args.orders, args.merchants, args.seed, "csv", generation)
        csv_db = workdir / "csv.duckdb"
        orders_csv = csv_dir / "orders.csv"
        m = measures["load_csv"] = Measure(
            "load orders (CSV)", [*cl, "-q", "--db", str(csv_db), "load", "orders", str(orders_csv)]
        )
        for i in range(args.load_repeat):
            remove_db(csv_db)
            log(f"load CSV orders {i + 1}/{args.load_repeat}")
            m.samples.append(run_measured(m.command))
        remove_db(csv_db)
        m.extra = {
            "rows": counts["orders"],
            "bytes": orders_csv.stat().st_size,
            "rows_per_s": round(counts["orders"] / m.median),
        }

    # --- start-up -------------------------------------------------------------------------------------
    if "help" not in args.skip:
        m = measures["help"] = Measure("chuanliu --help", [*cl, "--help"])
        runs = 3 if args.smoke else 10
        log(f"chuanliu --help x{runs}")
        for _ in range(runs):
            m.samples.append(run_measured(m.command))

    # --- scoring, round-robin: a busy spell of the machine hits every command alike ---------------------
    month = ["--month", args.month]
    plain_rules = write_plain_ruleset(workdir / "chuanliu-without-integrity.yaml")
    month += ["--rules", str(plain_rules)]  # every engine run below (the references compute no flags)
    flagged = [*cl, "-q", "--db", str(db), "eligible", "--month", args.month, "--format", "csv"]
    flagged += ["-o", os.devnull, "--no-record"]  # the bundled ruleset, integrity flags included
    eligible = [*cl, "-q", "--db", str(db), "eligible", *month, "--format", "csv", "-o", os.devnull]
    eligible.append("--no-record")
    files: dict[str, Path] = {}
    scoring: list[tuple[str, str, list[str]]] = []
    limited = ["--memory-limit", args.memory_limit] if args.memory_limit else []
    unlimited = not args.memory_limit_only
    if "engine" not in args.skip:
        if args.smoke:
            # Time the runs whose output the check reads (`--all` to a file): it saves two runs.
            for card in ("merchant", "promoter"):
                files[f"engine_{card}_all"] = results_dir / f"engine_{card}_all.csv"
                command = [*cl, "-q", "--db", str(db), "eligible", *month, "--scorecard", card, "--all"]
                command += ["--format", "csv", "-o", str(files[f"engine_{card}_all"]), "--no-record"]
                scoring.append((f"engine_{card}", f"chuanliu eligible --all ({card})", command))
        elif unlimited:
            scoring.append(("engine_merchant", "chuanliu eligible (merchant)", eligible))
            scoring.append(
                ("engine_promoter", "chuanliu eligible (promoter)", [*eligible, "--scorecard", "promoter"])
            )
            label = "chuanliu eligible (merchant) with the integrity flags"
            scoring.append(("engine_merchant_integrity", label, flagged))
        if args.memory_limit:
            for card in ("merchant",) if unlimited else ("merchant", "promoter"):
                label = f"chuanliu eligible ({card}) --memory-limit {args.memory_limit}"
                command = [*eligible, "--scorecard", card, *limited]
                scoring.append((f"engine_{card}_memlimit", label, command))
    if "reference" not in args.skip:
        for card in ("merchant", "promoter"):
            files[f"reference_{card}"] = results_dir / f"reference_{card}.csv"
            command = [PY, str(HERE / "reference_merchant.py"), "--db", str(db), "--month", args.month]
            command += ["--format", "csv"]
            command += ["-o", str(files[f"reference_{card}"]), "--scorecard", card]
            if unlimited:
                scoring.append((f"reference_{card}", f"hand-written DuckDB SQL ({card})", command))
            if args.memory_limit and (card == "merchant" or not unlimited):
                label = f"hand-written DuckDB SQL ({card}) --memory-limit {args.memory_limit}"
                scoring.append((f"reference_{card}_memlimit", label, [*command, *limited]))
    for name in ("polars", "pandas"):
        if name not in args.skip:
            files[name] = results_dir / f"{name}.csv"
            command = [
                PY,
                str(HERE / f"{name}_merchant.py"),
                "--data",
                str(parquet_dir),
                "--month",
                args.month,
            ]
            scoring.append((name, f"{name} merchant metrics (Parquet)", [*command, "-o", str(files[name])]))
    for key, label, command in scoring:
        measures[key] = Measure(label, command)
    failures: list[str] = []
    for i in range(args.repeat):
        for key, _, command in scoring:
            if measures[key].extra.get("failed"):
                continue
            log(f"{key} {i + 1}/{args.repeat}")
            try:
                measures[key].samples.append(run_measured(command))
            except CommandFailed as exc:  # e.g. killed for memory: record it, measure the rest
                log(f"{key} failed: {exc}")
                measures[key].extra["failed"] = str(exc)
                failures.append(f"{key}: {str(exc).splitlines()[0]}")
    for key in [k for k, m in measures.items() if not m.samples]:
        extra.setdefault("failed", {})[key] = measures.pop(key).extra["failed"]

    # --- equivalence ----------------------------------------------------------------------------------
    problems: list[str] = []
    if "check" not in args.skip:
        if "engine" not in args.skip and not args.smoke:
            for card in ("merchant", "promoter"):
                files[f"engine_{card}_all"] = results_dir / f"engine_{card}_all.csv"
                command = [*cl, "-q", "--db", str(db), "eligible", *month, "--scorecard", card, "--all"]
                command += ["--format", "csv", "-o", str(files[f"engine_{card}_all"]), "--no-record"]
                command += [] if unlimited else limited
                log(f"engine eligible --all ({card}) for the check")
                run_measured(command)
        problems = check_results({k: f for k, f in files.items() if f.exists()})
        extra["check"] = {
            "compared": sorted(files),
            "tolerance": f"relative {TOLERANCE:g} (absolute below 1)",
            "ok": not problems,
            "problems": problems,
        }

    if args.profile:
        extra["profile"] = profile(db, args.month, workdir / "profile", args.repeat)

    # --- report ---------------------------------------------------------------------------------------
    report: dict[str, Any] = {
        "date": date.today().isoformat(),
        "machine": machine(),
        "source": source_version(),
        "parameters": {
            "orders": args.orders,
            "merchants": args.merchants,
            "seed": args.seed,
            "month": args.month,
            "repeat": args.repeat,
            "load_repeat": args.load_repeat,
            "smoke": args.smoke,
            "memory_limit": args.memory_limit,
            "memory_limit_only": args.memory_limit_only,
            "load_memory_limit": args.load_memory_limit,
            "build": args.build,
            "reuse_db": reuse,
        },
        "rows": counts,
        "generation_seconds": generation,
        "measures": {k: m.summary() for k, m in measures.items()},
        "targets": targets(measures, counts.get("orders", 0), args.memory_limit),
        **extra,
        "benchmark_seconds": round(time.perf_counter() - started, 1),
    }
    default = out / "results-smoke.json" if args.smoke else HERE / f"results-{report['date']}.json"
    results = args.results or default
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print_table(measures, report)
    print(f"\nwrote {results}")
    if problems:
        print("\nRESULTS DISAGREE:", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
    if failures:
        print("\nFAILED:", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
    return 1 if problems or failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CommandFailed as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        sys.exit(1)
