"""What every engine shares: the display-name queries of each entity key (shops, items, promoters)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from chuanliu_cli.engines.duckdb import DuckDBEngine
from chuanliu_cli.ingest.loader import LoadOptions, load_files
from chuanliu_cli.store.database import memory_database


def test_promoter_names_come_from_the_latest_order_that_names_them(tmp_path: Path) -> None:
    """达人昵称 of the orders export fills the promoter scorecard's `name` (the latest name wins)."""
    orders = tmp_path / "orders.csv"
    orders.write_text(
        textwrap.dedent(
            """\
            订单号,店铺ID,买家ID,下单时间,实付金额,订单状态,达人ID,达人昵称
            1,s1,b1,2023-05-01 10:00,10,交易成功,dr1,小美
            2,s1,b2,2023-05-02 10:00,10,交易成功,dr1,小美好物
            3,s1,b3,2023-05-02 11:00,10,交易成功,dr2,
            4,s1,b4,2023-05-03 11:00,10,交易成功,,
            """
        ),
        encoding="utf-8",
    )
    db = memory_database()
    try:
        load_files(db, [("orders", orders)], LoadOptions())
        names = DuckDBEngine(db.con).names("promoter_id")
    finally:
        db.con.close()
    assert names is not None
    assert sorted(names.rows()) == [("dr1", "小美好物")]
