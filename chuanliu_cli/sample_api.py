"""`chuanliu sample --format api`: the sample dataset written as saved responses of the 快手电商开放平台.

The dataset is the one `sample` writes in any format (it is generated once, as Parquet with canonical
columns, in a temporary directory) and is converted, row for row, into what an integrator saves from the open
platform, one response a line (JSON lines), 100 rows a page with a cursor (SPEC §2 "Open-platform responses"):

- orders as `open.order.cursor.list` pages: amounts in integer fen, times in epoch milliseconds, status codes,
  cpsType 1 (self) or 2 (distribution), refunds in orderRefundList. The pages name no promoter: the
  distribution orders' promoters are in the cps list, as marks that `load` applies to them;
- the distribution orders as one `open.seller.order.cps.list` file (oid, distributorId, the trade amount);
- reviews as `open.comment.list.get` pages, without sellerId (a comment takes its order's shop at load time).

What the responses cannot carry is said, not lost: they do not say where an order was sold, so the orders are
written in one file per carrier (orders-live.jsonl, …) with a mapping file each (carrier-live.yaml:
`defaults: {orders: {carrier: live}}`) to load them with; an order the CSV export calls `refunded` is written
with status 70 and a refund of its whole amount (the platform's status codes have no refunded state; chuanliu
counts both alike: a valid order, net 0); commissions are left out. Livestreams and shops, which these methods
do not cover, are written as CSV beside them (in the `--headers` and `--encoding` given), exactly as the csv
format writes them. The same options always give the same bytes.
"""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chuanliu_cli.errors import UsageError

if TYPE_CHECKING:
    import polars as pl

#: Rows per response page (the platform's largest page size).
PAGE_ROWS = 100
#: The local time zone of the sample's naive times (and of `load`'s default), for epoch milliseconds.
TIMEZONE = "Asia/Shanghai"
CARRIERS = ("live", "video", "card", "other")
#: The platform's order status codes (SPEC §2); `refunded` has none (see the module docstring).
STATUS_CODES = {"pending": 10, "paid": 30, "shipped": 40, "received": 50, "completed": 70, "closed": 80}
STATUS_CODES["refunded"] = STATUS_CODES["completed"]
#: cpsOrderStatus of a distribution order (30 paid, 50 received, 60 settled, 80 invalid).
CPS_STATUS = {"pending": 30, "paid": 30, "shipped": 30, "received": 50, "completed": 60}

#: generate_sample with the dataset's own options bound: (outdir, headers=, encoding=, fmt=, late_refunds=).
Generate = Callable[..., dict[str, Path]]


def write_api_sample(outdir: Path, headers: str, encoding: str, generate: Generate) -> dict[str, Path]:
    """Write the dataset `generate` makes as saved open-platform responses into `outdir`; returns what was
    written, name → path (orders-<carrier>, carrier-<carrier> mapping files, cps_orders, comments,
    livestreams, shops; late_refunds-<carrier> with `--late-refunds`)."""
    written: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="chuanliu-sample-api-") as tmp:
        # the tables the open platform does not cover, exactly as the csv format writes them (first: it
        # checks --headers and --encoding before anything is written)
        beside = generate(
            Path(tmp) / "csv", headers=headers, encoding=encoding, fmt="csv", late_refunds=False
        )
        source = generate(Path(tmp) / "parquet", headers="en", encoding="utf-8", fmt="parquet")
        outdir.mkdir(parents=True, exist_ok=True)
        for name in ("livestreams", "shops"):
            written[name] = outdir / beside[name].name
            shutil.copyfile(beside[name], written[name])
        orders = _OrderFiles(outdir, "orders")
        cps = _Pages(outdir / "cps_orders.jsonl", "cpsOrderList", "pcursor")
        for frame in _frames(source["orders"]):
            for carrier, element, mark in _orders(frame):
                orders.add(carrier, element)
                if mark is not None:
                    cps.add(mark, str(mark["oid"]))
        written.update(orders.close())
        written["cps_orders"] = cps.close()
        comments = _Pages(outdir / "comments.jsonl", "rootComment", "pcursor")
        for frame in _frames(source["reviews"]):
            for element in _comments(frame):
                comments.add(element, str(element["commentId"]))
        written["comments"] = comments.close()
        if "late_refunds" in source:
            late = _OrderFiles(outdir / "late", "orders_late_refunds")
            for frame in _frames(source["late_refunds"]):
                for carrier, element, _ in _orders(frame):
                    late.add(carrier, element)
            written.update({f"late_refunds-{k.split('-', 1)[1]}": v for k, v in late.close().items()})
    for carrier in CARRIERS:
        path = outdir / f"carrier-{carrier}.yaml"
        path.write_text(_MAPPING.format(carrier=carrier), encoding="utf-8")
        written[f"carrier-{carrier}"] = path
    first = ("orders-", "carrier-", "cps_orders", "comments", "livestreams", "shops", "late_refunds-")
    return dict(
        sorted(written.items(), key=lambda kv: next(i for i, p in enumerate(first) if kv[0].startswith(p)))
    )


_MAPPING = """\
# open.order.cursor.list responses do not say where an order was sold: the orders of
# orders-{carrier}.jsonl were sold by {carrier}. Load them with this file:
#   chuanliu load orders-{carrier}.jsonl --mapping carrier-{carrier}.yaml
defaults:
  orders:
    carrier: {carrier}
"""


# --- pages -------------------------------------------------------------------------------------------------


class _Pages:
    """Responses of one method, one a line, `PAGE_ROWS` elements each; each page's cursor names the next
    (the base64 of its last row's id), the last page's is `nomore`. A page is written once the next row
    arrives, so that the last one is known."""

    def __init__(self, path: Path, list_key: str, cursor_key: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("w", encoding="utf-8", newline="\n")
        self._list_key, self._cursor_key = list_key, cursor_key
        self._page: list[dict[str, Any]] = []
        self._keys: list[str] = []

    def add(self, element: dict[str, Any], key: str) -> None:
        if len(self._page) == PAGE_ROWS:
            self._flush(base64.b64encode(self._keys[-1].encode("ascii")).decode("ascii"))
        self._page.append(element)
        self._keys.append(key)

    def _flush(self, cursor: str) -> None:
        data = {self._cursor_key: cursor, self._list_key: self._page}
        self._file.write(json.dumps({"result": 1, "msg": "success", "data": data}, ensure_ascii=False) + "\n")
        self._page, self._keys = [], []

    def close(self) -> Path:
        if self._page or self._file.tell() == 0:  # (an empty list is one empty last page)
            self._flush("nomore")
        self._file.close()
        return self.path


class _OrderFiles:
    """Order pages in one file per carrier (`<stem>-<carrier>.jsonl`), the carriers that occur only."""

    def __init__(self, folder: Path, stem: str) -> None:
        self._folder, self._stem = folder, stem
        self._pages: dict[str, _Pages] = {}

    def add(self, carrier: str, element: dict[str, Any]) -> None:
        pages = self._pages.get(carrier)
        if pages is None:
            path = self._folder / f"{self._stem}-{carrier}.jsonl"
            pages = self._pages[carrier] = _Pages(path, "orderList", "cursor")
        pages.add(element, str(element["orderBaseInfo"]["oid"]))

    def close(self) -> dict[str, Path]:
        return {f"{self._stem}-{c}": self._pages[c].close() for c in CARRIERS if c in self._pages}


# --- rows --------------------------------------------------------------------------------------------------


def _frames(path: Path) -> Iterator[pl.DataFrame]:
    """A Parquet file of the dataset a batch at a time, times as epoch ms and amounts as integer fen."""
    import polars as pl
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as f:
        for batch in f.iter_batches(batch_size=50_000):
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)
            yield frame.with_columns(
                [
                    pl.col(c).dt.replace_time_zone(TIMEZONE).dt.epoch("ms")
                    for c, t in frame.schema.items()
                    if isinstance(t, pl.Datetime)
                ]
                + [
                    (pl.col(c) * 100).cast(pl.Int64)
                    for c, t in frame.schema.items()
                    if isinstance(t, pl.Decimal)
                ]
            )


def _id(text: str | None) -> int | str | None:
    """An id as the platform writes it: a JSON integer when it is one (no leading zero), else a string."""
    if text is not None and text.isdigit() and str(int(text)) == text:
        return int(text)
    return text


def _orders(frame: pl.DataFrame) -> Iterator[tuple[str, dict[str, Any], dict[str, Any] | None]]:
    """Each order as (carrier, an element of data.orderList, its cps row or None)."""
    for o in frame.iter_rows(named=True):
        status = o["status"]
        if status not in STATUS_CODES or o["carrier"] not in CARRIERS or o["paid_amount"] is None:
            raise UsageError(f"order {o['order_id']}: cannot write it as an open-platform order: {o}")
        paid, refund = o["paid_amount"], o["refund_amount"]
        if refund is None and status == "refunded":
            refund = paid  # (a full refund whose amount the export leaves empty)
        refunds = []
        if refund is not None and refund > 0:
            refunds.append({"refundFee": refund, "refundReason": o["refund_reason"]})
        distribution = o["sale_mode"] == "distribution"
        base = {
            "oid": _id(o["order_id"]),
            "sellerId": _id(o["shop_id"]),
            "buyerOpenId": o["buyer_id"],
            "createTime": o["order_time"],
            "payTime": 0 if status == "pending" else o["order_time"],
            "totalFee": paid,
            "discountFee": 0,
            "expressFee": 0,
            "status": STATUS_CODES[status],
            "cpsType": 2 if distribution else 1,
        }
        item = {"itemId": _id(o["item_id"]), "itemTitle": o["item_name"], "num": o["quantity"]}
        element: dict[str, Any] = {"orderBaseInfo": base, "orderItemInfo": item, "orderRefundList": refunds}
        mark = None
        if o["promoter_id"] is not None:
            if not distribution:  # (the sample has none: a self-sold order keeps its promoter in its page)
                element["orderCpsInfo"] = {"distributorId": _id(o["promoter_id"])}
            else:
                mark = {
                    "oid": base["oid"],
                    "itemId": item["itemId"],
                    "distributorId": _id(o["promoter_id"]),
                    "promoterId": _id(o["promoter_id"]),
                    "orderTradeAmount": paid,
                    "cpsOrderStatus": 80
                    if refund == paid or status == "closed"
                    else CPS_STATUS.get(status, 30),
                    "settlementSuccessTime": o["order_time"] if status == "completed" else 0,
                    "refundTime": 0,
                }
        yield o["carrier"], element, mark


def _comments(frame: pl.DataFrame) -> Iterator[dict[str, Any]]:
    """Each review as an element of data.rootComment (no sellerId: its order's shop)."""
    for r in frame.iter_rows(named=True):
        yield {
            "commentId": _id(r["review_id"]),
            "orderId": _id(r["order_id"]),
            "itemId": _id(r["item_id"]),
            "qualityScore": r["quality_score"],
            "serviceScore": r["service_score"],
            "logisticsScore": r["logistics_score"],
            "createTime": r["review_time"],
            "complainStatus": 1 if r["complaint"] else 0,
            "cheatStatus": 0,
            "valid": True,
        }
