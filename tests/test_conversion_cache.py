"""The conversion query of a table is rendered once per mapping content and kept in the cache of
rules/cache.py: another command (a new mapping object, equal in content) reads it back; another mapping
content, timezone or set of columns gets its own."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from chuanliu_cli.ingest import canonical, conversion
from chuanliu_cli.ingest.mapping import default_mapping


@pytest.fixture
def fresh_cache(private_cache: Path) -> Iterator[Path]:
    conversion._RENDERED.clear()
    yield private_cache
    conversion._RENDERED.clear()


def test_an_equal_mapping_reads_the_rendered_query_back(
    fresh_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    present = {"order_id": "VARCHAR", "shop_id": "VARCHAR", "order_time": "VARCHAR", "paid_amount": "VARCHAR"}
    first, names = conversion.conversion_sql(default_mapping().for_table("orders"), present, "Asia/Shanghai")
    assert len(list(fresh_cache.glob("conversion-*.pickle"))) == 1
    conversion._RENDERED.clear()  # as a new process: only the disk cache is left

    def refuse(*args: object) -> str:
        raise AssertionError("rendered again")

    monkeypatch.setattr(canonical, "render_conversion", refuse)
    again, _ = conversion.conversion_sql(default_mapping().for_table("orders"), present, "Asia/Shanghai")
    assert again == first and names[0] == "order_id"


def test_another_mapping_timezone_or_columns_is_rendered_anew(fresh_cache: Path) -> None:
    orders = default_mapping().for_table("orders")
    present = {"order_id": "VARCHAR", "shop_id": "VARCHAR", "order_time": "VARCHAR", "paid_amount": "VARCHAR"}
    base, _ = conversion.conversion_sql(orders, present, "Asia/Shanghai")
    other_zone, _ = conversion.conversion_sql(orders, present, "UTC")
    fewer, _ = conversion.conversion_sql(orders, {k: v for k, v in present.items() if k != "shop_id"}, "UTC")
    defaults = dataclasses.replace(orders, defaults={"carrier": "live"})
    with_default, _ = conversion.conversion_sql(defaults, present, "Asia/Shanghai")
    assert len({base, other_zone, fewer, with_default}) == 4
    assert len(list(fresh_cache.glob("conversion-*.pickle"))) == 4
