"""Hand-written DuckDB SQL for the default ruleset's merchant scorecard (SPEC §5), independent of the engine.

It is the "hand-written SQL" baseline of the speed benchmark (SPEC §7) and a cross-check of the engine's
results: metrics, scores, gates and tiers of `rules/chuanliu.yaml` for one month, computed by one SQL
statement over the canonical tables `orders`, `reviews` and `livestreams`. A second, smaller statement does
the same for the promoter scorecard, which depends on the merchants' eligibility.

Readings of the spec that the engine must share (or the cross-check will say so):
- net = paid_amount − refund_amount, where a `refunded` order without refund_amount is fully refunded;
- a quality return has refund_amount > 0 and a quality refund reason; its rate is over valid orders;
- the population is every shop with a row in any metric's source within that metric's window (the metric's
  `where` does not matter); an ineligible entity has no tier;
- thresholds compare values rounded to 6 decimals; a NULL score part counts 0.

    python benchmarks/reference_merchant.py --data sample_data --month 2023-05 [--scorecard promoter]
    python benchmarks/reference_merchant.py --db chuanliu.duckdb --month 2023-05 --format csv -o out.csv

With `--db` it runs on the tables of a database loaded by `chuanliu load` (opened read-only), which is how
the benchmark times it against `chuanliu eligible` on the same database.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

QUALITY_REASONS = (
    "与商品描述不符",
    "质量问题",
    "卖家发错货",
    "三无产品",
    "假冒产品",
    "not as described",
    "quality issue",
    "quality problem",
    "wrong item sent",
    "no brand or license",
    "counterfeit",
)

# Normalizers of SPEC §4 as macros; a NULL input stays NULL and the caller turns it into `missing: 0`.
# (The explicit NULL case matters: DuckDB's greatest/least skip NULL arguments, so the clip alone would
# turn a NULL into 1.)
MACROS = """
create or replace temp macro lin(x, a, b) as
    case when x is not null then greatest(0.0, least(1.0, (x::double - a) / (b - a))) end;
create or replace temp macro lg(x, a, b) as
    case when x is not null
        then greatest(0.0, least(1.0, ln(1 + greatest(x::double - a, 0)) / ln(1 + b - a))) end;
"""

# Parameters: $p_start, $p_end (the month), $prev_start (the month before), $d90_start ($p_end − 90 days).
MERCHANT_SQL = """
with
o as (
    select
        shop_id, buyer_id, promoter_id, sale_mode, coalesce(carrier, 'other') as carrier, order_time,
        paid_amount
            - coalesce(refund_amount, case when status = 'refunded' then paid_amount else 0 end) as net,
        status not in ('pending', 'closed') as valid,
        coalesce(refund_amount, 0) > 0 and refund_reason in ({quality_reasons}) as quality_return
    from orders
    where order_time >= least($d90_start, $prev_start) and order_time < $p_end
),
lv as (
    select
        shop_id, host_type, start_time, new_followers,
        coalesce(duration_minutes, date_diff('second', start_time, end_time) / 60.0) as minutes
    from livestreams
    where start_time >= $p_start and start_time < $p_end
),
rv as (
    select * from reviews where review_time >= $d90_start and review_time < $p_end
),
population as (
    select shop_id from o where shop_id is not null
    union select shop_id from lv where shop_id is not null
    union select shop_id from rv where shop_id is not null
),
live as (
    select
        shop_id,
        count(distinct case when minutes >= 30 then cast(start_time as date) end) as live_days,
        coalesce(sum(minutes), 0) / 60.0 as live_hours,
        count(distinct case when minutes >= 30 then date_trunc('week', start_time) end) as live_weeks,
        coalesce(sum(new_followers), 0) as new_followers
    from lv
    where host_type = 'self'
    group by shop_id
),
ord as (
    select
        shop_id,
        coalesce(sum(net) filter (where valid and sale_mode = 'distribution' and order_time >= $p_start), 0)
            as distribution_gmv,
        count(distinct promoter_id) filter (
            where valid and sale_mode = 'distribution' and order_time >= $p_start) as distribution_promoters,
        count(*) filter (where valid and sale_mode = 'distribution' and order_time >= $d90_start)
            as distribution_orders_90d,
        coalesce(sum(net) filter (
            where valid and sale_mode = 'self' and carrier = 'live' and order_time >= $p_start), 0)
            as self_live_gmv,
        coalesce(sum(net) filter (
            where valid and sale_mode = 'self' and carrier = 'live'
              and order_time >= $prev_start and order_time < $p_start), 0)
            as self_live_gmv_prev,
        coalesce(sum(net) filter (where valid and sale_mode = 'self' and order_time >= $p_start), 0)
            as self_gmv_all,
        count(*) filter (where valid and quality_return and order_time >= $d90_start) as quality_returns_90d,
        count(*) filter (where valid and order_time >= $d90_start) as valid_orders_90d
    from o
    group by shop_id
),
first_distribution as (
    select shop_id, buyer_id, min(order_time) as first_time
    from o
    where valid and sale_mode = 'distribution' and order_time >= $d90_start
    group by shop_id, buyer_id
),
conv as (
    select f.shop_id, count(distinct f.buyer_id) as converted_buyers
    from first_distribution f
    join o t on t.shop_id = f.shop_id and t.buyer_id = f.buyer_id
    where t.valid and t.sale_mode = 'self' and t.carrier = 'live'
      and t.order_time >= $p_start and t.order_time > f.first_time
    group by f.shop_id
),
rev as (
    select
        shop_id,
        count(*) as reviews_90d,
        avg(quality_score) as quality_avg_90d,
        avg(logistics_score) as logistics_avg_90d,
        avg(service_score) as service_avg_90d,
        avg(case when quality_score <= 2 then 1.0 else 0.0 end) as negative_rate_90d,
        avg(case when coalesce(complaint, false) then 1.0 else 0.0 end) as complaint_rate_90d
    from rv
    group by shop_id
),
metrics as (
    select
        p.shop_id,
        coalesce(live.live_days, 0) as live_days,
        coalesce(live.live_hours, 0) as live_hours,
        coalesce(live.live_weeks, 0) as live_weeks,
        coalesce(live.new_followers, 0) as new_followers,
        coalesce(ord.distribution_gmv, 0) as distribution_gmv,
        coalesce(ord.distribution_promoters, 0) as distribution_promoters,
        coalesce(ord.distribution_orders_90d, 0) as distribution_orders_90d,
        coalesce(ord.self_live_gmv, 0) as self_live_gmv,
        coalesce(ord.self_live_gmv_prev, 0) as self_live_gmv_prev,
        coalesce(ord.self_gmv_all, 0) as self_gmv_all,
        (coalesce(ord.self_live_gmv, 0) - coalesce(ord.self_live_gmv_prev, 0))::double
            / greatest(coalesce(ord.self_live_gmv_prev, 0), 1000) as self_live_growth,
        coalesce(ord.distribution_gmv, 0)::double
            / nullif(coalesce(ord.distribution_gmv, 0) + coalesce(ord.self_gmv_all, 0), 0)
            as distribution_share,
        coalesce(conv.converted_buyers, 0) as converted_buyers,
        coalesce(rev.reviews_90d, 0) as reviews_90d,
        rev.quality_avg_90d,
        rev.logistics_avg_90d,
        rev.service_avg_90d,
        rev.negative_rate_90d,
        rev.complaint_rate_90d,
        ord.quality_returns_90d::double / nullif(ord.valid_orders_90d, 0) as quality_return_rate_90d
    from population p
    left join live using (shop_id)
    left join ord using (shop_id)
    left join conv using (shop_id)
    left join rev using (shop_id)
),
scores as (
    select
        *,
        case when reviews_90d >= 20 then 5 * (
            35 * coalesce(lin(quality_avg_90d, 1, 5), 0)
            + 15 * coalesce(lin(negative_rate_90d, 0.1, 0), 0)
            + 15 * coalesce(lin(quality_return_rate_90d, 0.05, 0), 0)
            + 15 * coalesce(lin(logistics_avg_90d, 1, 5), 0)
            + 10 * coalesce(lin(service_avg_90d, 1, 5), 0)
            + 10 * coalesce(lin(complaint_rate_90d, 0.02, 0), 0)
        ) / 100 end as store_experience,
        100 * (
            50 * lin(live_days, 4, 26) + 30 * lg(live_hours, 0, 200) + 20 * lin(live_weeks, 1, 4)
        ) / 100 as diligence,
        100 * (
            50 * lg(distribution_gmv, 0, 1000000)
            + 30 * lg(distribution_promoters, 0, 100)
            + 20 * coalesce(lin(distribution_share, 0, 0.5), 0)
        ) / 100 as distribution,
        100 * (
            40 * lin(self_live_growth, -0.2, 1.0) + 40 * lg(converted_buyers, 0, 2000)
            + 20 * lg(new_followers, 0, 50000)
        ) / 100 as incremental
    from metrics
),
totals as (
    select *, 100 * (30 * diligence / 100 + 35 * distribution / 100 + 35 * incremental / 100) / 100 as total
    from scores
),
gated as (
    select
        *,
        concat_ws(',',
            case when not (distribution_orders_90d >= 1) then 'distribution_history' end,
            case when not (live_days >= 8 and live_weeks >= 3) then 'stable_live' end,
            case when round(store_experience, 6) < 4.0 then 'store_experience' end,
            case when not (round(self_live_gmv, 6) > 0) then 'active' end
        ) as failed_gates
    from totals
)
select
    *,
    failed_gates = '' as eligible,
    case when failed_gates = '' then
        case
            when round(total, 6) >= 80 then 'S'
            when round(total, 6) >= 65 then 'A'
            when round(total, 6) >= 50 then 'B'
            when round(total, 6) >= 35 then 'C'
        end
    end as tier
from gated
order by eligible desc, round(total, 6) desc, shop_id
"""

# Needs the merchant results as table `merchant_results` (shop_id, eligible).
PROMOTER_SQL = """
with
o as (
    select
        shop_id, promoter_id, sale_mode,
        paid_amount
            - coalesce(refund_amount, case when status = 'refunded' then paid_amount else 0 end) as net,
        status not in ('pending', 'closed') as valid
    from orders
    where order_time >= $p_start and order_time < $p_end
),
lv as (
    select
        promoter_id, host_type, start_time,
        coalesce(duration_minutes, date_diff('second', start_time, end_time) / 60.0) as minutes
    from livestreams
    where start_time >= $p_start and start_time < $p_end
),
rv as (
    select coalesce(r.promoter_id, x.promoter_id) as promoter_id, r.quality_score, r.service_score
    from reviews r
    left join orders x on x.order_id = r.order_id
    where r.review_time >= $d90_start and r.review_time < $p_end
),
population as (
    select promoter_id from o where promoter_id is not null
    union select promoter_id from lv where promoter_id is not null
    union select promoter_id from rv where promoter_id is not null
),
carried as (
    select o.promoter_id, sum(o.net) as carried_gmv, count(distinct o.shop_id) as carried_merchants
    from o
    join merchant_results m on m.shop_id = o.shop_id and m.eligible
    where o.valid and o.sale_mode = 'distribution'
    group by o.promoter_id
),
live as (
    select promoter_id, count(distinct cast(start_time as date)) as promoter_live_days
    from lv
    where host_type = 'promoter' and minutes >= 30
    group by promoter_id
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
metrics as (
    select
        p.promoter_id,
        coalesce(carried.carried_gmv, 0) as carried_gmv,
        coalesce(carried.carried_merchants, 0) as carried_merchants,
        coalesce(live.promoter_live_days, 0) as promoter_live_days,
        coalesce(rev.reviews_90d, 0) as reviews_90d,
        rev.quality_avg_90d,
        rev.service_avg_90d,
        rev.negative_rate_90d
    from population p
    left join carried using (promoter_id)
    left join live using (promoter_id)
    left join rev using (promoter_id)
),
scores as (
    select
        *,
        case when reviews_90d >= 10 then 5 * (
            50 * coalesce(lin(quality_avg_90d, 1, 5), 0)
            + 25 * coalesce(lin(service_avg_90d, 1, 5), 0)
            + 25 * coalesce(lin(negative_rate_90d, 0.1, 0), 0)
        ) / 100 end as reputation,
        100 * (70 * lg(carried_gmv, 0, 500000) + 30 * lin(carried_merchants, 1, 10)) / 100 as contribution
    from metrics
),
totals as (
    select
        *,
        100 * (
            70 * contribution / 100 + 15 * lin(promoter_live_days, 2, 20) + 15 * coalesce(reputation / 5, 0)
        ) / 100 as total
    from scores
),
gated as (
    select
        *,
        concat_ws(',',
            case when not (round(carried_gmv, 6) > 0) then 'carried' end,
            case when round(reputation, 6) < 4.0 then 'reputation' end
        ) as failed_gates
    from totals
)
select
    *,
    failed_gates = '' as eligible,
    case when failed_gates = '' then
        case
            when round(total, 6) >= 60 then 'A'
            when round(total, 6) >= 40 then 'B'
            when round(total, 6) >= 20 then 'C'
        end
    end as tier
from gated
order by eligible desc, round(total, 6) desc, promoter_id
"""

# Typed canonical tables from CSV (read as text, then cast: identifiers stay text) or Parquet.
_COLUMNS = {
    "orders": {
        "order_id": "varchar",
        "shop_id": "varchar",
        "buyer_id": "varchar",
        "promoter_id": "varchar",
        "sale_mode": "varchar",
        "carrier": "varchar",
        "order_time": "timestamp",
        "paid_amount": "decimal(14,2)",
        "status": "varchar",
        "refund_amount": "decimal(14,2)",
        "refund_reason": "varchar",
    },
    "reviews": {
        "review_id": "varchar",
        "order_id": "varchar",
        "shop_id": "varchar",
        "promoter_id": "varchar",
        "quality_score": "integer",
        "logistics_score": "integer",
        "service_score": "integer",
        "review_time": "timestamp",
        "complaint": "boolean",
    },
    "livestreams": {
        "live_id": "varchar",
        "shop_id": "varchar",
        "host_type": "varchar",
        "promoter_id": "varchar",
        "start_time": "timestamp",
        "end_time": "timestamp",
        "duration_minutes": "double",
        "new_followers": "bigint",
    },
}


def load(con: duckdb.DuckDBPyConnection, data_dir: Path) -> None:
    """Create the typed tables `orders`, `reviews`, `livestreams` from `<table>.parquet` or `<table>.csv`."""
    for table, columns in _COLUMNS.items():
        parquet, csv = data_dir / f"{table}.parquet", data_dir / f"{table}.csv"
        if parquet.exists():
            source = f"read_parquet('{_quote(parquet)}')"
        elif csv.exists():
            source = f"read_csv('{_quote(csv)}', header = true, all_varchar = true)"
        else:
            raise FileNotFoundError(f"no {table}.parquet or {table}.csv in {data_dir}")
        select = ", ".join(
            f'cast(nullif(cast("{c}" as varchar), \'\') as {t}) as "{c}"' for c, t in columns.items()
        )
        con.execute(f'create or replace table "{table}" as select {select} from {source}')


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


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


def merchant_sql() -> str:
    """The merchant statement with the quality refund reasons inlined as literals."""
    reasons = ", ".join("'" + r.replace("'", "''") + "'" for r in QUALITY_REASONS)
    return MERCHANT_SQL.format(quality_reasons=reasons)


def _rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in con.description or ()]
    return [dict(zip(names, row, strict=True)) for row in con.fetchall()]


def merchant_scorecard(con: duckdb.DuckDBPyConnection, month: str) -> list[dict[str, Any]]:
    """Every merchant of the population with metrics, scores, `failed_gates`, `eligible` and `tier`."""
    con.execute(MACROS)
    con.execute(merchant_sql(), month_parameters(month))
    return _rows(con)


def promoter_scorecard(con: duckdb.DuckDBPyConnection, month: str) -> list[dict[str, Any]]:
    """Every promoter of the population, scored against the merchants' eligibility for the same month."""
    con.execute(MACROS)
    params = month_parameters(month)
    con.execute(f"create or replace temp table merchant_results as {merchant_sql()}", params)
    con.execute(PROMOTER_SQL, {k: v for k, v in params.items() if k != "prev_start"})
    return _rows(con)


def score_database(
    db_path: Path, month: str, scorecard: str = "merchant", memory_limit: str | None = None
) -> list[dict[str, Any]]:
    """Score one scorecard on the tables of a database loaded by `chuanliu load` (opened read-only); with
    `memory_limit`, DuckDB spills to a temporary directory past it (as `chuanliu --memory-limit` does)."""
    import tempfile

    import duckdb

    config: dict[str, Any] = {}
    if memory_limit:
        config = {"memory_limit": memory_limit, "temp_directory": tempfile.mkdtemp(prefix="reference-spill-")}
    con = duckdb.connect(str(db_path), read_only=True, config=config)
    con.execute("set enable_progress_bar = false")
    try:
        return merchant_scorecard(con, month) if scorecard == "merchant" else promoter_scorecard(con, month)
    finally:
        con.close()
        if config:
            import shutil

            shutil.rmtree(config["temp_directory"], ignore_errors=True)


def score_directory(data_dir: Path, month: str, scorecard: str = "merchant") -> list[dict[str, Any]]:
    """Load the exports in `data_dir` into an in-memory database and score one scorecard."""
    import duckdb

    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")  # keep benchmark output clean
    try:
        load(con, data_dir)
        return merchant_scorecard(con, month) if scorecard == "merchant" else promoter_scorecard(con, month)
    finally:
        con.close()


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, bool):
        return "✓" if value else "✗"
    return str(value)


def _print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    cells = [[_fmt(r[c]) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


MERCHANT_COLUMNS = [
    "shop_id", "live_days", "live_hours", "live_weeks", "new_followers", "distribution_gmv",
    "distribution_promoters", "distribution_orders_90d", "self_live_gmv", "self_live_growth",
    "distribution_share", "converted_buyers", "reviews_90d", "store_experience", "diligence",
    "distribution", "incremental", "total", "eligible", "tier", "failed_gates",
]  # fmt: skip
PROMOTER_COLUMNS = [
    "promoter_id", "carried_gmv", "carried_merchants", "promoter_live_days", "reviews_90d",
    "quality_avg_90d", "reputation", "contribution", "total", "eligible", "tier", "failed_gates",
]  # fmt: skip


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Counts per tier (eligible entities; `-` = below the lowest tier) and per failed gate."""
    tiers: dict[str, int] = {}
    gates: dict[str, int] = {}
    for r in rows:
        if r["eligible"]:
            tiers[r["tier"] or "-"] = tiers.get(r["tier"] or "-", 0) + 1
        for gate in filter(None, r["failed_gates"].split(",")):
            gates[gate] = gates.get(gate, 0) + 1
    return {"tiers": dict(sorted(tiers.items())), "failed_gates": dict(sorted(gates.items()))}


def write_csv(rows: list[dict[str, Any]], out: Any) -> None:
    """Every column of `rows` as CSV: decimals as floats, booleans as true/false, NULL as empty."""
    import csv
    from decimal import Decimal

    def cell(value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, Decimal):
            return repr(float(value))
        if isinstance(value, float):
            return repr(value)
        return value

    writer = csv.writer(out, lineterminator="\n")
    if not rows:
        return
    writer.writerow(list(rows[0]))
    for r in rows:
        writer.writerow([cell(v) for v in r.values()])


def main(argv: list[str] | None = None) -> int:
    """Print every entity's metrics, scores, failed gates and tier, then counts per tier and gate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", type=Path, help="exports to load in memory [default: sample_data]")
    source.add_argument("--db", type=Path, help="a database loaded by `chuanliu load` (read-only)")
    parser.add_argument("--month", default="2023-05")
    parser.add_argument("--scorecard", choices=["merchant", "promoter"], default="merchant")
    parser.add_argument("--format", choices=["table", "csv"], default="table")
    parser.add_argument("-o", "--output", type=Path, help="write to FILE instead of stdout")
    parser.add_argument("--memory-limit", help="with --db: DuckDB memory limit, e.g. 4GB (spills past it)")
    args = parser.parse_args(argv)
    if args.db is not None:
        rows = score_database(args.db, args.month, args.scorecard, args.memory_limit)
    else:
        data = args.data or Path(__file__).resolve().parent.parent / "sample_data"
        rows = score_directory(data, args.month, args.scorecard)
    if args.format == "csv":
        if args.output is None:
            write_csv(rows, sys.stdout)
        else:
            with args.output.open("w", encoding="utf-8", newline="") as f:
                write_csv(rows, f)
        return 0
    _print_table(rows, MERCHANT_COLUMNS if args.scorecard == "merchant" else PROMOTER_COLUMNS)
    summary = summarize(rows)
    print(f"\n{len(rows)} entities, {sum(r['eligible'] for r in rows)} eligible")
    print("per tier:", summary["tiers"])
    print("per failed gate:", summary["failed_gates"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
