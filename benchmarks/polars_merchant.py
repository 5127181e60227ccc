"""The merchant metrics of the default ruleset (SPEC §5) in Polars (lazy), for the speed benchmark (SPEC §7).

Reads the exports `orders.parquet`, `reviews.parquet` and `livestreams.parquet` of a directory written by
`chuanliu sample --format parquet` (canonical English headers) and computes, per shop of the population,
the same metric columns as `reference_merchant.py`'s MERCHANT_SQL, with the same readings of the spec
(net, quality returns, population, windows). Scores are not computed: the benchmark compares metrics.

    python benchmarks/polars_merchant.py --data DIR --month 2023-05 [-o metrics.csv]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_merchant import QUALITY_REASONS, month_parameters

if TYPE_CHECKING:
    import polars as pl

#: The metric columns, in the order of reference_merchant's MERCHANT_SQL (and of the engine's output).
METRICS = (
    "live_days", "live_hours", "live_weeks", "new_followers", "distribution_gmv", "distribution_promoters",
    "distribution_orders_90d", "self_live_gmv", "self_live_gmv_prev", "self_gmv_all", "self_live_growth",
    "distribution_share", "converted_buyers", "reviews_90d", "quality_avg_90d", "logistics_avg_90d",
    "service_avg_90d", "negative_rate_90d", "complaint_rate_90d", "quality_return_rate_90d",
)  # fmt: skip
ORDER_COLUMNS = [
    "shop_id", "buyer_id", "promoter_id", "sale_mode", "carrier", "order_time", "paid_amount", "status",
    "refund_amount", "refund_reason",
]  # fmt: skip


def merchant_metrics(data_dir: Path, month: str) -> pl.DataFrame:
    """One row per shop of the population (sorted by shop_id): shop_id, then every metric as Float64."""
    import polars as pl

    p = month_parameters(month)
    p_start, p_end, prev_start, d90_start = p["p_start"], p["p_end"], p["prev_start"], p["d90_start"]
    lo = min(d90_start, prev_start)

    paid = pl.col("paid_amount").cast(pl.Float64)
    refund = pl.col("refund_amount").cast(pl.Float64)
    orders = (
        pl.scan_parquet(data_dir / "orders.parquet")
        .select(ORDER_COLUMNS)
        .filter((pl.col("order_time") >= lo) & (pl.col("order_time") < p_end))
        .with_columns(
            net=paid - refund.fill_null(pl.when(pl.col("status") == "refunded").then(paid).otherwise(0.0)),
            valid=~pl.col("status").is_in(["pending", "closed"]),
            quality_return=(refund.fill_null(0.0) > 0)
            & pl.col("refund_reason").is_in(list(QUALITY_REASONS)).fill_null(False),
            carrier=pl.col("carrier").fill_null("other"),
        )
    )
    t = pl.col("order_time")
    in_period = t >= p_start
    in_90d = t >= d90_start
    in_prev = (t >= prev_start) & (t < p_start)
    valid = pl.col("valid")
    dist = valid & (pl.col("sale_mode") == "distribution")
    self_live = valid & (pl.col("sale_mode") == "self") & (pl.col("carrier") == "live")
    self_all = valid & (pl.col("sale_mode") == "self")
    net = pl.col("net")

    ord_ = orders.group_by("shop_id").agg(
        distribution_gmv=net.filter(dist & in_period).sum(),
        distribution_promoters=pl.col("promoter_id").filter(dist & in_period).drop_nulls().n_unique(),
        distribution_orders_90d=(dist & in_90d).sum(),
        self_live_gmv=net.filter(self_live & in_period).sum(),
        self_live_gmv_prev=net.filter(self_live & in_prev).sum(),
        self_gmv_all=net.filter(self_all & in_period).sum(),
        quality_returns_90d=(valid & pl.col("quality_return") & in_90d).sum(),
        valid_orders_90d=(valid & in_90d).sum(),
    )
    first = (
        orders.filter(dist & in_90d)
        .group_by("shop_id", "buyer_id")
        .agg(first_time=pl.col("order_time").min())
    )
    then = (
        orders.filter(self_live & in_period)
        .group_by("shop_id", "buyer_id")
        .agg(then_time=pl.col("order_time").max())
    )
    conv = (
        first.join(then, on=["shop_id", "buyer_id"], how="inner")
        .filter(pl.col("then_time") > pl.col("first_time"))
        .group_by("shop_id")
        .agg(converted_buyers=pl.len())
    )

    lv = (
        pl.scan_parquet(data_dir / "livestreams.parquet")
        .select("shop_id", "host_type", "start_time", "end_time", "duration_minutes", "new_followers")
        .filter((pl.col("start_time") >= p_start) & (pl.col("start_time") < p_end))
        .with_columns(
            minutes=pl.col("duration_minutes")
            .cast(pl.Float64)
            .fill_null((pl.col("end_time") - pl.col("start_time")).dt.total_seconds() / 60.0)
        )
    )
    long = pl.col("minutes") >= 30
    live = (
        lv.filter(pl.col("host_type") == "self")
        .group_by("shop_id")
        .agg(
            live_days=pl.col("start_time").dt.date().filter(long).n_unique(),
            live_hours=pl.col("minutes").sum() / 60.0,
            live_weeks=pl.col("start_time").dt.truncate("1w").filter(long).n_unique(),
            new_followers=pl.col("new_followers").sum(),
        )
    )

    rv = (
        pl.scan_parquet(data_dir / "reviews.parquet")
        .select("shop_id", "quality_score", "logistics_score", "service_score", "review_time", "complaint")
        .filter((pl.col("review_time") >= d90_start) & (pl.col("review_time") < p_end))
    )
    rev = rv.group_by("shop_id").agg(
        reviews_90d=pl.len(),
        quality_avg_90d=pl.col("quality_score").mean(),
        logistics_avg_90d=pl.col("logistics_score").mean(),
        service_avg_90d=pl.col("service_score").mean(),
        negative_rate_90d=(pl.col("quality_score") <= 2).fill_null(False).cast(pl.Float64).mean(),
        complaint_rate_90d=pl.col("complaint").fill_null(False).cast(pl.Float64).mean(),
    )

    population = (
        pl.concat([orders.select("shop_id"), lv.select("shop_id"), rv.select("shop_id")])
        .drop_nulls()
        .unique()
    )
    z = 0.0
    m = (
        population.join(live, on="shop_id", how="left")
        .join(ord_, on="shop_id", how="left")
        .join(conv, on="shop_id", how="left")
        .join(rev, on="shop_id", how="left")
    )
    f = pl.col
    count_like = (
        "live_days", "live_hours", "live_weeks", "new_followers", "distribution_gmv",
        "distribution_promoters", "distribution_orders_90d", "self_live_gmv", "self_live_gmv_prev",
        "self_gmv_all", "converted_buyers", "reviews_90d",
    )  # fmt: skip
    m = m.with_columns([f(c).cast(pl.Float64).fill_null(z) for c in count_like])
    m = m.with_columns(
        self_live_growth=(f("self_live_gmv") - f("self_live_gmv_prev"))
        / pl.max_horizontal(f("self_live_gmv_prev"), pl.lit(1000.0)),
        distribution_share=pl.when(f("distribution_gmv") + f("self_gmv_all") != 0).then(
            f("distribution_gmv") / (f("distribution_gmv") + f("self_gmv_all"))
        ),
        quality_return_rate_90d=pl.when(f("valid_orders_90d") > 0).then(
            f("quality_returns_90d").cast(pl.Float64) / f("valid_orders_90d").cast(pl.Float64)
        ),
    )
    return (
        m.select(f("shop_id").cast(pl.Utf8), *(f(c).cast(pl.Float64) for c in METRICS))
        .sort("shop_id")
        .collect()
    )


def main(argv: list[str] | None = None) -> int:
    """Compute the metrics and write them as CSV (stdout or -o FILE)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, required=True, help="directory of the Parquet exports")
    parser.add_argument("--month", default="2023-05")
    parser.add_argument("-o", "--output", type=Path, help="CSV file to write [default: stdout]")
    args = parser.parse_args(argv)
    frame = merchant_metrics(args.data, args.month)
    if args.output is None:
        sys.stdout.write(frame.write_csv())
    else:
        frame.write_csv(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
