"""The Spark engine (pyspark, local mode): the same reward lists, metrics and tables as DuckDB; Spark SQL golden."""

from __future__ import annotations

import json
import math
import os
import shutil
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from chuanliu_cli.engines.duckdb import DuckDBEngine
from chuanliu_cli.errors import DataError, RulesetError
from chuanliu_cli.periods import parse_period
from chuanliu_cli.rules.compiler import compile_scorecard
from chuanliu_cli.rules.model import Ruleset
from chuanliu_cli.rules.parser import default_ruleset_path, load_ruleset, parse_ruleset
from chuanliu_cli.schema import TABLES
from chuanliu_cli.scoring.pipeline import RunResult, compute_metrics, label_columns, score_period
from tests.conftest import REPO

pytestmark = pytest.mark.spark

GOLDEN = REPO / "tests" / "golden"
SAMPLE = REPO / "sample_data"
MONTHS = ["2023-04", "2023-05"]


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """One local SparkSession for the module (starting the JVM takes seconds)."""
    from chuanliu_cli.engines.spark import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated 100k-order Parquet set (about 1 s to write)."""
    from chuanliu_cli.sample import generate_sample

    out = tmp_path_factory.mktemp("generated")
    generate_sample(out, merchants=120, months=3, end="2023-05", seed=7, fmt="parquet", orders=100_000)
    return out


def _duckdb(data: Path) -> Any:
    from chuanliu_cli.ingest.loader import LoadOptions, discover, load_files
    from chuanliu_cli.store.database import memory_database

    db = memory_database()
    load_files(db, discover(data), LoadOptions())
    return db.con


def _spark_engine(spark: Any, data: Path | str | None = None, **tables: str) -> Any:
    from chuanliu_cli.engines.spark import SparkEngine, SparkSettings

    settings = SparkSettings(data=str(data) if data is not None else None, tables=tuple(tables.items()))
    return SparkEngine.open(settings, spark)


def _close(a: Any, b: Any, rel: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))


def _assert_same_frames(a: pl.DataFrame, b: pl.DataFrame, exact: list[str], rel: float, what: str) -> None:
    assert a.columns == b.columns, what
    assert a.height == b.height, what
    for col in a.columns:
        left, right = a[col].to_list(), b[col].to_list()
        if col in exact:
            assert left == right, f"{what}: column {col}"
            continue
        bad = [(i, x, y) for i, (x, y) in enumerate(zip(left, right, strict=True)) if not _close(x, y, rel)]
        assert not bad, f"{what}: column {col} differs at {bad[:3]}"


def _assert_same_runs(duck: RunResult, spark: RunResult) -> None:
    """Every scorecard: the same entities in the same order, scores to 1e-9, gates, tiers, grants exact."""
    assert list(duck.scorecards) == list(spark.scorecards)
    assert duck.data_window == spark.data_window
    assert duck.complete == spark.complete
    for name, res in duck.scorecards.items():
        other = spark.scorecards[name]
        # the key and its labels (name; a shop's group_id and category), eligibility, tiers, grants: exact
        exact = [res.key, *label_columns(res.scorecard), "eligible", "failed_gates", "tier", "rank", "grant"]
        exact.append("grant_note")
        # Scores are 0..100 (or 0..5): to 1e-9 absolutely; metrics (GMV in the millions) relatively.
        scores = [s.name for s in res.scorecard.scores]
        _assert_same_frames(res.frame.drop(scores), other.frame.drop(scores), exact, 1e-9, name)
        _assert_same_frames(res.frame.select(scores), other.frame.select(scores), [], 1e-9, name)
        assert res.totals() == other.totals(), name
        if res.allocation is not None:
            assert other.allocation is not None
            assert res.allocation.allocated == other.allocation.allocated


# -- the same reward lists -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_engines(spark: Any) -> Iterator[tuple[Any, Any]]:
    con = _duckdb(SAMPLE)
    with _spark_engine(spark, SAMPLE) as engine:
        yield DuckDBEngine(con), engine
    con.close()


@pytest.fixture(scope="module")
def generated_engines(spark: Any, generated: Path) -> Iterator[tuple[Any, Any]]:
    con = _duckdb(generated)
    with _spark_engine(spark, generated) as engine:
        yield DuckDBEngine(con), engine
    con.close()


@pytest.mark.parametrize("month", MONTHS)
def test_sample_reward_lists_match_duckdb(sample_engines: tuple[Any, Any], month: str) -> None:
    ruleset = load_ruleset(default_ruleset_path())
    period = parse_period(month, ruleset.period)
    duck, spark = sample_engines
    _assert_same_runs(score_period(duck, ruleset, period), score_period(spark, ruleset, period))


@pytest.mark.parametrize("month", MONTHS)
def test_generated_reward_lists_match_duckdb(generated_engines: tuple[Any, Any], month: str) -> None:
    ruleset = load_ruleset(default_ruleset_path())
    period = parse_period(month, ruleset.period)
    duck, spark = generated_engines
    duck_run = score_period(duck, ruleset, period)
    _assert_same_runs(duck_run, score_period(spark, ruleset, period))
    assert duck_run.scorecards["merchant"].totals()["eligible"] > 0  # the comparison means something


def test_cli_eligible_on_spark_matches_the_golden_reward_list(invoke: Callable[..., Any]) -> None:
    """`eligible --engine spark` prints the very bytes of the DuckDB golden file."""
    result = invoke(
        "eligible",
        "--month",
        "2023-05",
        "--all",
        "--format",
        "csv",
        "--data",
        str(SAMPLE),
        "--engine",
        "spark",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == (GOLDEN / "sample-2023-05-merchant.csv").read_text(encoding="utf-8")


def test_a_spark_run_says_nothing_on_stderr_but_its_own_words(tmp_path: Path) -> None:
    """A whole process (Spark's Java logging goes to the process's stderr, not to a test runner's): a stage
    too large for Spark's Java compiler runs interpreted with the same results, and the compiler's failure
    printed thousands of lines of Java stack trace at every run. stderr now holds only the JDK's notice."""
    import subprocess
    import sys

    args = ["eligible", "--month", "2023-05", "--all", "--data", str(SAMPLE), "--engine", "spark"]
    done = subprocess.run(
        [sys.executable, "-m", "chuanliu_cli", *args, "-o", str(tmp_path / "list.csv")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if not line.startswith("WARNING: Using incubator")]
    assert lines == []
    assert (tmp_path / "list.csv").read_text(encoding="utf-8") == (
        GOLDEN / "sample-2023-05-merchant.csv"
    ).read_text(encoding="utf-8")


# -- reading the tables ---------------------------------------------------------------------------------


def _assert_tables_equal(engine: Any, con: Any) -> None:
    from chuanliu_cli.engines.spark import to_polars

    for name, table in TABLES.items():
        ours = to_polars(engine.tables[name]).sort(table.key)
        # the canonical columns (the database also keeps the integrity marks of its orders)
        columns = ", ".join(f'"{c}"' for c in table.names)
        theirs = con.sql(f"SELECT {columns} FROM {name}").pl().sort(table.key)
        assert ours.schema == theirs.schema, name
        assert ours.equals(theirs), name


def test_sample_csv_reads_as_the_loader_loads_it(sample_engines: tuple[Any, Any]) -> None:
    duck, spark = sample_engines
    _assert_tables_equal(spark, duck.con)


def test_spark_tables_read_the_same(spark: Any, sample_engines: tuple[Any, Any]) -> None:
    """--spark-table: tables of Spark's catalog (here temp views, already typed) read as the files do."""
    duck, engine = sample_engines
    for name in TABLES:
        engine.tables[name].createOrReplaceTempView(f"t_{name}")
    with _spark_engine(spark, None, **{name: f"t_{name}" for name in TABLES}) as from_tables:
        _assert_tables_equal(from_tables, duck.con)


MESSY_ORDERS = """\
order_id,shop_id,buyer_id,item_id,item_name,promoter_id,sale_mode,carrier,order_time,paid_amount,quantity,status,refund_amount,refund_reason,commission
0001,s1,b1,i1,冰丝裤,,自营,直播间,2023-05-01 20:00:00,"¥1,234.50",1,已付款,,,
0002,s1,b2,i1,冰丝裤,p1,,短视频,2023/5/2 08:30,1.2万,2,退款成功,,,3.5
0003,s1,b3,i2,"奶瓶, 2件装",,self,live,2023-05-03T20:00:00+08:00,2.50,,completed,2.50,质量问题,
0004,s2,b1,i2,"He said ""hi"" once",p2,distribution,card,1683129600000,3.50,1,received,1.00,Not as described,
0005,s2,b4,i3,x,,self,other,2023-05-07 23:59:59.5,0.15,3,shipped,0,,
0006,s2,b5,i3,x,,self,live,2023-05-07 10:00,abc,1,paid,,,
0007,s3,b6,i3,x,,self,live,2023-05-08 10:00:00,5.00,1,unknown,,,
0008,s3,b7,i3,x,,self,live,2023-05-08 10:00:00,5.00,1,paid,6.00,,
0009,,b8,i3,x,,self,live,2023-05-08 10:00:00,5.00,1,paid,,,
0010,s3,b9,i3,x,,self,live,2023-05-08 10:00:00,"58,71",1,paid,,,
0011,s3,b9,i3,x,,self,live,2023-05-08 11:00:00,"1,234.5万",1,paid,,,"1,000.5"
"""


def test_messy_csv_parses_like_the_loader(spark: Any, tmp_path: Path) -> None:
    """Amounts in ¥ and 万, Chinese values, five time layouts; rows the loader rejects are left out."""
    from chuanliu_cli.engines.spark import read_tables, to_polars
    from chuanliu_cli.ingest.loader import LoadOptions, discover, load_files
    from chuanliu_cli.store.database import memory_database

    (tmp_path / "orders.csv").write_text(MESSY_ORDERS, encoding="utf-8")
    for name in ("reviews", "livestreams"):
        (tmp_path / f"{name}.csv").write_text(",".join(TABLES[name].names[:-1]) + "\n", encoding="utf-8")
    db = memory_database()
    results = load_files(db, discover(tmp_path), LoadOptions(max_reject_rate=1.0))
    # abc, unknown status, refund > paid, no shop, a decimal comma
    assert [r.rejected for r in results] == [5, 0, 0]
    ours = to_polars(read_tables(spark, str(tmp_path), {})["orders"])
    theirs = db.con.sql(f"SELECT {', '.join(TABLES['orders'].names)} FROM orders").pl()
    assert ours.sort("order_id").equals(theirs.sort("order_id"))
    assert ours["order_id"].to_list()[:1] == ["0001"]


def _split_orders(folder: Path, fmt: str) -> None:
    """The sample's orders as two files whose columns differ: the second in reverse order without
    commission (and, in Parquet, the first without promoter_id), beside the other tables."""
    folder.mkdir()
    orders = pl.read_csv(SAMPLE / "orders.csv", infer_schema=False)
    half = orders.height // 2
    first = orders.head(half)
    second = orders.tail(orders.height - half).drop("commission")
    second = second.select(list(reversed(second.columns)))
    if fmt == "csv":
        first.write_csv(folder / "orders-1.csv")
        second.write_csv(folder / "orders-2.csv")
    else:
        first.drop("promoter_id").write_parquet(folder / "orders-1.parquet")
        second.write_parquet(folder / "orders-2.parquet")
    for name in ("reviews", "livestreams", "shops"):
        shutil.copy(SAMPLE / f"{name}.csv", folder / f"{name}.csv")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_files_of_one_table_are_matched_by_column_name(spark: Any, tmp_path: Path, fmt: str) -> None:
    """Spark reads several CSV files by the first one's header (by position) and several Parquet files by
    one file's schema: files whose columns differ were read wrong (half the orders rejected, or columns
    dropped). Each file's columns are now matched by name, as the loader matches them."""
    from chuanliu_cli.engines.spark import read_checked_tables, to_polars

    _split_orders(tmp_path / "data", fmt)
    duck = _duckdb(tmp_path / "data")
    checked = read_checked_tables(spark, str(tmp_path / "data"), {})
    assert checked["orders"].rejected is None
    ours = to_polars(checked["orders"].valid).sort("order_id")
    theirs = duck.sql(f"SELECT {', '.join(TABLES['orders'].names)} FROM orders").pl().sort("order_id")
    assert ours.height == 14_640
    assert ours.equals(theirs)


def test_headers_and_quoted_line_breaks_read_as_the_loader_reads_them(spark: Any, tmp_path: Path) -> None:
    """Spark matched headers by canonical name only: shops' 类目 and 主体ID and livestreams' 涨粉数 (headers
    `load` maps) were ignored without a word, the columns null, and the list changed. A shop name holding
    a quoted line break split its row in two. Both now read as the loader reads them."""
    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    shops = (data / "shops.csv").read_text(encoding="utf-8")
    shops = shops.replace("shop_id,shop_name,category,group_id", "shop_id,shop_name,类目,主体ID", 1)
    shops = shops.replace("ks700001,云源珠宝文玩旗舰店,", 'ks700001,"云源珠宝\n文玩旗舰店",', 1)
    (data / "shops.csv").write_text(shops, encoding="utf-8")
    live = (data / "livestreams.csv").read_text(encoding="utf-8")
    (data / "livestreams.csv").write_text(live.replace(",new_followers,", ",涨粉数,", 1), encoding="utf-8")
    duck = _duckdb(data)
    assert duck.execute("SELECT count(*) FROM shops WHERE category IS NULL").fetchall() == [(0,)]
    with _spark_engine(spark, data) as engine:
        _assert_tables_equal(engine, duck)


def test_two_headers_of_one_column_are_said_as_the_loader_says_them(spark: Any, tmp_path: Path) -> None:
    """A shops file with both `category` and 类目: the loader reads one and says which; Spark read the same
    one without a word. It now says the loader's words."""
    from chuanliu_cli.engines.spark import read_checked_tables
    from chuanliu_cli.ingest.loader import LoadOptions, discover, load_files, load_warnings
    from chuanliu_cli.store.database import memory_database

    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    shops = pl.read_csv(SAMPLE / "shops.csv", infer_schema=False)
    shops.with_columns(pl.lit("其他").alias("类目")).write_csv(data / "shops.csv")
    said = [
        w for w in load_warnings(load_files(memory_database(), discover(data), LoadOptions())) if "map" in w
    ]
    assert said == [f"{data / 'shops.csv'}: category and 类目 all map to category; using category"]
    checked = read_checked_tables(spark, str(data), {})
    assert [w for w in checked["shops"].warnings if "map" in w] == [
        "shops.csv: category and 类目 all map to category; using category"
    ]
    with _spark_engine(spark, data) as engine:
        _assert_tables_equal(engine, _duckdb(data))


@pytest.mark.parametrize("change", ["a trailing comma", "fields missing"])
def test_rows_of_another_width_are_refused(spark: Any, tmp_path: Path, change: str) -> None:
    """Spark pads a short row and drops a long row's extra fields, where `load` rejects the row: five
    orders with a trailing comma changed the list without a word. Such files are refused on Spark."""
    from chuanliu_cli.engines.spark import read_checked_tables

    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    lines = (data / "orders.csv").read_text(encoding="utf-8").splitlines()
    changed = [k for k, line in enumerate(lines) if k and line.endswith(",,,") and '"' not in line][:5]
    for k in changed:
        lines[k] = lines[k] + "," if change == "a trailing comma" else lines[k][:-3]
    (data / "orders.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_checked_tables(spark, str(data), {})
    assert caught.value.message.startswith(
        "orders.csv: 5 line(s) have another number of fields than the header's 15, e.g. "
    )
    assert "DuckDB engine" in (caught.value.hint or "")


def test_a_csv_file_not_in_utf8_is_refused(spark: Any, tmp_path: Path) -> None:
    """Spark read every CSV file as UTF-8: a GB18030 export (what Excel saves on a Chinese Windows) gave
    mojibake names and categories in the list, exit 0, no word. Each file's encoding is found as the
    loader finds it, and one that is not UTF-8 is refused, naming the file and the encoding (Spark 4's
    CSV reader takes no GB18030)."""
    from chuanliu_cli.engines.spark import read_checked_tables

    for encoding, said in (("gb18030", "GB18030"), ("utf-16", "UTF-16")):
        data = tmp_path / encoding
        shutil.copytree(SAMPLE, data)
        (data / "shops.csv").write_bytes((SAMPLE / "shops.csv").read_text(encoding="utf-8").encode(encoding))
        with pytest.raises(DataError) as caught:
            read_checked_tables(spark, str(data), {})
        assert caught.value.message == (
            f"shops.csv: the file is {said}, and the Spark engine reads CSV in UTF-8 only"
        )
        assert f"iconv -f {encoding} -t utf-8" in (caught.value.hint or "")
    bom = tmp_path / "bom"
    shutil.copytree(SAMPLE, bom)
    (bom / "orders.csv").write_bytes(b"\xef\xbb\xbf" + (SAMPLE / "orders.csv").read_bytes())
    with _spark_engine(spark, bom) as engine:
        _assert_tables_equal(engine, _duckdb(SAMPLE))


def test_a_part_not_in_utf8_after_the_first_mib_is_refused(spark: Any, tmp_path: Path) -> None:
    """The encoding is decided from a file's first MiB; Spark's CSV reader turned later bytes that are not
    UTF-8 into U+FFFD without a word (a GB18030 part appended to a UTF-8 export: its item names garbled, a
    直播间 carrier no longer live). The loader reads such a part in its own encoding and warns; Spark
    refuses the file, naming it and showing the line."""
    from chuanliu_cli.engines.spark import read_checked_tables

    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    head = (SAMPLE / "orders.csv").read_bytes()
    assert len(head) > 1 << 20  # the GB18030 line comes after the first MiB
    rows = head.decode("utf-8").splitlines()[1:]
    cells = rows[0].split(",")
    cells[0], cells[7] = "8" + cells[0], "直播间"
    (data / "orders.csv").write_bytes(head + ",".join(cells).encode("gb18030") + b"\n")
    duck = _duckdb(data)  # the loader reads the part as GB18030
    assert duck.execute("SELECT carrier FROM orders WHERE order_id = ?", [cells[0]]).fetchall() == [("live",)]
    with pytest.raises(DataError) as caught:
        read_checked_tables(spark, str(data), {})
    assert caught.value.message.startswith(
        "orders.csv: 1 line(s) are not UTF-8 after a first MiB that is, e.g. "
    )
    assert "iconv" in (caught.value.hint or "") and "DuckDB engine" in (caught.value.hint or "")


def test_a_key_in_two_files_is_read_once_or_refused(spark: Any, tmp_path: Path) -> None:
    """An order in two overlapping exports was counted twice by the metric queries (its amount summed
    twice). Rows repeated whole are read once, with a warning; a key repeated with different values is
    refused, naming it (Spark has no file order or line to pick the latest by)."""
    from chuanliu_cli.engines.spark import read_checked_tables, to_polars

    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    orders = pl.read_csv(SAMPLE / "orders.csv", infer_schema=False)
    orders.head(100).write_csv(data / "orders-old.csv")
    checked = read_checked_tables(spark, str(data), {})
    ours = to_polars(checked["orders"].valid).sort("order_id")
    theirs = _duckdb(SAMPLE).sql(f"SELECT {', '.join(TABLES['orders'].names)} FROM orders").pl()
    assert ours.equals(theirs.sort("order_id"))
    [warning] = [w for w in checked["orders"].warnings if "repeated" in w]
    assert warning.startswith("orders-old.csv, orders.csv: 100 repeated row(s) of orders (the same order_id")

    other = tmp_path / "other"  # (a new folder: Spark's cache would match the first read's plan)
    shutil.copytree(SAMPLE, other)
    changed = orders.head(3).with_columns(pl.lit("u-other").alias("buyer_id"))
    changed.write_csv(other / "orders-old.csv")
    with pytest.raises(DataError) as caught:
        read_checked_tables(spark, str(other), {})
    key = sorted(changed["order_id"].to_list())[0]
    assert f"3 order_id value(s) of orders come with different values in different rows: {key} (2 " in (
        caught.value.message
    )
    assert "chuanliu load" in (caught.value.hint or "")


def test_a_source_over_the_reject_limits_is_refused_as_load_refuses_it(spark: Any, tmp_path: Path) -> None:
    """Rows the loader rejects were left out on Spark however many they were: orders mostly unreadable
    (here 200 amounts written as text) were scored on what was left, where `--data` on DuckDB refuses the
    file. Both engines now refuse it with the loader's limits and words."""
    from chuanliu_cli.engines.spark import read_checked_tables
    from chuanliu_cli.ingest.loader import LoadOptions, discover, load_files
    from chuanliu_cli.store.database import memory_database

    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    orders = pl.read_csv(SAMPLE / "orders.csv", infer_schema=False)
    broken = orders.with_columns(
        pl.when(pl.int_range(pl.len()) < 200)
        .then(pl.lit("n/a"))
        .otherwise(pl.col("paid_amount"))
        .alias("paid_amount")
    )
    broken.write_csv(data / "orders.csv")
    with pytest.raises(DataError) as duck:
        load_files(memory_database(), discover(data), LoadOptions())
    with pytest.raises(DataError) as ours:
        read_checked_tables(spark, str(data), {})
    words = "200 of 14640 rows rejected, over both reject limits (1.4% > max_reject_rate 1.0% and 200 > "
    assert duck.value.message.startswith(f"{data / 'orders.csv'}: {words}")
    assert ours.value.message.startswith(f"orders.csv: {words}")
    assert ours.value.message.endswith("as rows of orders; nothing was scored")
    assert len(ours.value.details) == 5 and "paid_amount" in ours.value.details[0]


def test_rejected_rows_are_reported_not_dropped_silently(spark: Any, tmp_path: Path) -> None:
    """The rows left out are counted per table, the first ones with the loader's very reasons."""
    from chuanliu_cli.ingest.loader import LoadOptions, discover, load_files
    from chuanliu_cli.store.database import memory_database

    (tmp_path / "orders.csv").write_text(MESSY_ORDERS, encoding="utf-8")
    for name in ("reviews", "livestreams"):
        (tmp_path / f"{name}.csv").write_text(",".join(TABLES[name].names[:-1]) + "\n", encoding="utf-8")
    db = memory_database()
    load_files(db, discover(tmp_path), LoadOptions(max_reject_rate=1.0))
    theirs = sorted(r[0] for r in db.con.execute("SELECT reason FROM rejected_rows").fetchall())
    with _spark_engine(spark, tmp_path) as engine:
        assert [(r.table, r.count) for r in engine.rejected] == [("orders", 5)]
        assert sorted(r.reason for r in engine.rejects) == theirs
        assert {r.key for r in engine.rejects} == {"0006", "0007", "0008", "0009", "0010"}
        [warning] = engine.reject_warnings()
        assert warning.startswith(
            "orders.csv: 5 rows of orders rejected and left out; e.g. orders.csv order_id "
        )


def test_files_left_unread_are_said_as_the_duckdb_engine_says_them(spark: Any, tmp_path: Path) -> None:
    """A file of the data location that neither engine reads is said in the same words (one function,
    ingest/discover.unread_warnings); hidden files are not."""
    from chuanliu_cli.ingest.discover import discover_with_warnings

    shutil.copytree(SAMPLE, tmp_path / "data")
    data = tmp_path / "data"
    (data / "export_0501.csv").write_text("订单编号,店铺ID\n2704810274450371,ks3\n", encoding="utf-8")
    (data / ".DS_Store").write_bytes(b"\x00")
    _, duckdb_says = discover_with_warnings(data)
    assert len(duckdb_says) == 1 and duckdb_says[0].startswith(f"{data}/export_0501.csv: not read: ")
    with _spark_engine(spark, data) as engine:
        assert [w for w in engine.reject_warnings() if ": not read: " in w] == duckdb_says


# -- expressions: the same values, or a clear refusal ----------------------------------------------------

PARITY_ORDERS = """\
order_id,shop_id,buyer_id,item_id,item_name,promoter_id,sale_mode,carrier,order_time,paid_amount,quantity,status,refund_amount,refund_reason,commission
o1,s1,b1,i1,冰丝阔腿裤,,self,live,2023-05-01 20:00:00,2.50,1,paid,,,
o2,s1,b2,i1,冰丝阔腿裤,p1,distribution,video,2023-05-07 08:30:30.5,3.50,2,refunded,,,
o3,s1,b3,i2,奶瓶,,self,live,2023-05-14 23:59:59,0.15,3,completed,0.15,质量问题,
o4,s2,b1,i2,奶瓶,p2,distribution,card,2023-05-21 10:00:00,1234.56,1,received,1.00,not as described,
o5,s2,b4,i3,Tea,,self,other,2023-05-28 12:00:00,0.10,4,shipped,0,,
o6,s2,b5,i3,Tea,,self,live,2023-05-31 23:00:00,0.20,5,paid,,,
o7,s3,b6,i3,Tea,,self,live,2023-05-15 10:00:00,2.675,1,pending,,,
"""
PARITY_LIVESTREAMS = """\
live_id,shop_id,host_type,promoter_id,start_time,end_time,duration_minutes,viewers,new_followers,gmv
l1,s1,self,,2023-05-07 20:00:00,,2.5,100,0,0
l2,s1,self,,2023-05-08 20:00:00,,3.5,7,3,0
l3,s1,self,,2023-05-09 20:00:00,,4.35,1000,10,0
l4,s2,self,,2023-05-10 20:00:00,,2.675,0,1,0
l5,s2,promoter,p1,2023-05-11 20:00:00,2023-05-11 21:30:29,,55,2,0
l6,s3,self,,2023-05-12 20:00:00,2023-05-12 20:00:59,,,,
"""
PARITY_REVIEWS = """\
review_id,order_id,shop_id,item_id,promoter_id,quality_score,logistics_score,service_score,review_time,complaint
r1,o1,s1,i1,,5,4,3,2023-05-02 10:00:00,否
r2,o2,s1,i1,,2,,,2023-05-08 10:00:00,是
r3,o4,s2,i2,,1,1,1,2023-05-22 10:00:00,false
"""

PARITY_METRICS = {
    "orders": [
        "avg(paid_amount)",
        "avg(case when quality_return then 1.0 else 0.0 end)",
        "sum(paid_amount) / count(*)",
        "sum(net_amount) / nullif(sum(paid_amount), 0)",
        "max(cast(paid_amount as int))",
        "min(cast(paid_amount * 1.5 as bigint))",
        "sum(cast(quantity / 2 as int))",
        "sum(quality_return)",
        "count(distinct date_part('dow', order_time))",
        "max(extract(dow from order_time))",
        "max(extract(week from order_time))",
        "max(extract(second from order_time))",
        "max(date_part('doy', order_time))",
        "count(distinct date_trunc('week', order_time))",
        "count(distinct date_trunc('dow', order_time))",
        "count(distinct cast(order_time as date))",
        "max(length(item_name))",
        "max(round(paid_amount / 3, 2))",
        "max(round(cast(paid_amount as double) * 1.5, 1))",
        "max(round(paid_amount, 1))",
        "stddev(paid_amount)",
        "median(cast(paid_amount as double))",
        "median(quantity)",
        "max(greatest(paid_amount, refund_amount, 0))",
        "max(quantity % 2)",
        "min(paid_amount / (quantity - quantity))",
        "sum(case when lower(item_name) like '%tea%' then 1 else 0 end)",
        "count(distinct buyer_id)",
        "avg(abs(paid_amount - 1))",
    ],
    "livestreams": [
        "sum(cast(duration_minutes as int))",
        "sum(round(duration_minutes, 1))",
        "sum(round(duration_minutes, 2))",
        "max(round(viewers / 7, -1))",
        "min(ln(new_followers))",
        "max(log10(viewers))",
        "min(log10(viewers))",
        "max(sqrt(duration_minutes))",
        "max(power(duration_minutes, 2))",
        "sum(floor(duration_minutes)) + sum(ceil(duration_minutes))",
        "sum(duration_minutes) / 60",
        "avg(duration_minutes)",
    ],
    "reviews": [
        "avg(quality_score)",
        "avg(case when quality_score <= 2 then 1.0 else 0.0 end)",
        "sum(case when complaint then 1 else 0 end)",
        "avg(logistics_score)",
        "stddev(quality_score)",
    ],
}


def _parity_ruleset() -> Ruleset:
    lines = []
    for source, values in PARITY_METRICS.items():
        for i, value in enumerate(values):
            lines.append(f"{source}_{i}: {{from: {source}, value: {json.dumps(value)}}}")
    lines.append(f"ratio: {{formula: {json.dumps('orders_0 / nullif(orders_4 - orders_4, 0)')}}}")
    lines.append(f"growth: {{formula: {json.dumps('(orders_4 - orders_5) / greatest(orders_5, 1)')}}}")
    metrics = textwrap.indent("\n".join(lines), "      ")
    text = f"version: 1\nname: parity\nperiod: month\nscorecards:\n  s:\n    key: shop_id\n    rank_by: ratio\n    metrics:\n{metrics}\n"
    return parse_ruleset(text, "parity.yaml")


def test_expressions_compute_the_same_values(spark: Any, tmp_path: Path) -> None:
    """Decimal averages, casts to integers, rounding, ln(0), day of week, ISO weeks, seconds, division by 0."""
    (tmp_path / "orders.csv").write_text(PARITY_ORDERS, encoding="utf-8")
    (tmp_path / "livestreams.csv").write_text(PARITY_LIVESTREAMS, encoding="utf-8")
    (tmp_path / "reviews.csv").write_text(PARITY_REVIEWS, encoding="utf-8")
    ruleset = _parity_ruleset()
    sc = ruleset.scorecard("s")
    period = parse_period("2023-05", "month")
    con = _duckdb(tmp_path)
    duck = compute_metrics(DuckDBEngine(con), ruleset, sc, period)
    with _spark_engine(spark, tmp_path) as engine:
        ours = compute_metrics(engine, ruleset, sc, period)
    con.close()
    assert duck.height == 3
    # Exactly the same values (compute_metrics keeps 12 significant digits), -inf and NaN included.
    for col in duck.columns:
        left, right = duck[col].to_list(), ours[col].to_list()
        same = all(
            _close(x, y, 0.0) if not isinstance(x, str) else x == y for x, y in zip(left, right, strict=True)
        )
        assert same, f"{col}: duckdb {left} spark {right}"


@pytest.mark.parametrize(
    ("source", "value", "message"),
    [
        ("orders", "median(paid_amount)", "median of a decimal"),
        (
            "livestreams",
            "count(distinct cast(duration_minutes as varchar))",
            "text of a floating-point number",
        ),
        ("orders", "sum(case when item_name like 'a\\_b' then 1 else 0 end)", "backslash in a LIKE pattern"),
        ("orders", "max(round(cast(paid_amount as double), quantity))", "constant n"),
    ],
)
def test_spark_rejects_what_it_cannot_compute_identically(source: str, value: str, message: str) -> None:
    text = (
        "version: 1\nname: t\nperiod: month\nscorecards:\n  s:\n    key: shop_id\n    rank_by: m\n"
        f"    metrics:\n      m: {{from: {source}, value: {json.dumps(value)}}}\n"
    )
    ruleset = parse_ruleset(text, "t.yaml")
    period = parse_period("2023-05", "month")
    compile_scorecard(ruleset, "s", period)  # DuckDB: fine
    with pytest.raises(RulesetError) as info:
        compile_scorecard(ruleset, "s", period, dialect="spark")
    assert message in info.value.errors[0]
    assert info.value.errors[0].startswith("t.yaml:9:")
    assert "(--engine spark)" in info.value.errors[0]


# -- the Spark SQL ----------------------------------------------------------------------------------------


def test_rules_sql_for_spark_matches_golden_file(invoke: Callable[..., Any]) -> None:
    """Regenerate with CHUANLIU_UPDATE_GOLDEN=1 after an intended change, and review the diff."""
    result = invoke("rules", "sql", "--month", "2023-05", "--dialect", "spark")
    assert result.exit_code == 0, result.output
    path = GOLDEN / "rules-sql-2023-05.spark.sql"
    if os.environ.get("CHUANLIU_UPDATE_GOLDEN") == "1":
        path.write_text(result.stdout, encoding="utf-8")
    assert result.stdout == path.read_text(encoding="utf-8")
    assert "FROM `orders`" in result.stdout and 'FROM "orders"' not in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "spark"], "--engine spark reads --data DIR or --spark-table"),
        (["--spark-table", "orders=db.orders"], "need --engine spark"),
        (["--engine", "spark", "--spark-table", "order=db.orders"], "unknown table 'order'"),
        (
            [
                "--engine",
                "spark",
                "--data",
                "sample_data",
                "--spark-conf",
                "spark.sql.session.timeZone=Asia/Shanghai",
            ],
            "cannot be changed",
        ),
        (["--engine", "spark", "--data", "sample_data", "--spark-conf", "novalue"], "expected KEY=VALUE"),
    ],
)
def test_engine_options_are_checked(invoke: Callable[..., Any], args: list[str], message: str) -> None:
    result = invoke("eligible", "--month", "2023-05", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
