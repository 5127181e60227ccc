"""The platform-shape benchmark (issue #21): chuanliu at platform scale next to hand-written single-scan SQL.

    python benchmarks/platform_shape.py                          # the platform shape (below)
    python benchmarks/platform_shape.py --merchants 5000 --orders 200000 --runs 3   # a small shape
    python benchmarks/platform_shape.py --source HEAD            # a commit's chuanliu_cli, not the work tree

The platform shape is 500,000 shops and 20,000,000 orders over 3 months (2023-03..2023-05); the reviews,
live sessions, promoters and products are what `chuanliu sample` draws for it. Steps, every command a
subprocess timed from outside (wall time; CPU = user + system and peak RSS from GNU time), every
chuanliu command and the hand-written SQL under `--memory-limit` (4GB unless `--memory-limit none`):
1. data: `chuanliu sample --format parquet` (timed; cached under OUT/ once complete);
2. `chuanliu load --dir` into a fresh database (timed; `--reuse-db` keeps an earlier run's database);
3. `chuanliu --help`, and `chuanliu eligible --data sample_data` as a whole process;
4. per scorecard (merchant, promoter, product): `chuanliu eligible` (recorded, the default) and
   reference_platform.py's statement on the same database, in turn (A B A B ...), the ratio taken pair by
   pair; then `eligible --no-record`;
5. `report --month`, `explain ID` and `score --id ID` of the top-ranked merchant;
6. the check: every metric of every entity of the three scorecards, reference against `chuanliu score`,
   to 1e-9 relative (`--no-check` skips it).
Writes the figures (min, median, max of each) with the machine, date and commit as JSON
(benchmarks/results-<date>-platform.json for the platform shape, else OUT/results-<date>-<shape>.json)
and prints a markdown table. Exit 1 if a command failed or the check found a difference.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
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
sys.path.insert(0, str(HERE))

import reference_platform  # noqa: E402  (a sibling script, not a package)
from run import write_plain_ruleset  # noqa: E402

PLATFORM = {"merchants": 500_000, "orders": 20_000_000, "months": 3}
SCORECARDS = reference_platform.SCORECARDS
GNU_TIME = "/usr/bin/time"
#: Targets of issue #21.
RATIO_TARGET = 1.3
PRODUCT_RSS_TARGET_MB = 3e9 / 2**20  # 3 GB, DuckDB's unit (10^9 bytes), in MiB


# --------------------------------------------------------------------------------------------------
# Running and measuring


@dataclass
class Sample:
    seconds: float  # wall clock
    cpu_seconds: float  # user + system
    peak_rss_mb: float


@dataclass
class Measure:
    """Runs of one command."""

    name: str
    command: list[str]
    samples: list[Sample] = field(default_factory=list)
    failed: str | None = None

    def figures(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "command": " ".join(self.command),
            "runs": len(self.samples),
        }
        if self.samples:
            out["seconds"] = spread([s.seconds for s in self.samples], 3)
            out["cpu_seconds"] = spread([s.cpu_seconds for s in self.samples], 2)
            out["peak_rss_mb"] = spread([s.peak_rss_mb for s in self.samples], 0)
        if self.failed:
            out["failed"] = self.failed
        return out


class CommandFailed(RuntimeError):
    pass


def spread(values: list[float], digits: int) -> dict[str, float]:
    """min, median and max (quote the median; min and max show how noisy the machine was)."""
    return {
        "min": round(min(values), digits),
        "median": round(statistics.median(values), digits),
        "max": round(max(values), digits),
    }


def run_measured(command: list[str], cwd: Path) -> Sample:
    """Run `command` to completion, its output discarded; wall time, and CPU and peak RSS from GNU time."""
    fd, name = tempfile.mkstemp(prefix="platform-time-", suffix=".txt")
    os.close(fd)
    stats = Path(name)
    env = {**os.environ, "NO_COLOR": "1"}
    # as a user's install runs: Python keeps the compiled modules (a machine with PYTHONDONTWRITEBYTECODE
    # set and no compiled files yet compiles every module chuanliu imports in every process: 0.09 s of
    # `eligible --data sample_data`, measured)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        t0 = time.perf_counter()
        done = subprocess.run(
            [GNU_TIME, "-f", "%M %U %S", "-o", str(stats), *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
        )
        seconds = time.perf_counter() - t0
        text = stats.read_text().split()
    finally:
        stats.unlink(missing_ok=True)
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-6:]
        raise CommandFailed(f"exit {done.returncode}: {' '.join(command)}\n  " + "\n  ".join(tail))
    rss_kb, user, system = (float(x) for x in text[-3:])
    return Sample(seconds, user + system, rss_kb / 1024)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Bench:
    """The measures of one benchmark run, and how to run chuanliu (work tree or a snapshot)."""

    def __init__(self, chuanliu: list[str], cwd: Path) -> None:
        self.chuanliu = chuanliu
        self.cwd = cwd
        self.measures: dict[str, Measure] = {}
        self.pairs: dict[str, dict[str, Any]] = {}

    def time(self, key: str, name: str, command: list[str], runs: int) -> Measure:
        """`runs` runs of one command; a failure is recorded and ends that measure."""
        m = self.measures[key] = Measure(name, command)
        for i in range(runs):
            log(f"{name} {i + 1}/{runs}")
            try:
                m.samples.append(run_measured(command, self.cwd))
            except CommandFailed as exc:
                log(f"FAILED {exc}")
                m.failed = str(exc)
                break
        return m

    def pair(self, key: str, a: tuple[str, list[str]], b: tuple[str, list[str]], runs: int) -> None:
        """A and B in turn, A B A B ...; the ratio A/B of wall and of CPU time pair by pair."""
        ma = self.measures[f"{key}_a"] = Measure(*a)
        mb = self.measures[f"{key}_b"] = Measure(*b)
        wall: list[float] = []
        cpu: list[float] = []
        for i in range(runs):
            try:
                log(f"{ma.name} {i + 1}/{runs}")
                sa = run_measured(ma.command, self.cwd)
                ma.samples.append(sa)
                log(f"{mb.name} {i + 1}/{runs}")
                sb = run_measured(mb.command, self.cwd)
                mb.samples.append(sb)
            except CommandFailed as exc:
                log(f"FAILED {exc}")
                (mb if len(ma.samples) > len(mb.samples) else ma).failed = str(exc)
                break
            wall.append(sa.seconds / sb.seconds)
            cpu.append(sa.cpu_seconds / sb.cpu_seconds)
        if wall:
            self.pairs[key] = {"a": ma.name, "b": mb.name, "wall": spread(wall, 2), "cpu": spread(cpu, 2)}

    def failures(self) -> list[str]:
        return [f"{m.name}: {m.failed.splitlines()[0]}" for m in self.measures.values() if m.failed]


# --------------------------------------------------------------------------------------------------
# Source, data and database


def snapshot(rev: str, out: Path) -> tuple[list[str], Path]:
    """chuanliu_cli/ of commit `rev` exported under OUT (git archive; the work tree is not touched), and
    the command that runs it: `python -m chuanliu_cli` from that directory, which comes first on sys.path."""
    sha = subprocess.run(
        ["git", "rev-parse", "--short", rev], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout.strip()
    target = out / "src" / sha
    if not (target / "chuanliu_cli" / "__main__.py").exists():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", sha, "chuanliu_cli"], capture_output=True, cwd=REPO, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return [PY, "-m", "chuanliu_cli"], target


def source_version(source: str) -> dict[str, Any]:
    """The commit measured and, for the work tree, whether chuanliu_cli/ had uncommitted changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=REPO)
        return done.stdout.strip() if done.returncode == 0 else ""

    if source != "worktree":
        return {"source": source, "commit": git("rev-parse", "--short", source), "engine_modified": False}
    return {
        "source": "worktree",
        "commit": git("rev-parse", "--short", "HEAD"),
        "engine_modified": bool(git("status", "--porcelain", "--", "chuanliu_cli")),
    }


def machine() -> dict[str, Any]:
    def first(path: str, prefix: str) -> str:
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return ""

    import platform

    mem_kb = first("/proc/meminfo", "MemTotal").split()
    versions = {}
    for module in ("duckdb", "polars", "pyarrow", "numpy"):
        versions[module] = __import__(module).__version__
    return {
        "cpu": first("/proc/cpuinfo", "model name"),
        "nproc": os.cpu_count(),
        "mem_gb": round(int(mem_kb[0]) / 2**20, 1) if mem_kb else None,
        "load_avg_at_start": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "platform": platform.platform(),
        **versions,
    }


def shape_name(args: argparse.Namespace) -> str:
    return f"m{args.merchants}-o{args.orders}-k{args.months}-s{args.seed}"


def dataset(bench: Bench, args: argparse.Namespace, out: Path) -> tuple[Path, dict[str, Any]]:
    """The Parquet exports of the shape, generated unless a complete set is cached; the generation's time
    (the cached figure when it was generated by an earlier run)."""
    directory = out / shape_name(args) / "parquet"
    done = directory / ".done"
    if done.exists():
        info: dict[str, Any] = json.loads(done.read_text())
        return directory, {**info, "cached": True}
    shutil.rmtree(directory, ignore_errors=True)
    command = [*bench.chuanliu, "-q", "sample", str(directory), "--merchants", str(args.merchants)]
    command += ["--orders", str(args.orders), "--months", str(args.months), "--seed", str(args.seed)]
    m = bench.time(
        "sample", "sample --format parquet (generate the data)", [*command, "--format", "parquet"], 1
    )
    if m.failed:
        raise CommandFailed(m.failed)
    info = {"command": " ".join(m.command), **m.figures()["seconds"], "peak_rss_mb": m.samples[0].peak_rss_mb}
    done.write_text(json.dumps(info) + "\n")
    return directory, info


def counts(db: Path) -> dict[str, int]:
    """Rows per table and distinct shops, promoters and products of the orders (read-only)."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        names = ("orders", "reviews", "livestreams", "shops", "promoters", "products")
        row = con.execute(
            "select (select count(*) from orders), (select count(*) from reviews), "
            "(select count(*) from livestreams), count(distinct shop_id), count(distinct promoter_id), "
            "count(distinct item_id) from orders"
        ).fetchall()[0]
        return dict(zip(names, (int(x) for x in row), strict=True))
    finally:
        con.close()


def top_entity(path: Path) -> str | None:
    """The key of the first row of an `eligible` CSV (rank 1), or None when nobody is eligible."""
    with path.open(encoding="utf-8", newline="") as f:
        row = next(csv.DictReader(f), None)
    return None if row is None else row["shop_id"].lstrip("'")


# --------------------------------------------------------------------------------------------------
# Report


def targets(bench: Bench, memory_limit: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for card in SCORECARDS:
        pair = bench.pairs.get(f"eligible_{card}")
        if pair:
            ratio = pair["wall"]["median"]
            out[f"eligible_vs_sql_{card}"] = {
                "target": f"<= {RATIO_TARGET}x",
                "ratio_wall_median": ratio,
                "ratio_cpu_median": pair["cpu"]["median"],
                "met": ratio <= RATIO_TARGET,
            }
    product = [m for k, m in bench.measures.items() if k.startswith("eligible_product") and m.samples]
    if product:
        peak = max(s.peak_rss_mb for m in product for s in m.samples)
        out["product_peak_rss"] = {
            "target": "<= 3 GB",
            "peak_rss_mb": round(peak),
            "met": peak <= PRODUCT_RSS_TARGET_MB,
        }
    for card in SCORECARDS:
        pair = bench.pairs.get(f"integrity_{card}")
        if pair:  # issue #25: the flags cost at most 25 % of the scoring time
            cost = pair["wall"]["median"] - 1
            out[f"integrity_cost_{card}"] = {
                "target": "<= 25 %",
                "cost_wall": round(cost, 3),
                "cost_cpu": round(pair["cpu"]["median"] - 1, 3),
                "met": cost <= 0.25,
            }
    out["under_memory_limit"] = {
        "target": "everything completes under --memory-limit 4GB",
        "memory_limit": memory_limit,
        "failed": [m.name for m in bench.measures.values() if m.failed],
        "met": memory_limit is not None
        and memory_limit.upper().replace(" ", "") == "4GB"
        and not bench.failures(),
    }
    return out


def markdown(report: dict[str, Any], bench: Bench) -> str:
    """The figures as markdown: a line on the data, one row per measure, the pairs and the targets."""
    mach, rows, par = report["machine"], report["rows"], report["parameters"]
    lines = [
        f"chuanliu platform benchmark {report['date']} · commit {report['source']['commit']}"
        + (" (+ uncommitted engine changes)" if report["source"]["engine_modified"] else "")
        + f" · {mach['nproc']} CPUs · {mach['mem_gb']} GB"
        + f" · load average {mach['load_avg_at_start']} at start",
        "",
        f"data: {rows['orders']:,} orders, {rows['reviews']:,} reviews, "
        f"{rows['livestreams']:,} live sessions; "
        f"{rows['shops']:,} shops, {rows['promoters']:,} promoters, {rows['products']:,} products in orders; "
        f"month {par['month']}; --memory-limit {par['memory_limit'] or 'none'}",
        "",
        "| measure | runs | wall s min | median | max | CPU s median | peak RSS MB max |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    gen = report["generation"]

    def figure(name: str, digits: int = 1) -> str:  # (a data set generated by hand has no figures)
        value = gen.get(name)
        return "–" if value is None else f"{value:.{digits}f}"

    lines.append(
        f"| sample --format parquet{' (cached)' if gen.get('cached') else ''} | 1 | {figure('min')} "
        f"| {figure('median')} | {figure('max')} | | {figure('peak_rss_mb', 0)} |"
    )
    for key, m in bench.measures.items():
        if key == "sample":
            continue
        if not m.samples:
            lines.append(f"| {m.name} | 0 | FAILED | | | | |")
            continue
        f = m.figures()
        s, c, r = f["seconds"], f["cpu_seconds"], f["peak_rss_mb"]
        name = m.name + (" (FAILED after these runs)" if m.failed else "")
        lines.append(
            f"| {name} | {f['runs']} | {s['min']:.3f} | {s['median']:.3f} | {s['max']:.3f} "
            f"| {c['median']:.2f} | {r['max']:.0f} |"
        )
    if bench.pairs:
        lines += [
            "",
            "| A / B, pair by pair | wall min | median | max | CPU median |",
            "|---|--:|--:|--:|--:|",
        ]
        for p in bench.pairs.values():
            w = p["wall"]
            lines.append(
                f"| {p['a']} / {p['b']} | {w['min']:.2f} | {w['median']:.2f} | {w['max']:.2f} "
                f"| {p['cpu']['median']:.2f} |"
            )
    lines += ["", "targets (issue #21):"]
    for name, t in report["targets"].items():
        detail = ", ".join(f"{k} {v}" for k, v in t.items() if k not in ("target", "met"))
        lines.append(f"- {'met' if t['met'] else 'MISSED'}: {name} ({t['target']}): {detail}")
    check = report.get("check")
    if check:
        lines.append("")
        for card, c in check.items():
            verdict = "equal" if not c["problems"] else "DIFFERENT: " + "; ".join(c["problems"][:3])
            lines.append(
                f"- check {card}: {c['entities']:,} entities, {c['values']:,} metric values: {verdict}"
            )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--merchants", type=int, default=PLATFORM["merchants"], help="shops [500000]")
    parser.add_argument("--orders", type=int, default=PLATFORM["orders"], help="orders [20000000]")
    parser.add_argument("--months", type=int, default=PLATFORM["months"], help="months of data [3]")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--month", default="2023-05", help="the month scored [2023-05]")
    parser.add_argument("--runs", type=int, default=5, help="runs of each timed command (pairs: of each) [5]")
    parser.add_argument("--memory-limit", default="4GB", help="for every command; `none` for no limit [4GB]")
    parser.add_argument("--out", type=Path, default=HERE / "data" / "platform", help="data and databases")
    parser.add_argument("--results", type=Path, help="the JSON file [see above]")
    parser.add_argument(
        "--source",
        default="worktree",
        help="`worktree` (the working tree) or a git revision to export and run",
    )
    parser.add_argument("--reuse-db", action="store_true", help="score an earlier run's database (no load)")
    parser.add_argument("--no-check", action="store_true", help="skip the equivalence check")
    args = parser.parse_args(argv)
    if args.memory_limit.lower() == "none":
        args.memory_limit = None
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.source == "worktree":
        script = Path(PY).with_name("chuanliu")
        chuanliu, cwd = ([str(script)] if script.exists() else [PY, "-m", "chuanliu_cli"]), REPO
    else:
        chuanliu, cwd = snapshot(args.source, out)
    bench = Bench(chuanliu, cwd)
    limit = ["--memory-limit", args.memory_limit] if args.memory_limit else []
    month = ["--month", args.month]
    runs = args.runs

    parquet, generation = dataset(bench, args, out)
    workdir = out / "work" / shape_name(args)
    db, loaded = workdir / "platform.duckdb", workdir / "platform.duckdb.done"
    if not (args.reuse_db and loaded.exists()):
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        m = bench.time(
            "load",
            "load --dir (Parquet)",
            [*chuanliu, "-q", "--db", str(db), "load", "--dir", str(parquet), *limit],
            1,
        )
        if m.failed:
            raise CommandFailed(m.failed)
        loaded.touch()
    rows = counts(db)
    log(", ".join(f"{k} {v:,}" for k, v in rows.items()))
    base = [*chuanliu, "-q", "--db", str(db)]

    bench.time("help", "chuanliu --help", [*chuanliu, "--help"], max(runs, 10))
    sample_data = REPO / "sample_data"
    command = [
        *chuanliu,
        "-q",
        "eligible",
        "--data",
        str(sample_data),
        *month,
        "--format",
        "csv",
        "-o",
        os.devnull,
    ]
    bench.time("sample_data", "eligible --data sample_data (whole process)", command, runs)

    # The hand-written SQL computes SPEC §5's metrics without the integrity flags (SPEC §11): the engine is
    # compared with it on the bundled ruleset without them, and the flags' cost is measured apart.
    plain = write_plain_ruleset(workdir / "chuanliu-without-integrity.yaml")
    lists = {card: workdir / f"eligible-{card}.csv" for card in SCORECARDS}
    for card in SCORECARDS:
        eligible = [
            *base,
            "eligible",
            *month,
            "--rules",
            str(plain),
            "--scorecard",
            card,
            "--format",
            "csv",
            "-o",
            str(lists[card]),
            *limit,
        ]
        reference = [PY, str(HERE / "reference_platform.py"), "--db", str(db), *month, "--scorecard", card]
        reference += ["--memory-limit", args.memory_limit] if args.memory_limit else []
        bench.pair(
            f"eligible_{card}",
            (f"eligible {card} (recorded)", eligible),
            (f"hand-written SQL {card}", reference),
            runs,
        )
        bench.time(
            f"eligible_{card}_no_record", f"eligible {card} --no-record", [*eligible, "--no-record"], runs
        )
        flagged = [*base, "eligible", *month, "--scorecard", card, "--format", "csv", "-o", os.devnull]
        flagged += ["--no-record", *limit]
        unflagged = [*flagged, "--rules", str(plain)]
        bench.pair(
            f"integrity_{card}",
            (f"eligible {card} --no-record, the bundled ruleset (integrity flags)", flagged),
            (f"eligible {card} --no-record, without the flags", unflagged),
            runs,
        )

    top = top_entity(lists["merchant"]) if lists["merchant"].exists() else None
    # with the ruleset of the recorded runs above, so that they are served from them as a user's would be
    rules = ["--rules", str(plain)]
    bench.time(
        "report",
        "report --month (merchant)",
        [*base, "report", *month, *rules, "-o", str(workdir / "report.html"), *limit],
        runs,
    )
    if top is not None:
        bench.time("explain", f"explain {top}", [*base, "explain", top, *month, *rules, *limit], runs)
        command = [*base, "score", *month, *rules, "--id", top, "--format", "csv", "-o", os.devnull, *limit]
        bench.time("score_id", f"score --id {top}", command, runs)
    else:
        log("no eligible merchant: explain and score --id are not measured")

    check: dict[str, Any] = {}
    if not args.no_check:
        log("check: every metric of every entity, reference against chuanliu score")
        check = reference_platform.check_all(
            db, args.month, list(SCORECARDS), args.memory_limit, chuanliu, cwd, plain
        )

    today = date.today().isoformat()
    report: dict[str, Any] = {
        "date": today,
        "machine": machine(),
        "source": source_version(args.source),
        "parameters": {
            "merchants": args.merchants,
            "orders": args.orders,
            "months": args.months,
            "seed": args.seed,
            "month": args.month,
            "runs": runs,
            "memory_limit": args.memory_limit,
            "reuse_db": args.reuse_db,
        },
        "rows": rows,
        "generation": generation,
        "measures": {k: m.figures() for k, m in bench.measures.items()},
        "pairs": bench.pairs,
        "targets": targets(bench, args.memory_limit),
        "check": check,
        "benchmark_seconds": round(time.perf_counter() - started, 1),
    }
    platform_shape = all(getattr(args, k) == v for k, v in PLATFORM.items())
    default = (
        HERE / f"results-{today}-platform.json"
        if platform_shape
        else out / f"results-{today}-{shape_name(args)}.json"
    )
    results: Path = args.results or default
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(markdown(report, bench))
    print(f"\nwrote {results}")
    problems = [p for c in check.values() for p in c["problems"]]
    failures = bench.failures()
    for line in ["FAILED:", *failures] if failures else []:
        print(line, file=sys.stderr)
    return 1 if problems or failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CommandFailed as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        sys.exit(1)
