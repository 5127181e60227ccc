"""Hand-written single-scan DuckDB SQL of the default ruleset's merchant, promoter and product metrics.

The yardstick of the platform-shape benchmark (issue #21, benchmarks/platform_shape.py): for one
scorecard of `rules/chuanliu.yaml`, every metric of every entity of the population, computed by one
statement as a DuckDB expert writes it: one pass over `orders` with a FILTER clause per metric (a metric
of a finer grain, converted_buyers, reads the few rows it needs again), `reviews` and `livestreams`
aggregated once each, the results joined by key; reviews are joined to their orders only where they lack
the key. Metrics only (the promoter statement also computes the merchants' eligibility, which its
metrics need): no scores, ranks or grants.

Definitions shared with the engine (SPEC §4-5 and the compiled SQL of `chuanliu rules sql`):
- it reads the columns `chuanliu load` stores: `net_amount` and `quality_return` of orders,
  `duration_minutes` of live sessions, so a difference found by --check is a difference of scoring;
- windows: period [start, end), previous = the month before, 90d = [end - 90 days, end); the
  population is every non-null key in any metric's source within that metric's window;
- conversion: a (shop, buyer) counts when its latest valid self live-room order of the period is later
  than its earliest valid distribution order of the 90 days;
- a review's item_id and promoter_id, when empty, come from its order (order_id); the promoters'
  carried metrics count only orders of merchants that pass the four merchant gates (values compared
  rounded to 6 decimals; store_experience NULL, too few reviews, passes).

    python benchmarks/reference_platform.py --db chuanliu.duckdb --month 2023-05 --scorecard product
    python benchmarks/reference_platform.py --db DB --scorecard merchant -o merchant.parquet
    python benchmarks/reference_platform.py --db DB --scorecard promoter --check   # vs chuanliu score
    python benchmarks/reference_platform.py --data sample_data --check             # all three scorecards

Without -o the result is fetched (as Arrow) and its row count printed: that is what the benchmark times.
--check also runs `chuanliu score --scorecard X --format parquet --no-record` on the same database (with
the bundled ruleset without its integrity flags, which this reference does not compute) and compares
every metric of every entity, to 1e-9 relative (absolute below 1); exit 1 if any differs.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

HERE = Path(__file__).resolve().parent
SCORECARDS = ("merchant", "promoter", "product")
#: Relative tolerance of --check (absolute for values below 1).
TOLERANCE = 1e-9

# The rows every orders-based metric reads: the union of the windows (period, previous, 90d). `valid`,
# `dist`, `self_live` are the ruleset's filters valid_order, distribution_order and self_live_order.
_ORDERS_SCAN = """
    select
        shop_id, buyer_id, promoter_id, order_time, net_amount, quality_return,
        not status in ('pending', 'closed') as valid,
        sale_mode = 'distribution' as dist,
        sale_mode = 'self' as self_sold,
        sale_mode = 'self' and carrier = 'live' as self_live,
        order_time >= $p_start as in_period,
        order_time >= $prev_start and order_time < $p_start as in_previous,
        order_time >= $d90_start as in_90d
    from orders
    where order_time >= least($d90_start, $prev_start) and order_time < $p_end
"""

# The merchant's review and live-session metrics; `{key}` is shop_id.
_SHOP_REVIEWS = """
    select
        shop_id,
        count(*) as reviews_90d,
        avg(quality_score) as quality_avg_90d,
        avg(logistics_score) as logistics_avg_90d,
        avg(service_score) as service_avg_90d,
        avg(case when quality_score <= 2 then 1.0 else 0.0 end) as negative_rate_90d,
        avg(case when complaint then 1.0 else 0.0 end) as complaint_rate_90d
    from reviews
    where shop_id is not null and review_time >= $d90_start and review_time < $p_end
    group by shop_id
"""
_SHOP_LIVE = """
    select
        shop_id,
        count(distinct cast(start_time as date))
            filter (where host_type = 'self' and duration_minutes >= 30) as live_days,
        coalesce(sum(duration_minutes) filter (where host_type = 'self'), 0) / 60 as live_hours,
        count(distinct date_trunc('week', start_time))
            filter (where host_type = 'self' and duration_minutes >= 30) as live_weeks,
        coalesce(sum(new_followers) filter (where host_type = 'self'), 0) as new_followers
    from livestreams
    where shop_id is not null and start_time >= $p_start and start_time < $p_end
    group by shop_id
"""

# One pass over orders with a FILTER per metric for the shop-level metrics. converted_buyers needs the
# (shop, buyer) grain: the buyers with a valid self live-room order in the period (few), then their
# earliest valid distribution order of the 90 days. `o` is inlined at each use (NOT MATERIALIZED), so each
# read keeps its filters pushed into the scan: at 4M orders this took 1.13 s of CPU against 1.30 s with
# `o` materialized once and 2.3 s with one (shop, buyer) aggregate over all of `o`.
MERCHANT_SQL = f"""
with
o as not materialized ({_ORDERS_SCAN}),
ord as (
    select
        shop_id,
        coalesce(sum(net_amount) filter (where valid and dist and in_period), 0) as distribution_gmv,
        count(distinct promoter_id) filter (where valid and dist and in_period) as distribution_promoters,
        count(*) filter (where valid and dist and in_90d) as distribution_orders_90d,
        coalesce(sum(net_amount) filter (where valid and self_live and in_period), 0) as self_live_gmv,
        coalesce(sum(net_amount) filter (where valid and self_live and in_previous), 0) as self_live_gmv_prev,
        coalesce(sum(net_amount) filter (where valid and self_sold and in_period), 0) as self_gmv_all,
        avg(case when quality_return then 1.0 else 0.0 end) filter (where valid and in_90d)
            as quality_return_rate_90d
    from o
    where shop_id is not null
    group by shop_id
),
live_buyers as (
    select shop_id, buyer_id, max(order_time) as then_time
    from o
    where shop_id is not null and buyer_id is not null and valid and self_live and in_period
    group by shop_id, buyer_id
),
converted as (
    select o.shop_id, o.buyer_id, min(o.order_time) as first_time, any_value(b.then_time) as then_time
    from o
    join live_buyers b using (shop_id, buyer_id)
    where o.valid and o.dist and o.in_90d
    group by o.shop_id, o.buyer_id
),
conv as (
    select shop_id, count(*) as converted_buyers from converted where then_time > first_time group by shop_id
),
rev as ({_SHOP_REVIEWS}),
live as ({_SHOP_LIVE}),
keys as (
    select shop_id from ord union select shop_id from rev union select shop_id from live
)
select
    k.shop_id,
    coalesce(live.live_days, 0)::double as live_days,
    coalesce(live.live_hours, 0)::double as live_hours,
    coalesce(live.live_weeks, 0)::double as live_weeks,
    coalesce(live.new_followers, 0)::double as new_followers,
    coalesce(ord.distribution_gmv, 0)::double as distribution_gmv,
    coalesce(ord.distribution_promoters, 0)::double as distribution_promoters,
    coalesce(ord.distribution_orders_90d, 0)::double as distribution_orders_90d,
    coalesce(ord.self_live_gmv, 0)::double as self_live_gmv,
    coalesce(ord.self_live_gmv_prev, 0)::double as self_live_gmv_prev,
    coalesce(ord.self_gmv_all, 0)::double as self_gmv_all,
    (coalesce(ord.self_live_gmv, 0)::double - coalesce(ord.self_live_gmv_prev, 0)::double)
        / greatest(coalesce(ord.self_live_gmv_prev, 0)::double, 1000) as self_live_growth,
    coalesce(ord.distribution_gmv, 0)::double
        / nullif(coalesce(ord.distribution_gmv, 0)::double + coalesce(ord.self_gmv_all, 0)::double, 0)
        as distribution_share,
    coalesce(conv.converted_buyers, 0)::double as converted_buyers,
    coalesce(rev.reviews_90d, 0)::double as reviews_90d,
    rev.quality_avg_90d::double as quality_avg_90d,
    rev.logistics_avg_90d::double as logistics_avg_90d,
    rev.service_avg_90d::double as service_avg_90d,
    rev.negative_rate_90d::double as negative_rate_90d,
    rev.complaint_rate_90d::double as complaint_rate_90d,
    ord.quality_return_rate_90d::double as quality_return_rate_90d
from keys k
left join ord using (shop_id)
left join conv using (shop_id)
left join rev using (shop_id)
left join live using (shop_id)
"""


def _lin(x: str, a: float, b: float) -> str:
    """The `linear: [a, b]` normalizer of SPEC §4 with a NULL value counting 0 (`missing` default). The
    explicit NULL case matters: DuckDB's greatest/least skip NULL arguments, so the clip alone gives 1."""
    clip = f"greatest(0.0, least(1.0, ({x} - {a}) / ({b} - {a})))"
    return f"coalesce(case when {x} is not null then {clip} end, 0)"


# One pass over orders at the (shop, promoter) grain: rolled up to the shop it gives the merchant gates'
# metrics (every one a sum or a count), and the shops that pass all four gates select the (shop,
# promoter) rows that make carried_gmv and carried_merchants. Reviews get their promoter from their order
# only where they have none.
PROMOTER_SQL = f"""
with
sp as (
    select
        shop_id, promoter_id,
        count(*) filter (where valid and dist and in_90d) as distribution_orders_90d,
        sum(net_amount) filter (where valid and self_live and in_period) as self_live_gmv,
        count(*) filter (where valid and in_90d) as valid_orders_90d,
        count(*) filter (where valid and in_90d and quality_return) as quality_returns_90d,
        sum(net_amount) filter (where valid and dist and in_period) as carried_gmv,
        count(*) filter (where valid and dist and in_period) as carried_orders,
        count(*) filter (where in_period) as period_orders
    from ({_ORDERS_SCAN})
    group by shop_id, promoter_id
),
shop as (
    select
        shop_id,
        sum(distribution_orders_90d) as distribution_orders_90d,
        coalesce(sum(self_live_gmv), 0) as self_live_gmv,
        sum(quality_returns_90d)::double / nullif(sum(valid_orders_90d), 0) as quality_return_rate_90d
    from sp
    where shop_id is not null
    group by shop_id
),
rev_shop as ({_SHOP_REVIEWS}),
live_shop as ({_SHOP_LIVE}),
experience as (
    select
        r.shop_id,
        case when r.reviews_90d >= 20 then 5 * (
            35 * {_lin("r.quality_avg_90d", 1, 5)}
            + 15 * {_lin("r.negative_rate_90d", 0.1, 0)}
            + 15 * {_lin("s.quality_return_rate_90d", 0.05, 0)}
            + 15 * {_lin("r.logistics_avg_90d", 1, 5)}
            + 10 * {_lin("r.service_avg_90d", 1, 5)}
            + 10 * {_lin("r.complaint_rate_90d", 0.02, 0)}
        ) / 100 end as store_experience
    from rev_shop r
    left join shop s using (shop_id)
),
eligible_shops as (
    select s.shop_id
    from shop s
    join live_shop l using (shop_id)
    left join experience e using (shop_id)
    where s.distribution_orders_90d >= 1
      and l.live_days >= 8 and l.live_weeks >= 3
      and (e.store_experience is null or round(e.store_experience, 6) >= 4.0)
      and round(s.self_live_gmv::double, 6) > 0
),
carried as (
    select
        sp.promoter_id,
        coalesce(sum(sp.carried_gmv) filter (where e.shop_id is not null), 0) as carried_gmv,
        count(*) filter (where e.shop_id is not null and sp.carried_orders > 0) as carried_merchants
    from sp
    left join eligible_shops e using (shop_id)
    where sp.promoter_id is not null and sp.period_orders > 0
    group by sp.promoter_id
),
rv as (
    select promoter_id, quality_score, service_score
    from reviews
    where promoter_id is not null and review_time >= $d90_start and review_time < $p_end
    union all
    select x.promoter_id, r.quality_score, r.service_score
    from reviews r
    join orders x on x.order_id = r.order_id
    where r.promoter_id is null and x.promoter_id is not null
      and r.review_time >= $d90_start and r.review_time < $p_end
),
rev as (
    select
        promoter_id,
        count(*) as reviews_90d,
        avg(quality_score) as quality_avg_90d,
        avg(service_score) as service_avg_90d,
        avg(case when quality_score <= 2 then 1.0 else 0.0 end) as negative_rate_90d
    from rv
    group by promoter_id
),
live as (
    select
        promoter_id,
        count(distinct cast(start_time as date))
            filter (where host_type = 'promoter' and duration_minutes >= 30) as promoter_live_days
    from livestreams
    where promoter_id is not null and start_time >= $p_start and start_time < $p_end
    group by promoter_id
),
keys as (
    select promoter_id from carried union select promoter_id from rev union select promoter_id from live
)
select
    k.promoter_id,
    coalesce(carried.carried_gmv, 0)::double as carried_gmv,
    coalesce(carried.carried_merchants, 0)::double as carried_merchants,
    coalesce(live.promoter_live_days, 0)::double as promoter_live_days,
    coalesce(rev.reviews_90d, 0)::double as reviews_90d,
    rev.quality_avg_90d::double as quality_avg_90d,
    rev.service_avg_90d::double as service_avg_90d,
    rev.negative_rate_90d::double as negative_rate_90d
from keys k
left join carried using (promoter_id)
left join rev using (promoter_id)
left join live using (promoter_id)
"""

# Products: one pass over orders by item, reviews once (their item from the order where they have none).
PRODUCT_SQL = """
with
ord as (
    select
        item_id,
        avg(case when quality_return then 1.0 else 0.0 end)
            filter (where not status in ('pending', 'closed')) as quality_return_rate_90d
    from orders
    where item_id is not null and order_time >= $d90_start and order_time < $p_end
    group by item_id
),
rv as (
    select item_id, quality_score
    from reviews
    where item_id is not null and review_time >= $d90_start and review_time < $p_end
    union all
    select x.item_id, r.quality_score
    from reviews r
    join orders x on x.order_id = r.order_id
    where r.item_id is null and x.item_id is not null
      and r.review_time >= $d90_start and r.review_time < $p_end
),
rev as (
    select
        item_id,
        count(*) as reviews_90d,
        avg(quality_score) as quality_avg_90d,
        avg(case when quality_score <= 2 then 1.0 else 0.0 end) as negative_rate_90d
    from rv
    group by item_id
)
select
    item_id,
    coalesce(rev.reviews_90d, 0)::double as reviews_90d,
    rev.quality_avg_90d::double as quality_avg_90d,
    rev.negative_rate_90d::double as negative_rate_90d,
    ord.quality_return_rate_90d::double as quality_return_rate_90d
from ord
full join rev using (item_id)
"""

STATEMENTS = {"merchant": MERCHANT_SQL, "promoter": PROMOTER_SQL, "product": PRODUCT_SQL}
KEYS = {"merchant": "shop_id", "promoter": "promoter_id", "product": "item_id"}


def month_parameters(month: str) -> dict[str, datetime]:
    """The window bounds of the month `YYYY-MM` as query parameters."""
    year, mon = (int(x) for x in month.split("-"))
    start = date(year, mon, 1)
    end = date(year + mon // 12, mon % 12 + 1, 1)
    prev = date(year - (mon == 1), (mon - 2) % 12 + 1, 1)
    return {
        "p_start": datetime.combine(start, datetime.min.time()),
        "p_end": datetime.combine(end, datetime.min.time()),
        "prev_start": datetime.combine(prev, datetime.min.time()),
        "d90_start": datetime.combine(end - timedelta(days=90), datetime.min.time()),
    }


def parameters(scorecard: str, month: str) -> dict[str, datetime]:
    """The parameters the scorecard's statement uses (DuckDB refuses unused named parameters)."""
    params = month_parameters(month)
    if scorecard == "product":
        return {k: params[k] for k in ("d90_start", "p_end")}
    return params


def connect(db: Path, memory_limit: str | None) -> tuple[duckdb.DuckDBPyConnection, str | None]:
    """The database read-only; with `memory_limit`, spilling to a fresh temporary directory past it."""
    import duckdb

    config: dict[str, Any] = {}
    spill = None
    if memory_limit:
        spill = tempfile.mkdtemp(prefix="reference-spill-")
        config = {"memory_limit": memory_limit, "temp_directory": spill}
    con = duckdb.connect(str(db), read_only=True, config=config)
    con.execute("set enable_progress_bar = false")
    return con, spill


def run(db: Path, month: str, scorecard: str, memory_limit: str | None, output: Path | None) -> int:
    """Run one scorecard's statement: to a Parquet file with `output`, else fetched as Arrow. Row count."""
    con, spill = connect(db, memory_limit)
    try:
        sql, params = STATEMENTS[scorecard], parameters(scorecard, month)
        if output is None:
            relation = con.sql(sql, params=params)
            assert relation is not None  # a query always gives a relation
            return relation.to_arrow_table().num_rows
        # COPY takes no prepared parameters: the window bounds go in as timestamp literals (our values).
        literal = {k: f"timestamp '{v:%Y-%m-%d %H:%M:%S}'" for k, v in params.items()}
        for name in sorted(literal, key=len, reverse=True):
            sql = sql.replace(f"${name}", literal[name])
        target = str(output).replace("'", "''")
        done = con.execute(f"copy ({sql}) to '{target}' (format parquet)").fetchone()
        return int(done[0]) if done else 0
    finally:
        con.close()
        if spill:
            shutil.rmtree(spill, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# --check: the same metrics from `chuanliu score`


def chuanliu_command() -> list[str]:
    """The `chuanliu` console script of this interpreter's environment (else `python -m chuanliu_cli`)."""
    script = Path(sys.executable).with_name("chuanliu")
    return [str(script)] if script.exists() else [sys.executable, "-m", "chuanliu_cli"]


def engine_metrics(
    db: Path,
    month: str,
    scorecard: str,
    out: Path,
    memory_limit: str | None,
    chuanliu: list[str],
    cwd: Path,
    rules: Path | None = None,
) -> str | None:
    """`chuanliu score --format parquet` of the scorecard into `out` (not recorded; with `rules`, e.g. the
    bundled ruleset without its integrity flags, which this reference does not compute); why it failed."""
    command = [*chuanliu, "-q", "--db", str(db), "score", "--month", month]
    command += ["--scorecard", scorecard, "--format", "parquet", "-o", str(out), "--no-record"]
    command += ["--rules", str(rules)] if rules else []
    if memory_limit:
        command += ["--memory-limit", memory_limit]
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    if done.returncode != 0:
        return f"chuanliu score failed (exit {done.returncode}): {done.stderr.strip()[-500:]}"
    return None


def differs(a: float | None, b: float | None) -> bool:
    """Beyond the tolerance: relative 1e-9 (absolute below 1); NULL and NaN only match themselves."""
    if a is None or b is None:
        return (a is None) != (b is None)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) != math.isnan(b)
    return abs(a - b) > TOLERANCE * max(1.0, abs(a), abs(b))


def compare(reference: Path, engine: Path, key: str) -> tuple[int, int, list[str]]:
    """Entities and values compared, and the differences: entities in one result only, a metric column
    missing from the engine's output, a value beyond the tolerance (the first 20 of them)."""
    import polars as pl

    ref = pl.read_parquet(reference)
    eng = pl.read_parquet(engine)
    metrics = [c for c in ref.columns if c != key]
    problems: list[str] = []
    missing = [c for c in metrics if c not in eng.columns]
    if missing:
        return 0, 0, [f"chuanliu's output has no column {', '.join(missing)}"]
    ref_keys, eng_keys = set(ref[key].to_list()), set(eng[key].to_list())
    if ref_keys != eng_keys:
        only_r, only_e = sorted(ref_keys - eng_keys), sorted(eng_keys - ref_keys)
        problems.append(
            f"entities differ: {len(only_r)} only in the reference {only_r[:5]}, "
            f"{len(only_e)} only in chuanliu {only_e[:5]}"
        )
    both = ref.join(eng.select(key, *metrics), on=key, how="inner", suffix="__engine")
    values = 0
    for col in metrics:
        pairs = both.select(key, col, f"{col}__engine").rows()
        values += len(pairs)
        for k, x, y in pairs:
            if differs(x, y):
                problems.append(f"{k}.{col}: reference {x!r}, chuanliu {y!r}")
                if len(problems) >= 20:
                    return len(both), values, [*problems, "... (stopped after 20 differences)"]
    return len(both), values, problems


def check_all(
    db: Path,
    month: str,
    scorecards: list[str],
    memory_limit: str | None,
    chuanliu: list[str] | None = None,
    cwd: Path | None = None,
    rules: Path | None = None,
) -> dict[str, dict[str, Any]]:
    """Per scorecard: entities and metric values compared with `chuanliu score`, and the differences."""
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="reference-check-") as tmp:
        for card in scorecards:
            ref_file, eng_file = (
                Path(tmp) / f"{card}-reference.parquet",
                Path(tmp) / f"{card}-chuanliu.parquet",
            )
            run(db, month, card, memory_limit, ref_file)
            failed = engine_metrics(
                db,
                month,
                card,
                eng_file,
                memory_limit,
                chuanliu or chuanliu_command(),
                cwd or HERE.parent,
                rules,
            )
            if failed:
                results[card] = {"entities": 0, "values": 0, "problems": [failed]}
                continue
            entities, values, problems = compare(ref_file, eng_file, KEYS[card])
            results[card] = {"entities": entities, "values": values, "problems": problems}
    return results


def check(db: Path, month: str, scorecards: list[str], memory_limit: str | None) -> int:
    """Print a verdict per scorecard; 1 if any differs. chuanliu scores with the bundled ruleset without
    its integrity flags, which this reference does not compute (as benchmarks/platform_shape.py does)."""
    sys.path.insert(0, str(HERE))
    from run import write_plain_ruleset  # (a sibling script, not a package)

    with tempfile.TemporaryDirectory(prefix="reference-rules-") as tmp:
        plain = write_plain_ruleset(Path(tmp) / "chuanliu-without-integrity.yaml")
        results = check_all(db, month, scorecards, memory_limit, rules=plain)
    for card, r in results.items():
        verdict = "equal" if not r["problems"] else "DIFFERENT"
        print(f"{card}: {r['entities']:,} entities, {r['values']:,} metric values compared: {verdict}")
        for p in r["problems"]:
            print(f"  {p}")
    return 1 if any(r["problems"] for r in results.values()) else 0


def load_directory(data: Path, workdir: Path) -> Path:
    """`chuanliu load --dir` of the exports into a fresh database under `workdir`."""
    db = workdir / "check.duckdb"
    command = [*chuanliu_command(), "-q", "--db", str(db), "load", "--dir", str(data)]
    subprocess.run(command, check=True, cwd=HERE.parent)
    return db


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--db", type=Path, help="a database loaded by `chuanliu load` (opened read-only)")
    source.add_argument("--data", type=Path, help="with --check: exports to load into a temporary database")
    parser.add_argument("--month", default="2023-05", help="the month to score [2023-05]")
    parser.add_argument(
        "--scorecard", choices=SCORECARDS, help="merchant, promoter or product [merchant; --check: all three]"
    )
    parser.add_argument("--memory-limit", help="DuckDB memory limit, e.g. 4GB (spills to disk past it)")
    parser.add_argument("-o", "--output", type=Path, help="write the metrics to this Parquet file")
    parser.add_argument(
        "--check", action="store_true", help="compare with `chuanliu score` (exit 1 if different)"
    )
    args = parser.parse_args(argv)
    if args.data is not None and not args.check:
        parser.error("--data is for --check; time the statement on a loaded database (--db)")
    if args.check:
        cards = [args.scorecard] if args.scorecard else list(SCORECARDS)
        if args.db is not None:
            return check(args.db, args.month, cards, args.memory_limit)
        with tempfile.TemporaryDirectory(prefix="reference-load-") as tmp:
            return check(load_directory(args.data, Path(tmp)), args.month, cards, args.memory_limit)
    t0 = time.perf_counter()
    rows = run(args.db, args.month, args.scorecard or "merchant", args.memory_limit, args.output)
    print(f"{rows} rows in {time.perf_counter() - t0:.3f} s")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("NO_COLOR", "1")
    sys.exit(main())
