"""The sample generator: byte-stable output, Chinese exports, the checked-in sample_data and its archetypes,
rows independent of how blocks are written, and a platform's shape at a medium size."""

from __future__ import annotations

import csv
import importlib.util
import io
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from chuanliu_cli import sample
from chuanliu_cli.errors import UsageError
from chuanliu_cli.sample import FILE_STEMS, ZH_VALUES, generate_sample
from chuanliu_cli.schema import TABLES

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DATA = REPO / "sample_data"
GATES = ("distribution_history", "stable_live", "store_experience", "active")


def _load_reference() -> ModuleType:
    """benchmarks/ is not a package; load the hand-written SQL reference by path."""
    path = REPO / "benchmarks" / "reference_merchant.py"
    spec = importlib.util.spec_from_file_location("reference_merchant", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reference() -> ModuleType:
    return _load_reference()


@pytest.fixture(scope="module")
def merchants(reference: ModuleType) -> list[dict[str, Any]]:
    """The reference merchant scorecard of the checked-in sample for its end month."""
    rows: list[dict[str, Any]] = reference.score_directory(SAMPLE_DATA, "2023-05", "merchant")
    return rows


def _failed(row: dict[str, Any]) -> set[str]:
    return set(filter(None, row["failed_gates"].split(",")))


def _read_all(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.mark.parametrize(
    ("fmt", "headers", "encoding", "merchants"),
    [
        ("csv", "en", "utf-8", 60),
        ("csv", "zh", "gb18030", 60),
        ("parquet", "en", "utf-8", 60),
        ("parquet", "zh", "utf-8", 24),
        ("xlsx", "en", "utf-8", 24),
        ("xlsx", "zh", "utf-8", 24),
    ],
)
def test_same_options_give_identical_bytes(
    tmp_path: Path, fmt: Any, headers: Any, encoding: Any, merchants: int
) -> None:
    options = {"merchants": merchants, "headers": headers, "encoding": encoding, "fmt": fmt}
    first = generate_sample(tmp_path / "a", **options)
    generate_sample(tmp_path / "b", **options)
    assert sorted(first) == ["livestreams", "orders", "reviews", "shops"]
    assert [p.name for p in first.values()] == [f"{FILE_STEMS[headers][t]}.{fmt}" for t in first]
    assert _read_all(tmp_path / "a") == _read_all(tmp_path / "b")


def test_seed_changes_the_data(tmp_path: Path) -> None:
    a = generate_sample(tmp_path / "a", merchants=12, seed=1)
    b = generate_sample(tmp_path / "b", merchants=12, seed=2)
    assert a["orders"].read_bytes() != b["orders"].read_bytes()


def test_sample_data_is_the_default_output(tmp_path: Path) -> None:
    """`sample_data/` must be regenerated (generate_sample(Path("sample_data"))) whenever the generator changes."""
    generate_sample(tmp_path)
    fresh = _read_all(tmp_path)
    checked_in = _read_all(SAMPLE_DATA)
    assert sorted(checked_in) == sorted(fresh)
    for name, data in fresh.items():
        assert checked_in[name] == data, f"sample_data/{name} is stale: regenerate it"


def test_sample_data_size_is_bounded() -> None:
    total = sum(p.stat().st_size for p in SAMPLE_DATA.iterdir())
    assert 1_000_000 < total < 5_000_000


def test_zh_headers_are_the_schema_aliases_in_gb18030(tmp_path: Path) -> None:
    paths = generate_sample(tmp_path, merchants=12, headers="zh", encoding="gb18030")
    for name, path in paths.items():
        raw = path.read_bytes()
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")  # really GB18030, not UTF-8 that happens to decode
        rows = list(csv.reader(io.StringIO(raw.decode("gb18030"))))
        table = TABLES[name]
        # (promoter_name and a review's cheat marker are optional columns the sample does not write)
        generated = [c for c in table.columns if not c.derived and c.name not in ("promoter_name", "cheat")]
        assert rows[0] == [c.aliases[0] for c in generated]
        # Every enumeration value is a Chinese value that the schema maps back to a canonical one.
        for column, mapping in ZH_VALUES.items():
            if column not in table.names:
                continue
            index = rows[0].index(table.column(column).aliases[0])
            seen = {r[index] for r in rows[1:] if r[index]}
            assert seen <= set(mapping.values()), (name, column, seen)


@pytest.mark.parametrize("column", sorted(ZH_VALUES))
def test_zh_values_map_back_through_the_schema(column: str) -> None:
    schema_column = next(t.column(column) for t in TABLES.values() if column in t.names)
    for canonical, chinese in ZH_VALUES[column].items():
        assert schema_column.values[chinese] == canonical


def test_orders_option_gives_that_many_orders(tmp_path: Path) -> None:
    paths = generate_sample(tmp_path, merchants=30, orders=20_000)
    lines = paths["orders"].read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 + 20_000
    reviews = len(paths["reviews"].read_text(encoding="utf-8").splitlines()) - 1
    assert 0.12 * 20_000 < reviews < 0.3 * 20_000


def test_xlsx_refuses_more_rows_than_a_sheet_holds(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="XLSX"):
        generate_sample(tmp_path / "out", fmt="xlsx", orders=1_100_000)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "options",
    [{"merchants": 0}, {"months": 0}, {"orders": -1}, {"end": "2023-13"}, {"end": "May"}],
)
def test_bad_options_are_usage_errors(tmp_path: Path, options: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        generate_sample(tmp_path, **options)


def test_parquet_holds_the_same_data_as_csv(tmp_path: Path, reference: ModuleType) -> None:
    paths = generate_sample(tmp_path, merchants=24, fmt="parquet")
    generate_sample(tmp_path / "csv", merchants=24)
    from_parquet = reference.score_directory(paths["orders"].parent, "2023-05")
    from_csv = reference.score_directory(tmp_path / "csv", "2023-05")
    assert from_parquet == from_csv


def test_identifiers_boundaries_and_completeness() -> None:
    """Text ids (16-digit order numbers, some with a leading zero), the first/last second, a complete period."""
    import duckdb

    con = duckdb.connect()
    orders = f"read_csv('{SAMPLE_DATA / 'orders.csv'}', all_varchar = true)"
    ids = con.execute(f"select order_id from {orders}").fetchall()
    assert all(len(i) == 16 and i.isdigit() for (i,) in ids)
    assert any(i.startswith("0") for (i,) in ids)
    assert len({i for (i,) in ids}) == len(ids)
    times = {t for (t,) in con.execute(f"select order_time from {orders}").fetchall()}
    assert {"2023-05-01 00:00:00", "2023-05-31 23:59:59"} <= times
    assert max(times) == "2023-05-31 23:59:59"
    assert min(times) >= "2023-03-01 00:00:00"
    for table, column in (
        ("orders", "order_time"),
        ("reviews", "review_time"),
        ("livestreams", "start_time"),
    ):
        last = con.execute(
            f"select max({column}) from read_csv('{SAMPLE_DATA / (table + '.csv')}')"
        ).fetchone()
        assert last is not None and str(last[0]).startswith("2023-05-31"), table


def test_every_gate_fails_for_some_merchant(merchants: list[dict[str, Any]]) -> None:
    for gate in GATES:
        assert any(_failed(r) == {gate} for r in merchants), f"no merchant fails only {gate}"
    assert any(len(_failed(r)) >= 2 for r in merchants)


def test_every_tier_has_eligible_merchants(merchants: list[dict[str, Any]]) -> None:
    eligible = [r for r in merchants if r["eligible"]]
    tiers = {r["tier"] for r in eligible}
    assert {"S", "A", "B", "C", None} <= tiers  # None: eligible but below 35
    assert len(eligible) >= 30


def test_small_stores_have_no_store_experience(merchants: list[dict[str, Any]]) -> None:
    null = [r for r in merchants if r["store_experience"] is None]
    assert null and all(r["reviews_90d"] < 20 for r in null)
    assert any(r["eligible"] for r in null)


def test_conversion_and_promoters_are_non_trivial(
    merchants: list[dict[str, Any]], reference: ModuleType
) -> None:
    assert max(r["converted_buyers"] for r in merchants) >= 30
    promoters = reference.score_directory(SAMPLE_DATA, "2023-05", "promoter")
    assert {"A", "B", "C"} <= {p["tier"] for p in promoters if p["eligible"]}
    # 1e-9 below 4.0: the gate's exact arithmetic passes a reputation of exactly 4, which the reference's
    # floats can compute as 3.9999999999999996.
    bad = [p for p in promoters if p["reviews_90d"] >= 10 and p["reputation"] < 4.0 - 1e-9]
    assert bad and all("reputation" in p["failed_gates"] for p in bad)
    assert max(p["carried_merchants"] for p in promoters) >= 5


def test_rows_do_not_depend_on_how_blocks_are_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three generator blocks written in one go, or a write every few thousand orders: the same bytes."""
    options: dict[str, Any] = {"merchants": 2 * sample._BLOCK + 100, "orders": 60_000}
    generate_sample(tmp_path / "one", **options)
    monkeypatch.setattr(sample, "_CHUNK_ORDERS", 5_000)
    generate_sample(tmp_path / "many", **options)
    assert _read_all(tmp_path / "one") == _read_all(tmp_path / "many")


def test_the_cast_keeps_its_shops_and_the_leader() -> None:
    """The first 60 merchants: the documented names, the leader on top, the idle shop without any row."""
    shops = (SAMPLE_DATA / "shops.csv").read_text(encoding="utf-8")
    assert "ks700055,和语数码家电旗舰店,数码家电,zt880055" in shops
    assert "ks700001,云源珠宝文玩旗舰店,珠宝文玩,zt880001" in shops
    for table in ("orders", "reviews", "livestreams"):
        assert "ks700060" not in (SAMPLE_DATA / f"{table}.csv").read_text(encoding="utf-8"), table


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """20,000 merchants, 400,000 orders: per-merchant counts and the sizes of the id spaces."""
    import polars as pl

    out = tmp_path_factory.mktemp("medium")
    paths = generate_sample(out, merchants=20_000, orders=400_000, fmt="parquet")
    orders = pl.read_parquet(paths["orders"])
    sessions = pl.read_parquet(paths["livestreams"])
    reviews = pl.read_parquet(paths["reviews"])
    return {
        "orders": orders,
        "per_shop": orders.group_by("shop_id").len()["len"].sort(descending=True),
        "sessions": sessions,
        "reviews": reviews,
        "shops": pl.read_parquet(paths["shops"]),
    }


def test_medium_sample_has_heavy_tailed_merchants(medium: dict[str, Any]) -> None:
    per_shop = medium["per_shop"]
    assert medium["orders"].height == 400_000
    assert medium["shops"].height == 20_000 and 18_000 < per_shop.len() <= 20_000
    median = per_shop.median()
    assert 5 <= median <= 30  # a few dozen orders over three months
    assert per_shop[0] > 30 * median  # the largest shops sell far more than a typical one
    assert per_shop.head(per_shop.len() // 100).sum() > 0.08 * 400_000  # the top 1 % hold > 8 %


def test_medium_sample_counts_are_proportional(medium: dict[str, Any]) -> None:
    import polars as pl

    orders, sessions, reviews = medium["orders"], medium["sessions"], medium["reviews"]
    promoters = orders["promoter_id"].drop_nulls().n_unique()
    assert 3_000 < promoters <= 10_000  # half the merchants are promoters; most of them sell
    assert 3 * 20_000 < orders["item_id"].n_unique() < 8 * 20_000  # about five products a shop
    assert 0.15 < reviews.height / orders.height < 0.25
    assert 5 * 20_000 < sessions.height < 15 * 20_000  # a few sessions per shop and month
    hosts = sessions.group_by("host_type").len()
    assert set(hosts["host_type"]) == {"self", "promoter"}
    # identifiers are unique and every review points at an order of the same shop
    assert orders["order_id"].n_unique() == orders.height
    assert reviews["review_id"].n_unique() == reviews.height
    joined = reviews.join(orders.select("order_id", pl.col("shop_id").alias("o")), on="order_id")
    assert joined.height == reviews.height and (joined["shop_id"] == joined["o"]).all()
