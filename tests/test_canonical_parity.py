"""One canonicalization for both engines: DuckDB (the loader) and Spark give the same rows and rejects.

Every file goes through the loader into an in-memory DuckDB and through the Spark canonicalization, and
the two must agree on every valid row (every column, same values and types) and on every rejected row
(same line or key, same reason).

- tests/data/parity holds a file per table with canonical headers and every accepted and rejected cell
  form (Excel serial dates, epoch ms, ISO with offset or Z, `2023/5/1 20:00`, 万 and ¥ amounts, `-`,
  Chinese enum values, open-platform status codes, ids with leading zeros, 16-digit ids, booleans,
  out-of-range and impossible times, refund > paid, end before start, both end and duration empty, control
  characters and long values in a reason, ids protected from or damaged by spreadsheets (`="..."`, a leading
  `'`, tabs, no-break and ideographic spaces, `.0`, scientific notation), durations with units (1小时20分,
  1时20分钟, 80分钟, 01:20:00, 1:20, 4800秒, 1.5小时), sessions over 24 hours, a duration that disagrees with
  the times (warned on both), ...). Spark reads these with its own CSV reader, through
  `SparkEngine.open` (valid tables and reject counts) and `read_checked_tables`.
- The corpus (tests/data/exports, tests/data/hostile) has Chinese headers, GB18030, spreadsheets and JSON,
  which the Spark engine does not read (it reads canonical headers from CSV and Parquet). Its files are
  covered through the loader's own readers: their cells (after header mapping and the readers' cleaning,
  with each row's line) become a Spark DataFrame with canonical names, which `engines.spark.canonical`
  converts. So both engines convert the very same cells, and rejects compare by line.

Not applicable (the loader refuses the whole file, so there are no rows to compare):
open_platform.yaml (a mapping, not data); billion_laughs.xlsx, external_entity.xlsx,
legacy_ole_or_encrypted.xlsx, html_table_named_xlsx.xlsx, zip_without_workbook.xlsx, truncated.xlsx,
truncated.parquet, garbage_after_magic.parquet, damaged_pages.parquet, garbage.csv, json_named_csv.csv,
utf16le_no_bom.csv, nul_bytes.csv, truncated_gb18030.csv, empty.csv, bom_only.csv,
whitespace_only.csv, missing_required_column.csv, duplicate_headers.csv, duplicate_alias_headers.csv,
struct_amounts.parquet, duration_times.parquet (refused before any row is read: bad bytes, not a workbook,
no header, a missing or repeated column, nested or interval values).

Known difference: a floating-point cell (double_amounts.parquet, double_times.parquet) that is rejected is
quoted in its reason as each engine writes a double as text (DuckDB `nan`, `1e+300`; Spark `NaN`,
`1.0E300`): for those files the reasons compare with the quoted value left out. Which files are refused is decided by running the loader:
`test_files_left_out_are_refused_by_the_loader` checks that each listed file is refused, and every
other file is compared.
"""

from __future__ import annotations

import csv
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from chuanliu_cli.errors import ChuanliuError
from chuanliu_cli.ingest.loader import LoadOptions, _prepare, discover, load_files, table_for_file
from chuanliu_cli.schema import TABLES
from chuanliu_cli.store.database import memory_database
from tests.conftest import REPO

pytestmark = pytest.mark.spark

DATA = REPO / "tests" / "data"
PARITY = DATA / "parity"
SAMPLE = REPO / "sample_data"
CORPUS = sorted(
    p
    for folder in ("exports", "hostile")
    for p in (DATA / folder).iterdir()
    if p.is_file() and p.suffix != ".py"
)
REFUSED = {
    "open_platform.yaml",
    "billion_laughs.xlsx",
    "external_entity.xlsx",
    "legacy_ole_or_encrypted.xlsx",
    "html_table_named_xlsx.xlsx",
    "zip_without_workbook.xlsx",
    "truncated.xlsx",
    "truncated.parquet",
    "garbage_after_magic.parquet",
    "damaged_pages.parquet",
    "garbage.csv",
    "json_named_csv.csv",
    "utf16le_no_bom.csv",
    "nul_bytes.csv",
    "truncated_gb18030.csv",
    "empty.csv",
    "bom_only.csv",
    "whitespace_only.csv",
    "missing_required_column.csv",
    "duplicate_headers.csv",
    "duplicate_alias_headers.csv",
    "duration_times.parquet",
    "struct_amounts.parquet",
}
APPLICABLE = [p for p in CORPUS if p.name not in REFUSED]
NOT_APPLICABLE = [p for p in CORPUS if p.name in REFUSED]
OPTIONS = LoadOptions(max_reject_rate=1.0)


@pytest.fixture(autouse=True)
def _spark_keeps_every_reject(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cells here are mostly bad on purpose: both engines are compared past the reject limits."""
    monkeypatch.setattr("chuanliu_cli.engines.spark.REJECT_LIMITS", OPTIONS)


#: Files whose rejected floating-point cells each engine writes as text in its own way (see above).
DOUBLE_TEXT = {"double_amounts.parquet", "double_times.parquet"}


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from chuanliu_cli.engines.spark import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()


def _table(path: Path) -> str:
    # (hostile files are orders, as tests/test_hostile_files.py loads them, unless named for a table)
    return table_for_file(path) or "orders"


def _duckdb(items: list[tuple[str, Path]]) -> tuple[Any, list[tuple[str, str, str]]]:
    """The loader into an in-memory database: the connection, and every reject as (file, line, reason)."""
    db = memory_database()
    load_files(db, items, OPTIONS)
    rejects = db.con.execute("SELECT file, line, reason FROM rejected_rows").fetchall()
    return db.con, rejects


def _duck_table(con: Any, name: str) -> pl.DataFrame:
    # the canonical columns (the database also keeps the integrity marks of its orders)
    columns = ", ".join(f'"{c}"' for c in TABLES[name].names)
    return con.sql(f"SELECT {columns} FROM {name}").pl().sort(TABLES[name].key, nulls_last=True)


def _assert_same(ours: pl.DataFrame, theirs: pl.DataFrame, what: str) -> None:
    assert ours.schema == theirs.schema, what
    assert ours.height == theirs.height, what
    for col in ours.columns:
        assert ours[col].to_list() == theirs[col].to_list(), f"{what}: column {col}"


# --- the purpose-made files, read by Spark itself ------------------------------------------------------------


def _keys_by_line(path: Path, key: str) -> dict[int, str | None]:
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return {i + 2: (r[key].strip() or None) for i, r in enumerate(rows)}


def test_every_cell_form_converts_alike(spark: Any) -> None:
    from chuanliu_cli.engines.spark import SparkEngine, SparkSettings, read_checked_tables, to_polars

    con, duck_rejects = _duckdb(discover(PARITY))
    with SparkEngine.open(SparkSettings(data=str(PARITY)), spark) as engine:
        for name in TABLES:
            ours = to_polars(engine.tables[name]).sort(TABLES[name].key, nulls_last=True)
            _assert_same(ours, _duck_table(con, name), name)
        counts = {r.table: r.count for r in engine.rejected}
        examples = {(r.table, r.key, r.reason) for r in engine.rejects}
    checked = read_checked_tables(spark, str(PARITY), {}, cache=False)
    duck: dict[str, list[tuple[str | None, str]]] = {}
    for file, line, reason in duck_rejects:
        table = table_for_file(Path(file))
        assert table is not None
        keys = _keys_by_line(PARITY / file, TABLES[table].key)
        duck.setdefault(table, []).append((keys[int(line.split()[-1])], reason))
    for name, table in TABLES.items():
        frame = checked[name].cached
        assert frame is not None  # CSV tables are kept
        rows = frame.where("`__reason` IS NOT NULL").select(table.key, "__reason").collect()
        ours = sorted(((r[0], r[1]) for r in rows), key=repr)
        theirs = sorted(duck.get(name, []), key=repr)
        assert ours == theirs, name
        assert counts.get(name, 0) == len(theirs), name
        frame.unpersist()
    assert {(t, k, r) for t, k, r in examples} <= {(t, k, r) for t in duck for k, r in duck[t]}
    assert sum(len(v) for v in duck.values()) == 45  # every rejected form of the files is there
    con.close()


def _without_source(warnings: list[str]) -> list[str]:
    # (Spark's own CSV reading does not number lines: its examples name the key alone)
    return sorted(re.sub(r"line \d+ ", "", w.split(": ", 1)[1]) for w in warnings)


def test_warnings_on_kept_rows_alike(spark: Any) -> None:
    """A duration that disagrees with its session's times is kept and warned, by both engines alike."""
    from chuanliu_cli.engines.spark import SparkEngine, SparkSettings

    db = memory_database()
    results = load_files(db, discover(PARITY), OPTIONS)
    duck = [w for r in results for w in r.warnings if "differs from end_time" in w]
    with SparkEngine.open(SparkSettings(data=str(PARITY)), spark) as engine:
        ours = engine.warnings
        assert set(ours) <= set(engine.reject_warnings())
    assert len(duck) == 1 and "(live_id d008): duration_minutes 90, end_time − start_time 80" in duck[0]
    assert _without_source(ours) == _without_source(duck)


def _compare_file(spark: Any, table: str, path: Path, raw: Any) -> None:
    """The loader and `engines.spark.canonical` over Spark's own reading of `path` agree on rows and rejects."""
    from chuanliu_cli.engines.spark import canonical, to_polars

    con, duck_rejects = _duckdb([(table, path)])
    converted = to_polars(canonical(raw, TABLES[table], OPTIONS.timezone, path.name, notes=[]))
    valid = converted.filter(pl.col("__reason").is_null()).drop("__line", "__reason")
    _assert_same(valid.sort(TABLES[table].key), _duck_table(con, table), path.name)
    ours = sorted(converted.filter(pl.col("__reason").is_not_null())["__reason"].to_list())
    assert ours == sorted(reason for _file, _line, reason in duck_rejects)
    con.close()


@pytest.mark.parametrize("header", ["duration_seconds", "直播时长(秒)"])
def test_a_seconds_header_converts_alike(spark: Any, tmp_path: Path, header: str) -> None:
    """Bare numbers under a header naming seconds are seconds on both engines (Spark reads canonical names:
    duration_seconds; the loader's mapping passes its unit with any header, as for the corpus)."""
    path = tmp_path / "livestreams.csv"
    path.write_text(
        f"live_id,shop_id,host_type,start_time,end_time,{header}\n"
        "l1,s1,self,2023-05-01 20:00:00,2023-05-01 21:20:00,4800\n"
        "l2,s1,self,2023-05-01 20:00:00,,90\n"
        "l3,s1,self,2023-05-01 20:00:00,,80分钟\n"
        "l4,s1,self,2023-05-01 20:00:00,,01:20:00\n"
        "l5,s1,self,2023-05-01 20:00:00,,90000\n"
        "l6,s1,self,2023-05-01 20:00:00,,7\n",
        encoding="utf-8",
    )
    if header == "duration_seconds":
        raw = spark.read.csv(str(path), header=True, inferSchema=False)
        _compare_file(spark, "livestreams", path, raw)
    valid, rejects = _spark_rows(spark, "livestreams", path)
    assert valid["duration_minutes"].to_list() == [80.0, 1.5, 80.0, 80.0, 7 / 60]
    assert rejects == [(6, "column duration_minutes: '90000' is longer than 24 hours (1500.0 minutes)")]


def test_typed_parquet_ids_and_durations_convert_alike(spark: Any, tmp_path: Path) -> None:
    """Typed Parquet cells: DOUBLE, DECIMAL and integer ids, string ids with `.0`, integer and double
    durations under duration_minutes and duration_seconds."""
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    orders = tmp_path / "orders.parquet"
    pq.write_table(
        pa.table(
            {
                "order_id": pa.array([2704810274450369.0, 2.0, 3.5, 4.0]),
                "shop_id": pa.array([decimal.Decimal("11.00")] * 4, pa.decimal128(20, 2)),
                "buyer_id": pa.array([12, 13, 14, 15], pa.int64()),
                "item_id": ["6496664491185286.0", " 1.0", None, "1.23457E+15"],
                "sale_mode": ["self"] * 4,
                "order_time": ["2023-05-01 20:00:00"] * 4,
                "paid_amount": ["5"] * 4,
                "status": ["paid"] * 4,
            }
        ),
        orders,
    )
    _compare_file(spark, "orders", orders, spark.read.parquet(str(orders)))
    for column, values in (
        ("duration_minutes", pa.array([80.0, 1500.0, 0.5])),
        ("duration_seconds", pa.array([4800, 90000, 30], pa.int64())),
    ):
        lives = tmp_path / column / "livestreams.parquet"
        lives.parent.mkdir()
        pq.write_table(
            pa.table(
                {
                    "live_id": ["l1", "l2", "l3"],
                    "shop_id": ["s1"] * 3,
                    "host_type": ["self"] * 3,
                    "start_time": ["2023-05-01 20:00:00"] * 3,
                    column: values,
                }
            ),
            lives,
        )
        _compare_file(spark, "livestreams", lives, spark.read.parquet(str(lives)))


def test_excel_serial_order_times_load_alike(spark: Any, tmp_path: Path) -> None:
    """The drift that was: an order_time written as an Excel serial date loads on both, none dropped."""
    from chuanliu_cli.engines.spark import SparkEngine, SparkSettings, to_polars

    for path in SAMPLE.iterdir():
        if path.is_file():
            shutil.copy(path, tmp_path / path.name)
    orders = (tmp_path / "orders.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    header = orders[0].rstrip("\n").split(",")
    at = header.index("order_time")
    serials = ["44986.268380", "45047.5", "45050", "45061.999988", "45077.000012"]
    for i, serial in enumerate(serials, start=1):
        cells = next(csv.reader([orders[i]]))
        cells[at] = serial
        out = csv.StringIO()
        csv.writer(out, lineterminator="\n").writerow(cells)
        orders[i] = out.getvalue()
    (tmp_path / "orders.csv").write_text("".join(orders), encoding="utf-8")
    con, rejects = _duckdb(discover(tmp_path))
    assert not [r for r in rejects if r[0].startswith("orders")]
    with SparkEngine.open(SparkSettings(data=str(tmp_path)), spark) as engine:
        assert engine.tables["orders"].count() == len(orders) - 1
        assert [r for r in engine.rejected if r.table == "orders"] == []
        _assert_same(
            to_polars(engine.tables["orders"]).sort("order_id"), _duck_table(con, "orders"), "orders"
        )
    con.close()


# --- the corpus, cells read by the loader's readers ---------------------------------------------------------


def _spark_rows(spark: Any, table: str, path: Path) -> tuple[pl.DataFrame, list[tuple[int, str]]]:
    """The file's cells as the loader reads them, converted on Spark: valid rows (the last of a repeated
    key, as the loader keeps it) and rejects as (line, reason)."""
    import pyarrow as pa

    from chuanliu_cli.arrays import arrow_text
    from chuanliu_cli.engines.spark import canonical, to_polars

    frames: list[pl.DataFrame] = []
    rejects: list[tuple[int, str]] = []
    for p in _prepare(table, path, OPTIONS):
        names = list(p.columns)
        parts = []
        for batch in p.reader.batches([p.columns[c] for c in names]):
            n = len(batch.lines)
            shape = pa.array([batch.shape_errors.get(k) for k in range(n)], pa.string())
            arrays = [arrow_text(batch.columns[p.columns[c]]) for c in names]
            lines = batch.lines.to_arrow() if isinstance(batch.lines, pl.Series) else batch.lines
            arrays += [lines, shape]
            parts.append(pa.Table.from_arrays(arrays, names=[*names, "__line", "__shape"]))
        if not parts or not sum(t.num_rows for t in parts):
            continue
        raw = spark.createDataFrame(pa.concat_tables(parts))
        converted = to_polars(canonical(raw, TABLES[table], OPTIONS.timezone, p.reader.name, p.tm, notes=[]))
        bad = converted.filter(pl.col("__reason").is_not_null())
        rejects += list(zip(bad["__line"].to_list(), bad["__reason"].to_list(), strict=True))
        frames.append(converted.filter(pl.col("__reason").is_null()))
    key = TABLES[table].key
    if not frames:
        return pl.DataFrame(), rejects
    valid = pl.concat(frames).sort("__line").unique(key, keep="last", maintain_order=True)
    return valid.drop("__line", "__reason").sort(key, nulls_last=True), rejects


@pytest.mark.parametrize("path", APPLICABLE, ids=[p.name for p in APPLICABLE])
def test_corpus_file_converts_alike(spark: Any, path: Path) -> None:
    table = _table(path)
    con, duck_rejects = _duckdb([(table, path)])
    valid, rejects = _spark_rows(spark, table, path)
    duck = _duck_table(con, table)
    if valid.width or duck.height:
        _assert_same(valid, duck, path.name)
    theirs = sorted((int(line.split()[-1]), reason) for _file, line, reason in duck_rejects)
    if path.name in DOUBLE_TEXT:
        rejects = [(line, re.sub("'[^']*'", "'…'", reason)) for line, reason in rejects]
        theirs = [(line, re.sub("'[^']*'", "'…'", reason)) for line, reason in theirs]
    assert sorted(rejects) == theirs
    con.close()


@pytest.mark.parametrize("path", NOT_APPLICABLE, ids=[p.name for p in NOT_APPLICABLE])
def test_files_left_out_are_refused_by_the_loader(path: Path) -> None:
    """The files listed as not applicable are exactly those the loader refuses as a whole."""
    with pytest.raises(ChuanliuError):
        _duckdb([(_table(path), path)])
