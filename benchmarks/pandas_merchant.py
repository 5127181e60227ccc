"""The merchant metrics of the default ruleset (SPEC §5) in pandas, for the speed benchmark (SPEC §7).

Same inputs, readings and output as `polars_merchant.py` (see there), written the way an analyst would in
pandas: read the needed columns of the Parquet exports with a row filter on the time column, then boolean
masks and `groupby`. pandas is not a dependency of chuanliu; install it to run this (`pip install pandas`).

    python benchmarks/pandas_merchant.py --data DIR --month 2023-05 [-o metrics.csv]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))

from polars_merchant import METRICS, ORDER_COLUMNS
from reference_merchant import QUALITY_REASONS, month_parameters

if TYPE_CHECKING:
    import pandas as pd


def _read(path: Path, columns: list[str], time_column: str, lo: object, hi: object) -> pd.DataFrame:
    """The columns of a Parquet file for rows with lo <= time < hi; amounts as float64."""
    import pandas as pd

    frame = pd.read_parquet(path, columns=columns, filters=[(time_column, ">=", lo), (time_column, "<", hi)])
    for name in frame.columns:
        if frame[name].dtype == object and name in ("paid_amount", "refund_amount"):
            frame[name] = frame[name].astype("float64")  # Decimal objects
    return frame


def merchant_metrics(data_dir: Path, month: str) -> pd.DataFrame:
    """One row per shop of the population (sorted by shop_id): shop_id, then every metric as float64."""
    import numpy as np
    import pandas as pd

    p = month_parameters(month)
    p_start, p_end, prev_start, d90_start = p["p_start"], p["p_end"], p["prev_start"], p["d90_start"]
    lo = min(d90_start, prev_start)

    o = _read(data_dir / "orders.parquet", ORDER_COLUMNS, "order_time", lo, p_end)
    paid = o["paid_amount"].astype("float64")
    refund = o["refund_amount"].astype("float64")
    refunded = (o["status"] == "refunded").fillna(False).to_numpy(bool)
    net = paid - refund.fillna(pd.Series(np.where(refunded, paid, 0.0), index=o.index))
    valid = (~o["status"].isin(["pending", "closed"]) & o["status"].notna()).to_numpy(bool)
    mode = o["sale_mode"]
    carrier = o["carrier"].fillna("other")
    t = o["order_time"]
    in_period = (t >= p_start).to_numpy(bool)
    in_90d = (t >= d90_start).to_numpy(bool)
    in_prev = ((t >= prev_start) & (t < p_start)).to_numpy(bool)
    dist = valid & (mode == "distribution").fillna(False).to_numpy(bool)
    self_all = valid & (mode == "self").fillna(False).to_numpy(bool)
    self_live = self_all & (carrier == "live").to_numpy(bool)
    quality_return = ((refund.fillna(0.0) > 0) & o["refund_reason"].isin(QUALITY_REASONS)).to_numpy(bool)
    netv = net.to_numpy("float64")

    parts = pd.DataFrame(
        {
            "shop_id": o["shop_id"],
            "distribution_gmv": np.where(dist & in_period, netv, 0.0),
            "distribution_orders_90d": (dist & in_90d).astype("int64"),
            "self_live_gmv": np.where(self_live & in_period, netv, 0.0),
            "self_live_gmv_prev": np.where(self_live & in_prev, netv, 0.0),
            "self_gmv_all": np.where(self_all & in_period, netv, 0.0),
            "quality_returns_90d": (valid & quality_return & in_90d).astype("int64"),
            "valid_orders_90d": (valid & in_90d).astype("int64"),
        }
    )
    ord_ = parts.groupby("shop_id", sort=False).sum()
    promoters = (
        o.loc[dist & in_period, ["shop_id", "promoter_id"]]
        .dropna()
        .groupby("shop_id", sort=False)["promoter_id"]
        .nunique()
        .rename("distribution_promoters")
    )
    first = (
        o.loc[dist & in_90d, ["shop_id", "buyer_id", "order_time"]]
        .groupby(["shop_id", "buyer_id"], sort=False)["order_time"]
        .min()
        .rename("first_time")
    )
    then = (
        o.loc[self_live & in_period, ["shop_id", "buyer_id", "order_time"]]
        .groupby(["shop_id", "buyer_id"], sort=False)["order_time"]
        .max()
        .rename("then_time")
    )
    pairs = pd.concat([first, then], axis=1, join="inner").reset_index()
    conv = (
        pairs[pairs["then_time"] > pairs["first_time"]]
        .groupby("shop_id", sort=False)
        .size()
        .rename("converted_buyers")
    )
    order_shops = o["shop_id"].dropna().unique()
    del o, parts

    lv_columns = ["shop_id", "host_type", "start_time", "end_time", "duration_minutes", "new_followers"]
    lv = _read(data_dir / "livestreams.parquet", lv_columns, "start_time", p_start, p_end)
    minutes = lv["duration_minutes"].astype("float64")
    lv["minutes"] = minutes.fillna((lv["end_time"] - lv["start_time"]).dt.total_seconds() / 60.0)
    self_lv = lv[(lv["host_type"] == "self").fillna(False)]
    long = self_lv[self_lv["minutes"] >= 30]
    live = pd.concat(
        [
            long.assign(day=long["start_time"].dt.normalize())
            .groupby("shop_id", sort=False)["day"]
            .nunique()
            .rename("live_days"),
            (self_lv.groupby("shop_id", sort=False)["minutes"].sum() / 60.0).rename("live_hours"),
            long.assign(week=long["start_time"].dt.to_period("W-SUN").dt.start_time)
            .groupby("shop_id", sort=False)["week"]
            .nunique()
            .rename("live_weeks"),
            self_lv.groupby("shop_id", sort=False)["new_followers"].sum().rename("new_followers"),
        ],
        axis=1,
    )

    rv_columns = ["shop_id", "quality_score", "logistics_score", "service_score", "review_time", "complaint"]
    rv = _read(data_dir / "reviews.parquet", rv_columns, "review_time", d90_start, p_end)
    rv["negative"] = (rv["quality_score"] <= 2).fillna(False).astype("float64")
    rv["complained"] = rv["complaint"].fillna(False).astype("float64")
    rev = rv.groupby("shop_id", sort=False).agg(
        reviews_90d=("review_time", "size"),
        quality_avg_90d=("quality_score", "mean"),
        logistics_avg_90d=("logistics_score", "mean"),
        service_avg_90d=("service_score", "mean"),
        negative_rate_90d=("negative", "mean"),
        complaint_rate_90d=("complained", "mean"),
    )

    seen = [order_shops, lv["shop_id"].dropna().unique(), rv["shop_id"].dropna().unique()]
    shops = pd.Index(pd.unique(np.concatenate(seen)))
    m = pd.DataFrame(index=shops).join([live, ord_, promoters, conv, rev], how="left")
    count_like = [
        "live_days", "live_hours", "live_weeks", "new_followers", "distribution_gmv",
        "distribution_promoters", "distribution_orders_90d", "self_live_gmv", "self_live_gmv_prev",
        "self_gmv_all", "converted_buyers", "reviews_90d",
    ]  # fmt: skip
    for c in count_like:
        m[c] = m[c].astype("float64").fillna(0.0)
    m["self_live_growth"] = (m["self_live_gmv"] - m["self_live_gmv_prev"]) / np.maximum(
        m["self_live_gmv_prev"], 1000.0
    )
    total = m["distribution_gmv"] + m["self_gmv_all"]
    m["distribution_share"] = (m["distribution_gmv"] / total).where(total != 0)
    valid_90d = m["valid_orders_90d"].astype("float64")
    returns_90d = m["quality_returns_90d"].astype("float64")
    m["quality_return_rate_90d"] = (returns_90d / valid_90d).where(valid_90d > 0)
    m = m[list(METRICS)].astype("float64")
    m.index.name = "shop_id"
    return m.sort_index().reset_index()


def main(argv: list[str] | None = None) -> int:
    """Compute the metrics and write them as CSV (stdout or -o FILE)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, required=True, help="directory of the Parquet exports")
    parser.add_argument("--month", default="2023-05")
    parser.add_argument("-o", "--output", type=Path, help="CSV file to write [default: stdout]")
    args = parser.parse_args(argv)
    frame = merchant_metrics(args.data, args.month)
    frame.to_csv(args.output if args.output is not None else sys.stdout, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
