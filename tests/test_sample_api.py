"""`sample --format api` (sample_api.py): the sample dataset as saved open-platform responses, which load into
the same reward lists as the CSV exports of the same options."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from chuanliu_cli.api import Session, write_sample
from chuanliu_cli.ingest.formats.openplatform import CPS, ORDERS, sniff

SCORECARDS = ("merchant", "promoter", "product")


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("sample-api")
    write_sample(root / "csv", merchants=20)
    write_sample(root / "api", merchants=20, fmt="api")
    return root / "csv", root / "api"


def _load_api(db: Path, api: Path) -> list[str]:
    """The pages as the docs say to load them: each carrier's orders with its mapping, then the rest (the
    cps list in the middle: the order of loading does not matter)."""
    warnings: list[str] = []
    with Session(db=db) as s:
        for carrier in ("live", "video"):
            result = s.load(None, [api / f"orders-{carrier}.jsonl"], mapping=api / f"carrier-{carrier}.yaml")
            warnings += result.warnings
        warnings += s.load(None, [api / "cps_orders.jsonl", api / "shops.csv"]).warnings
        for carrier in ("card", "other"):
            result = s.load(None, [api / f"orders-{carrier}.jsonl"], mapping=api / f"carrier-{carrier}.yaml")
            warnings += result.warnings
        warnings += s.load(None, [api / "comments.jsonl", api / "livestreams.csv"]).warnings
    return warnings


def _lists(session: Session) -> dict[str, dict[str, Any]]:
    """`eligible --all --format json` of each scorecard, month 2023-05."""
    return {
        card: session.eligible("2023-05", card, record=False, include_ineligible=True).to_dict()
        for card in SCORECARDS
    }


def test_the_pages_give_the_reward_lists_of_the_csv_exports(
    datasets: tuple[Path, Path], tmp_path: Path
) -> None:
    csv, api = datasets
    db = tmp_path / "api.duckdb"
    warnings = _load_api(db, api)
    # no row was rejected, the carrier came from the mappings, and every mark found its order in the end
    assert not [w for w in warnings if "rejected" in w or "no column" in w], warnings
    assert any("cps row(s) name orders that are not loaded yet" in w for w in warnings)  # (card, other)
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM cps_marks ANTI JOIN orders USING (order_id)").fetchall() == [
            (0,)
        ]
    finally:
        con.close()
    with Session(data=csv) as s:
        expected = _lists(s)
    with Session(db=db) as s:
        got = _lists(s)
    for card in SCORECARDS:
        assert got[card]["entities"] == expected[card]["entities"], card
        assert got[card]["totals"] == expected[card]["totals"], card
        assert got[card]["totals"]["eligible"] > 0, card


def test_the_pages_are_what_the_platform_sends(datasets: tuple[Path, Path]) -> None:
    _, api = datasets
    found = [sniff(api / name) for name in ("orders-live.jsonl", "cps_orders.jsonl")]
    assert [f.method if f else None for f in found] == [ORDERS, CPS]
    pages = [
        json.loads(line) for line in (api / "orders-video.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert len(pages) > 1 and all(len(p["data"]["orderList"]) == 100 for p in pages[:-1])
    assert [p["data"]["cursor"] == "nomore" for p in pages] == [False] * (len(pages) - 1) + [True]
    order = pages[0]["data"]["orderList"][0]
    base = order["orderBaseInfo"]
    assert isinstance(base["totalFee"], int) and base["payTime"] > 1_600_000_000_000  # fen, epoch ms
    assert base["cpsType"] in (1, 2) and "orderCpsInfo" not in order  # promoters are in the cps list
    comment = json.loads((api / "comments.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert "sellerId" not in comment["data"]["rootComment"][0]
    mapping = (api / "carrier-live.yaml").read_text(encoding="utf-8")
    assert "carrier: live" in mapping and "--mapping carrier-live.yaml" in mapping


def test_the_same_options_give_the_same_bytes(datasets: tuple[Path, Path], tmp_path: Path) -> None:
    _, api = datasets
    again = write_sample(tmp_path / "again", merchants=20, fmt="api")
    assert sorted(p.name for p in api.iterdir()) == sorted(p.name for p in again.values())
    for path in again.values():
        assert path.read_bytes() == (api / path.name).read_bytes(), path.name


def test_chinese_headers_apply_to_the_csv_beside(invoke: Callable[..., Any], tmp_path: Path) -> None:
    out = invoke("sample", str(tmp_path / "zh"), "--merchants", "3", "--months", "1", "--format", "api",
                 "--headers", "zh", "--encoding", "gb18030")  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "orders-live: " in out.output and "carrier-live: " in out.output
    assert (tmp_path / "zh" / "店铺.csv").read_bytes().decode("gb18030").startswith("店铺ID")
    titles = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "zh").glob("orders-*.jsonl"))
    assert '"itemTitle": "' in titles and not titles.isascii()  # the pages stay UTF-8 JSON, titles unescaped
