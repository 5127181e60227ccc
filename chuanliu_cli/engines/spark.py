"""The metric queries on Spark (the Spark engine, SPEC §8): pyspark, an optional extra.

Only the compiled metric query of each scorecard runs on Spark, rendered for the Spark dialect from the
same sqlglot tree as for DuckDB; the per-entity metric rows come back to the driver (Arrow), and scoring,
gates, tiers and allocation are the same Python code as for DuckDB.

The session computes in UTC with `spark.sql.timestampType=TIMESTAMP_NTZ`: times are naive local times
(SPEC §2) and stay naive, so dates, ISO weeks and window bounds are the same as on DuckDB. ANSI mode is
on, as DuckDB errors rather than silently overflowing or mis-casting.

The four tables come from a directory or any Spark-readable location (`SparkSettings.data`: Parquet or CSV
with the canonical column names; in a local directory also saved open-platform responses, read on the
driver by the loader's reader) or from tables of Spark's catalog (`SparkSettings.tables`, e.g.
`("orders", "db.orders")`). Either way
the rows go through the canonicalization of `chuanliu load` (`ingest.conversion.conversion_sql`, rendered
for Spark): the same parsing, defaults, derived columns and checks. Rows it rejects are left out of the
tables and reported (`SparkEngine.rejected`: a count per table and the first rows with their reasons).
"""

from __future__ import annotations

import itertools
import os
import re
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chuanliu_cli.errors import DataError, UsageError
from chuanliu_cli.ingest.canonical import duration_warning_sql
from chuanliu_cli.ingest.conversion import conversion_sql, duration_warning
from chuanliu_cli.ingest.discover import (
    HIDDEN,
    DiscoveredFile,
    HeaderReader,
    infer,
    no_exports,
    response_file,
    skip_reason,
    unread_warnings,
)
from chuanliu_cli.ingest.formats.openplatform import CPS
from chuanliu_cli.ingest.loader import SHOW_REJECTS, LoadOptions
from chuanliu_cli.ingest.mapping import TableMapping, collision_notes, default_mapping, normalize_header
from chuanliu_cli.schema import REQUIRED_TABLES, TABLES, Table

if TYPE_CHECKING:
    import polars as pl
    from pyspark.sql import DataFrame, SparkSession

    from chuanliu_cli.rules.model import Integrity

#: Session settings the engine relies on; `SparkSettings.conf` cannot change them.
FIXED_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.ansi.enabled": "true",
}

#: Defaults for a local session (`SparkSettings.conf` can change any of them).
LOCAL_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.memory": "4g",
    # Few, larger partitions: local mode has only the machine's cores (adaptive execution merges more).
    "spark.sql.shuffle.partitions": str(max(4, 2 * (os.cpu_count() or 1))),
}

_LOG4J = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
logger.apache.name = org.apache
logger.apache.level = error
logger.netty.name = io.netty
logger.netty.level = error
# a stage whose generated Java is too large for the compiler runs interpreted, with the same results; the
# compiler's failure was logged as an ERROR with thousands of lines of stack trace (the conversion queries)
logger.codegen.name = org.apache.spark.sql.catalyst.expressions.codegen.CodeGenerator
logger.codegen.level = off
"""


@dataclass(frozen=True)
class SparkSettings:
    """Where Spark runs (`master`, session `conf`) and where the tables come from (`data`: a location of
    files; `tables`: tables of Spark's catalog)."""

    master: str = "local[*]"
    conf: tuple[tuple[str, str], ...] = ()
    data: str | None = None
    tables: tuple[tuple[str, str], ...] = ()  # canonical table -> Spark table name
    timezone: str = "Asia/Shanghai"  # of aware times in the data, as for data= on DuckDB


def parse_pairs(values: Iterable[str], option: str) -> tuple[tuple[str, str], ...]:
    """`key=value` strings as pairs; a UsageError naming `option` (the setting they are for) otherwise."""
    pairs = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} {value!r}: expected KEY=VALUE")
        pairs.append((key.strip(), rest.strip()))
    return tuple(pairs)


def spark_tables(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """`SparkSettings.tables` pairs (canonical table, Spark table name) checked against the table names."""
    out = []
    for table, name in pairs:
        if table not in TABLES:
            raise UsageError(
                f"Spark table {name!r} given for unknown table {table!r}",
                hint=f"the tables are {', '.join(TABLES)}",
            )
        if not name:
            raise UsageError(
                f"no Spark table name given for table {table}",
                hint=f"name one of Spark's catalog, e.g. db.{table}",
            )
        out.append((table, name))
    return tuple(out)


def _quiet_pyspark() -> None:
    # pyspark warns about pandas versions even though this engine never converts through pandas.
    warnings.filterwarnings("ignore", message=".*PySpark does not yet fully support", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="pyspark")


def spark_session(master: str = "local[*]", conf: Iterable[tuple[str, str]] = ()) -> SparkSession:
    """The active SparkSession, or a new one for `master`, with the settings the engine relies on."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise UsageError(
            "the Spark engine needs pyspark", hint="pip install 'chuanliu[spark]' (and Java 17 or later)"
        ) from None
    _quiet_pyspark()
    given = dict(conf)
    for key in FIXED_CONF:
        if key in given and given[key] != FIXED_CONF[key]:
            raise UsageError(f"Spark setting {key} cannot be changed: the engine needs {FIXED_CONF[key]}")
    settings: dict[str, str] = {}
    if master.startswith("local"):
        settings.update(LOCAL_CONF)
        # Spark's own log4j defaults print INFO lines and a banner on stderr; errors are enough.
        settings["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile={_log4j_file()}"
    settings.update(given)
    settings.update(FIXED_CONF)
    builder = SparkSession.builder.master(master).appName("chuanliu")
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: no Java, a bad master URL, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(
            f"cannot start Spark ({master}): {first}", hint="Spark needs Java 17 or later"
        ) from None
    for key, value in FIXED_CONF.items():
        spark.conf.set(key, value)  # an active session made elsewhere may have other values
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _log4j_file() -> str:
    path = Path(tempfile.gettempdir()) / "chuanliu-spark-log4j2.properties"
    if not path.exists() or path.read_text(encoding="utf-8") != _LOG4J:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(_LOG4J, encoding="utf-8")
        tmp.replace(path)
    return str(path)


#: The engine whose tables the views `orders`, `reviews`, ... of a session (by id) currently show.
_ACTIVE: dict[int, SparkEngine] = {}


class SparkEngine:
    """Metric queries on a SparkSession over the four canonical tables, registered as temp views."""

    dialect = "spark"

    def __init__(
        self,
        spark: SparkSession,
        tables: Mapping[str, DataFrame],
        rejected: Iterable[RejectedRows] = (),
        cached: Iterable[DataFrame] = (),
        warnings: Iterable[str] = (),
    ) -> None:
        self.spark = spark
        self.tables = dict(tables)
        #: Rows left out of the tables because `chuanliu load` would reject them: per table, a count and
        #: the first few with their reasons (show them as warnings: the tables are the valid rows).
        self.rejected: list[RejectedRows] = list(rejected)
        #: Valid rows kept as they are but doubtful (a session whose duration disagrees with its times).
        self.warnings: list[str] = list(warnings)
        self._cached = list(cached)
        self._activate()

    @property
    def rejects(self) -> list[SparkReject]:
        """The first rejected rows of each table (a few per table; counts are in `rejected`)."""
        return [r for group in self.rejected for r in group.examples]

    def reject_warnings(self) -> list[str]:
        """One line per table with rejected rows, then the warnings about rows kept (`warnings`), for the
        caller to show as warnings."""
        return [str(group) for group in self.rejected] + self.warnings

    def _activate(self) -> None:
        """Make the table names (`orders`, ...) this engine's views: engines may share a session."""
        if _ACTIVE.get(id(self.spark)) is not self:
            for name, frame in self.tables.items():
                frame.createOrReplaceTempView(name)
            _ACTIVE[id(self.spark)] = self

    @classmethod
    def open(cls, settings: SparkSettings, spark: SparkSession | None = None) -> SparkEngine:
        """Start (or reuse) a session and read the tables of `settings`."""
        spark = spark or spark_session(settings.master, settings.conf)
        # Each scorecard's query scans orders several times: in local mode the parsed tables are kept
        # (memory, then disk); on a cluster, platform-sized tables are scanned again instead.
        local = settings.master.startswith("local")
        checked = read_checked_tables(spark, settings.data, dict(settings.tables), settings.timezone, local)
        return cls(
            spark,
            {name: t.valid for name, t in checked.items()},
            [t.rejected for t in checked.values() if t.rejected is not None],
            [t.cached for t in checked.values() if t.cached is not None],
            [w for t in checked.values() for w in t.warnings],
        )

    def close(self) -> None:
        """Drop the temp views and cached tables (the session stays up for reuse)."""
        if _ACTIVE.get(id(self.spark)) is self:
            for name in self.tables:
                self.spark.catalog.dropTempView(name)
            del _ACTIVE[id(self.spark)]
        for frame in [*self.tables.values(), *self._cached]:
            if frame.is_cached:
                frame.unpersist()

    def __enter__(self) -> SparkEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query(self, sql: str, order_by: str | None = None) -> pl.DataFrame:
        """Run Spark SQL and bring the rows to the driver as a polars frame (in no set order: a global
        sort in Spark costs more than sorting the frame)."""
        self._activate()
        try:
            return to_polars(self.spark.sql(sql))
        except Exception as exc:
            if type(exc).__module__.startswith(("pyspark", "py4j")):
                raise DataError(f"the metric query failed on Spark: {_first_line(exc)}") from None
            raise

    def register(self, name: str, frame: pl.DataFrame) -> None:
        """Make a frame (earlier scorecards' results) a temp view."""
        _quiet_pyspark()
        table = frame.to_arrow()
        if _arrow_input_supported():
            view = self.spark.createDataFrame(table)
        else:  # pyspark 3.5 takes pandas, not Arrow
            view = self.spark.createDataFrame(table.to_pandas())
        view.createOrReplaceTempView(name)

    def unregister(self, name: str) -> None:
        """Drop a temp view."""
        self.spark.catalog.dropTempView(name)

    def data_window(self) -> dict[str, tuple[datetime | None, datetime | None]]:
        """min/max of each required table's time column."""
        from pyspark.sql import functions as F

        parts = []
        for name in REQUIRED_TABLES:
            tc = TABLES[name].time_column
            assert tc is not None
            parts.append(
                self.tables[name].agg(F.lit(name).alias("t"), F.min(tc).alias("lo"), F.max(tc).alias("hi"))
            )
        union = parts[0]
        for part in parts[1:]:
            union = union.unionAll(part)
        rows = {row["t"]: (row["lo"], row["hi"]) for row in union.collect()}  # one job for the three
        return {name: rows[name] for name in REQUIRED_TABLES}

    def names(self, key: str) -> pl.DataFrame | None:
        """Shop names for shop keys, the latest item name for item keys (as on DuckDB)."""
        from chuanliu_cli.engines.base import NAME_QUERIES

        sql = NAME_QUERIES.get(key)
        return None if sql is None else self.query(sql)

    def brushing_marks(self, integrity: Integrity) -> bool:
        """Never: Spark reads the exports, which keep no brushing orders; its queries find them."""
        return False


def _arrow_input_supported() -> bool:
    import pyspark

    return int(pyspark.__version__.split(".")[0]) >= 4


def to_polars(frame: DataFrame) -> pl.DataFrame:
    """A Spark DataFrame's rows as polars, through Arrow (pandas on pyspark 3.5)."""
    import polars as pl

    _quiet_pyspark()
    if hasattr(frame, "toArrow"):
        result = pl.from_arrow(frame.toArrow())
        assert isinstance(result, pl.DataFrame)
        return result
    return pl.from_pandas(frame.toPandas())


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    text = re.sub(r"^\[[A-Z_.]+\]\s*", "", text)
    return text.splitlines()[0] if text else type(exc).__name__


# --- reading the tables ------------------------------------------------------------------------------------


def read_tables(
    spark: SparkSession,
    data: str | None,
    names: Mapping[str, str],
    timezone: str = "Asia/Shanghai",
    cache: bool = False,
) -> dict[str, DataFrame]:
    """The four canonical tables (valid rows only): Spark tables named in `names`, else files in `data`."""
    return {name: t.valid for name, t in read_checked_tables(spark, data, names, timezone, cache).items()}


def read_checked_tables(
    spark: SparkSession,
    data: str | None,
    names: Mapping[str, str],
    timezone: str = "Asia/Shanghai",
    cache: bool = False,
) -> dict[str, CheckedTable]:
    """The four canonical tables with their rejected rows counted: Spark tables named in `names`, else
    files found in `data`. Text files are always cached (parsed once); with `cache`, every table is."""
    found, skipped = _discover(spark, data) if data is not None else ({}, [])
    tables: dict[str, CheckedTable] = {}
    for table in TABLES.values():
        if table.name in names:
            try:
                raw = spark.table(names[table.name])
            except Exception as exc:
                raise DataError(
                    f"Spark table {names[table.name]} (for {table.name}): {_first_line(exc)}",
                    hint="name a table of Spark's catalog (db.table)",
                ) from None
            what = f"Spark table {names[table.name]}"
            notes: list[str] = []
            converted = canonical(raw, table, timezone, what, notes=notes)
            tables[table.name] = check_table(converted, table, what, cache)
            tables[table.name].warnings.extend(notes)
        elif table.name in found:
            kind, paths = found[table.name]
            what = file_names(paths)
            notes = []
            if kind == "openplatform":
                orders = tables["orders"].valid if "orders" in tables else None
                checked = _read_responses(spark, table, paths, timezone, orders, notes)
            else:
                checked = _read_files(spark, table, kind, paths, timezone, notes)
            if table.name == "orders" and MARKS in found:
                checked = _apply_marks(spark, checked, found[MARKS][1], timezone, notes)
            tables[table.name] = check_table(checked, table, what, cache or kind != "parquet")
            tables[table.name].warnings.extend(notes)
        elif table.optional:
            tables[table.name] = CheckedTable(_empty(spark, table), None)
        else:
            where = (
                f"in {data}" if data is not None else "among the Spark tables given (SparkSettings.tables)"
            )
            raise DataError(
                f"no {table.name} table {where}",
                hint=f"add {table.name}.parquet or {table.name}.csv to the data location, or name a Spark "
                f"table for it (SparkSettings.tables: {table.name} = db.{table.name})",
            )
    # the files left unread, said first (orders are always there)
    tables["orders"].warnings[:0] = unread_warnings(data or "", skipped)
    return tables


#: The entry of `_discover`'s result holding the cps lists of the open platform (they mark orders).
MARKS = "orders:cps"


def _responses_frame(spark: SparkSession, paths: list[str], lines: bool = False) -> tuple[DataFrame, Any]:
    """The rows of saved responses (ingest.formats.openplatform, as `chuanliu load` reads them) as a Spark
    frame of text cells with `__shape`, and `__line` (numbered across the files) when `lines`; and the
    first file's reader (its method and the scale of its amounts)."""
    import pyarrow as pa

    from chuanliu_cli.arrays import arrow_text
    from chuanliu_cli.ingest.formats.openplatform import open_responses

    parts: list[pa.Table] = []
    first = None
    number = 0
    notes: list[str] = []
    for path in paths:
        reader = open_responses(Path(path))
        first = first or reader
        selected = list(range(len(reader.headers)))
        for batch in reader.batches(selected):
            n = len(batch.lines)
            shape = [batch.shape_errors.get(k) for k in range(n)]
            arrays = [arrow_text(batch.columns[i]) for i in selected] + [pa.array(shape, type=pa.string())]
            names = [*reader.headers, "__shape"]
            if lines:
                arrays.append(pa.array(range(number + 1, number + n + 1), type=pa.int64()))
                names.append("__line")
                number += n
            parts.append(pa.Table.from_arrays(arrays, names=names))
        notes.extend(reader.notes)
    assert first is not None
    first.notes = notes
    names = [*first.headers, "__shape", *(["__line"] if lines else [])]
    table = pa.concat_tables(parts) if parts else pa.table({c: pa.array([], pa.string()) for c in names})
    if lines and not parts:
        table = table.set_column(len(names) - 1, "__line", pa.array([], pa.int64()))
    _quiet_pyspark()
    if _arrow_input_supported():
        return spark.createDataFrame(table), first
    return spark.createDataFrame(table.to_pandas(), schema=_text_schema(table)), first


def _text_schema(table: Any) -> str:
    return ", ".join(f"`{n}` {'bigint' if n == '__line' else 'string'}" for n in table.column_names)


def _read_responses(
    spark: SparkSession,
    table: Table,
    paths: list[str],
    timezone: str,
    orders: DataFrame | None,
    notes: list[str],
) -> DataFrame:
    """Saved responses of one table converted like `chuanliu load` converts them: amounts in fen (the
    scale of the format), and comments that name no shop take their order's (`orders`: the valid ones).
    What reading found (comments left out) is added to `notes`."""
    from dataclasses import replace

    from pyspark.sql import functions as F

    raw, reader = _responses_frame(spark, paths)
    what = file_names(paths)
    tm = default_mapping().for_table(table.name)
    tm = replace(tm, scale={**tm.scale, **reader.scale})
    if table.name == "reviews" and orders is not None:
        shops = orders.select(F.col("order_id").alias("__order"), F.col("shop_id").alias("__order_shop"))
        joined = raw.join(shops, raw["order_id"] == shops["__order"], "left")
        unknown = F.concat(
            F.lit("column shop_id: the comment names no shop and its order "),
            F.col("order_id"),
            F.lit(
                " is not loaded; load its orders (open.order.cursor.list responses or an orders export) "
                "first or in the same command"
            ),
        )
        missing = F.col("shop_id").isNull() & F.col("__order").isNull() & F.col("order_id").isNotNull()
        raw = joined.select(
            *(
                F.coalesce(F.col("shop_id"), F.col("__order_shop")).alias("shop_id") if c == "shop_id" else c
                for c in raw.columns
                if c != "__shape"
            ),
            F.when(F.col("__shape").isNull() & missing, unknown).otherwise(F.col("__shape")).alias("__shape"),
        )
    notes.extend(reader.notes)  # comments the platform marks invalid, left out
    return canonical(raw, table, timezone, what, tm, notes=notes)


def _apply_marks(
    spark: SparkSession, orders: DataFrame, paths: list[str], timezone: str, notes: list[str]
) -> DataFrame:
    """The converted orders with the cps lists' marks applied as `chuanliu load` applies them: each order a
    list names becomes a distribution order of its promoter; a row naming no loaded order is said in
    `notes` (and left out), as are rows the canonicalization refuses."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from chuanliu_cli.ingest.formats.openplatform import marks_mapping

    what = file_names(paths)
    raw, _ = _responses_frame(spark, paths, lines=True)
    tm = marks_mapping(default_mapping().for_table("orders"))
    converted = canonical(raw, tm.table, timezone, what, tm, notes=notes)
    bad = (
        converted.where("`__reason` IS NOT NULL").select("order_id", "__reason").limit(SHOW_REJECTS).collect()
    )
    last = Window.partitionBy("order_id").orderBy(F.col("__line").desc())
    marks = (
        converted.where("`__reason` IS NULL")
        .withColumn("__n", F.row_number().over(last))
        .where("__n = 1")
        .select(
            F.col("order_id").alias("__mark"),
            F.col("promoter_id").alias("__promoter"),
            F.col("promoter_name").alias("__name"),
        )
    )
    valid = orders.where("`__reason` IS NULL").select(F.col("order_id").alias("__known"))
    unmatched = marks.join(valid, marks["__mark"] == valid["__known"], "left_anti")
    missing = [r[0] for r in unmatched.select("__mark").limit(SHOW_REJECTS + 1).collect()]
    if missing:
        count = unmatched.count() if len(missing) > SHOW_REJECTS else len(missing)
        notes.append(
            f"{what}: {count} cps row(s) name orders that are not among the orders and were left out "
            f"(load their orders too): order {', '.join(missing[:SHOW_REJECTS])}"
        )
    if bad:
        notes.append(f"{what}: cps rows refused: " + "; ".join(f"{r[0]}: {r[1]}" for r in bad))
    joined = orders.join(marks, orders["order_id"] == marks["__mark"], "left")
    marked = F.col("__mark").isNotNull()
    same = F.col("__promoter").isNull() | (F.col("__promoter") == F.col("promoter_id"))
    columns = []
    for c in orders.columns:
        if c == "sale_mode":
            columns.append(F.when(marked, F.lit("distribution")).otherwise(F.col(c)).alias(c))
        elif c == "promoter_id":
            columns.append(
                F.when(marked, F.coalesce(F.col("__promoter"), F.col(c))).otherwise(F.col(c)).alias(c)
            )
        elif c == "promoter_name":
            kept = F.when(same, F.col(c)).otherwise(F.lit(None).cast("string"))
            columns.append(F.when(marked, F.coalesce(F.col("__name"), kept)).otherwise(F.col(c)).alias(c))
        else:
            columns.append(F.col(c))
    return joined.select(*columns)


def _hadoop_path(spark: SparkSession, location: str) -> Any:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    return jvm.org.apache.hadoop.fs.Path(location)


def _discover(
    spark: SparkSession, data: str
) -> tuple[dict[str, tuple[str, list[str]]], list[DiscoveredFile]]:
    """Table -> (format, paths) for the files and folders in `data`, recognised by name as the loader's
    directory discovery does; and the entries skipped."""
    location = data
    local: Path | None = None
    if "://" not in data and not data.startswith("file:"):
        local = Path(data)
        if not local.is_dir():
            raise DataError(f"{data}: not a directory")
        location = "file://" + str(local.resolve())
    try:
        root = _hadoop_path(spark, location)
        fs = root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
        statuses = fs.listStatus(root)
    except Exception as exc:
        raise DataError(f"{data}: cannot list it ({_first_line(exc)})") from None
    found: dict[str, tuple[str, list[str]]] = {}
    skipped: list[DiscoveredFile] = []
    for status in sorted(statuses, key=lambda s: str(s.getPath().getName())):
        name = str(status.getPath().getName())
        # The loader's rules (ingest.discover); a folder named like a table is a Parquet dataset.
        folder = bool(status.isDirectory())
        reason = skip_reason(name, folder)
        # saved open-platform responses are read on the driver (a local directory: they are small pages)
        path = local / name if local is not None and reason is None and not folder else None
        shaped = response_file(path) if path is not None else None
        if path is not None and shaped is not None and shaped.table is not None:
            table = MARKS if shaped.why == f"open-platform response {CPS.name}" else shaped.table
            previous = found.get(table)
            if previous is not None and previous[0] != "openplatform":
                raise DataError(
                    f"{data}: {table} comes as both {previous[0]} and open-platform responses; "
                    "keep one format"
                )
            found.setdefault(table, ("openplatform", []))[1].append(str(path))
            continue
        if shaped is not None:
            entry = shaped  # an unknown method: skipped, with why
        elif reason is not None and not (folder and reason != HIDDEN):
            entry = DiscoveredFile(Path(name), None, reason)
        else:
            entry = infer(Path(name), None if folder else _spark_header(spark, status))
        if entry.table is None:
            skipped.append(entry)
            continue
        table = entry.table
        suffix = Path(name).suffix.lower()
        if status.isDirectory() or suffix == ".parquet":
            kind = "parquet"
        elif suffix in (".csv", ".tsv", ".txt"):
            kind = "tsv" if suffix == ".tsv" else "csv"
        else:
            raise DataError(
                f"{data}/{name}: the Spark engine reads Parquet and CSV only",
                hint="convert it, or score with the DuckDB engine, which reads every export format",
            )
        previous = found.get(table)
        if previous is not None and previous[0] != kind:
            shown = "open-platform responses" if previous[0] == "openplatform" else previous[0]
            raise DataError(f"{data}: {table} comes as both {shown} and {kind}; keep one format")
        found.setdefault(table, (kind, []))[1].append(str(status.getPath().toString()))
    if not [t for t in found if t != MARKS]:
        raise no_exports(data, skipped)
    return found, skipped


def _spark_header(spark: SparkSession, status: Any) -> HeaderReader:
    """Reads the header of a file whose name names no table (Parquet: its schema; CSV: its first line)."""

    def read(_: Path) -> list[str]:
        location = str(status.getPath().toString())
        suffix = Path(location).suffix.lower()
        try:
            if suffix == ".parquet":
                return list(spark.read.parquet(location).columns)
            if suffix in (".csv", ".tsv", ".txt"):
                sep = "\t" if suffix == ".tsv" else ","
                return list(spark.read.csv(location, header=True, sep=sep, inferSchema=False).columns)
        except Exception as exc:
            raise DataError(_first_line(exc)) from None
        raise DataError("the Spark engine reads only Parquet and CSV")

    return read


def _read_files(
    spark: SparkSession, table: Table, kind: str, paths: list[str], timezone: str, notes: list[str]
) -> DataFrame:
    """The files of a table converted (`canonical`: with `__line` and `__reason`; what it says, in
    `notes`).

    Columns are matched by name in every file, as the loader matches them: Spark reads several CSV files
    by the first one's header, by position, so files whose headers differ (another column order, a
    column fewer) are read apart, each group converted as one file is, and their rows put together by
    column name; Parquet files are read with their schemas merged by name (Spark otherwise takes one
    file's columns and drops the others')."""
    if kind == "parquet":
        what = file_names(paths)
        try:
            raw = spark.read.option("mergeSchema", "true").parquet(*paths)
        except Exception as exc:
            raise DataError(f"{what}: cannot read it ({_first_line(exc)})") from None
        return canonical(raw, table, timezone, what, notes=notes)
    sep = "\t" if kind == "tsv" else ","
    groups: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for path in paths:
        groups.setdefault(_csv_layout(spark, path, sep), []).append(path)
    converted = []
    for (encoding, header), group in groups.items():
        _check_lines(spark, group, sep, len(header))
        converted.append(
            canonical(_read_csv(spark, group, sep, encoding), table, timezone, file_names(group), notes=notes)
        )
    frame = converted[0]
    for other in converted[1:]:
        frame = frame.unionByName(other, allowMissingColumns=True)
    return frame


def _read_csv(spark: SparkSession, paths: list[str], sep: str, encoding: str) -> DataFrame:
    """CSV files of one header and encoding as text cells (ids keep their leading zeros; parsing is
    `canonical`'s)."""
    try:
        return spark.read.csv(
            paths,
            header=True,
            inferSchema=False,
            sep=sep,
            encoding=encoding,
            quote='"',
            escape='"',  # RFC 4180: a quote inside a quoted cell is doubled
            multiLine=True,  # a quoted cell may hold a line break (a name), as the loader reads it
        )
    except Exception as exc:
        raise DataError(f"{file_names(paths)}: cannot read it ({_first_line(exc)})") from None


def _check_lines(spark: SparkSession, paths: list[str], sep: str, width: int) -> None:
    """Refuse CSV files with lines that are not UTF-8, or rows of another number of fields than their
    header, in one pass over their text.

    The encoding is decided from a file's first MiB (`_csv_layout`); Spark's CSV reader turns bytes that
    are not UTF-8 after it into U+FFFD without a word (a GB18030 line appended to a UTF-8 export: its
    names garbled, a 直播间 carrier no longer read as live), where the loader reads such a line in its own
    encoding and says so. Spark's reader also pads a short row with nulls and drops a long row's extra
    fields, where the loader rejects the row (`has 16 fields, the header has 15`): a trailing comma on a
    few orders changed the list without a word. Lines holding a quote are not counted for their fields
    (a quoted cell may hold the separator or a line break); blank lines and repeated headers are skipped,
    as the loader skips them."""
    from pyspark.sql import functions as F

    text = spark.read.text(paths).select(F.col("value").alias("line"))
    fields = F.size(F.split(F.col("line"), re.escape(sep), -1))
    wrong_width = (
        ~F.col("line").contains('"')
        & (F.length(F.regexp_replace(F.col("line"), rf"[\s{re.escape(sep)}]", "")) > 0)
        & (fields != width)
    )
    problem = F.when(~F.is_valid_utf8(F.col("line")), F.lit("encoding")).when(wrong_width, F.lit("width"))
    odd = text.select("line", problem.alias("problem")).where(F.col("problem").isNotNull())
    found = odd.orderBy(F.col("problem")).limit(SHOW_REJECTS).collect()  # ("encoding" first)
    if not found:
        return
    shown = "; ".join(repr(r[0][:80]) for r in found if r[1] == found[0][1])
    if found[0][1] == "encoding":
        count = odd.where(F.col("problem") == "encoding").count()
        raise DataError(
            f"{file_names(paths)}: {count} line(s) are not UTF-8 after a first MiB that is, e.g. {shown}; "
            "Spark would read them garbled (a GB18030 part appended to a UTF-8 export?)",
            hint="save the file as UTF-8 throughout (iconv), or score with the DuckDB engine, which reads "
            "each part in its own encoding",
        )
    count = odd.count()
    raise DataError(
        f"{file_names(paths)}: {count} line(s) have another number of fields than the header's {width}, "
        f"e.g. {shown}; the Spark engine cannot reject them row by row as `load` does",
        hint="fix those lines (a stray separator at the end?), or score with the DuckDB engine, which "
        "rejects them and scores the others",
    )


#: How much of a CSV file `_csv_layout` reads to decide its encoding (as much as the loader's first look).
_PREFIX = 1 << 20
#: The encodings `ingest.readers.detect_encoding` finds that Spark's CSV reader reads (Spark 4 refuses
#: GB18030 unless a legacy setting allows every Java charset).
_SPARK_ENCODINGS = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8"}


def _csv_layout(spark: SparkSession, path: str, sep: str) -> tuple[str, tuple[str, ...]]:
    """A CSV file's encoding (as the loader detects it, from its first MiB) and its header (normalized as
    the loader compares headers), read on the driver through the file's own file system (local, HDFS,
    object stores).
    Spark reads every file as UTF-8: a GB18030 export's names came out as mojibake, silently; it is
    refused now, as any file not in UTF-8."""
    import csv

    from chuanliu_cli.ingest.readers import detect_encoding

    name = file_names([path])
    location = _hadoop_path(spark, path)
    try:
        stream = location.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).open(location)
        try:
            prefix = bytes(stream.readNBytes(_PREFIX))
        finally:
            stream.close()
    except Exception as exc:
        raise DataError(f"{name}: cannot read it ({_first_line(exc)})") from None
    if len(prefix) == _PREFIX and b"\n" in prefix:
        prefix = prefix[: prefix.rindex(b"\n") + 1]  # (whole lines: no character cut in two)
    found = detect_encoding(Path(name), prefix)
    encoding = _SPARK_ENCODINGS.get(found)
    if encoding is None:
        raise DataError(
            f"{name}: the file is {found.upper()}, and the Spark engine reads CSV in UTF-8 only",
            hint=f"save it as UTF-8 (iconv -f {found} -t utf-8), or score it with the DuckDB engine, which "
            "reads it as it is",
        )
    first = prefix.split(b"\n", 1)[0].decode(found, errors="replace").rstrip("\r")
    return encoding, tuple(normalize_header(cell) for cell in next(csv.reader([first], delimiter=sep), []))


def file_names(paths: Iterable[str]) -> str:
    """Files as messages name them: their names, without the folders."""
    return ", ".join(p.rsplit("/", 1)[-1] for p in paths)


def _empty(spark: SparkSession, table: Table) -> DataFrame:
    """An empty canonical table (shops is optional)."""
    schema = ", ".join(f"`{c.name}` {_SPARK_TYPES[c.type]}" for c in table.columns)
    return spark.createDataFrame([], schema)


#: Spark SQL type of each column type (schema.SQL_TYPES for Spark).
_SPARK_TYPES = {
    "text": "string",
    "enum": "string",
    "timestamp": "timestamp_ntz",
    "amount": "decimal(14,2)",
    "integer": "bigint",
    "number": "double",
    "score": "tinyint",
    "boolean": "boolean",
}


@dataclass(frozen=True)
class SparkReject:
    """A row left out of a table because `chuanliu load` would reject it, and why."""

    table: str
    source: str  # the files or the Spark table the row came from
    key: str | None  # the row's key (as parsed; None when it has none)
    line: int | None  # the row's line when the source numbers its rows (a `__line` column), else None
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else f"{TABLES[self.table].key} {self.key}"
        return f"{self.source} {where}: {self.reason}"


@dataclass(frozen=True)
class RejectedRows:
    """How many rows of one table were left out, with the first few of them."""

    table: str
    source: str
    count: int
    examples: tuple[SparkReject, ...]

    def __str__(self) -> str:
        rows = "row" if self.count == 1 else "rows"
        first = f"; e.g. {self.examples[0]}" if self.examples else ""
        return f"{self.source}: {self.count} {rows} of {self.table} rejected and left out{first}"


@dataclass
class CheckedTable:
    """One table read through the canonicalization: its valid rows, and the rows left out."""

    valid: DataFrame
    rejected: RejectedRows | None
    cached: DataFrame | None = None  # the frame to unpersist on close
    warnings: list[str] = field(default_factory=list)  # about valid rows kept as they are


def canonical(
    raw: DataFrame,
    table: Table,
    timezone: str,
    what: str,
    tm: TableMapping | None = None,
    *,
    notes: list[str],
) -> DataFrame:
    """`raw` converted to the table's canonical columns and types, with `__line` and `__reason`; what the
    loader would say of the headers (two that map to one column: which is read) is added to `notes`.

    The query is `ingest.conversion.conversion_sql` rendered for Spark: the very parsing, checks, defaults,
    derived columns and reason texts of `chuanliu load`. `raw` has the headers the loader's default mapping
    reads (canonical names or their aliases; any case, surrounding spaces and a BOM ignored; `tm`, another
    mapping) and may have `__line`, the row's line in its file, and `__shape`,
    the reason a reader could not read a row as a row. A row is valid where `__reason` is NULL.
    """
    from pyspark.sql import functions as F

    # the loader's mapping: canonical names and every header it accepts (类目, 涨粉数, 直播时长(秒), ...)
    tm = tm or default_mapping().for_table(table.name)
    headers = [c for c in raw.columns if c not in ("__line", "__shape")]
    # refuses what the loader refuses, and says what it says; the choice is the mapping's
    notes.extend(collision_notes(tm, headers, what))
    tm = tm.with_units({**tm.units, **tm.for_headers(headers).units})
    present = {c: headers[i] for c, i in tm.resolve(headers).items() if not table.column(c).derived}
    missing = [
        c.name for c in table.columns if c.required and c.name not in present and c.name != "sale_mode"
    ]
    if table.name == "livestreams" and not ({"end_time", "duration_minutes"} & present.keys()):
        missing.append("end_time or duration_minutes")
    if missing:
        raise DataError(
            f"{what}: no column {', '.join(missing)} for table {table.name}",
            hint="the Spark engine reads the headers `load` reads without a mapping file (canonical names "
            "and the default aliases); a --mapping file is for the DuckDB engine",
        )
    types = {f.name: f.dataType.simpleString() for f in raw.schema.fields}
    source_types: dict[str, str] = {}
    for column, source in present.items():
        duck = _duck_type(types[source])
        if duck is None:
            raise DataError(
                f"{what}: column {column} holds {types[source]} values, not text, numbers or times",
                hint="export that column as plain values",
            )
        source_types[column] = duck
    # `__line` and `__shape` (a row that could not be read as a row) come from a reader that knows them
    line = F.col("__line").cast("bigint") if "__line" in raw.columns else F.lit(None).cast("bigint")
    shape = F.col("__shape").cast("string") if "__shape" in raw.columns else F.lit(None).cast("string")
    frame = raw.select(
        *(F.col(f"`{source}`").alias(column) for column, source in present.items()),
        line.alias("__line"),
        shape.alias("__shape"),
    )
    view = f"chuanliu_raw_{table.name}_{next(_VIEWS)}"
    frame.createOrReplaceTempView(view)
    try:
        sql, _ = conversion_sql(
            tm,
            source_types,
            timezone,
            source=view,
            dialect="spark",
        )
        return frame.sparkSession.sql(sql)
    finally:
        # (the query is analysed: it holds the frame's plan, not the view's name)
        frame.sparkSession.catalog.dropTempView(view)


_VIEWS = itertools.count()


#: Spark's type names (DataType.simpleString) as the DuckDB type names the canonicalization reads.
_DUCK_TYPES = {
    "string": "VARCHAR",
    "void": "VARCHAR",
    "tinyint": "TINYINT",
    "smallint": "SMALLINT",
    "int": "INTEGER",
    "bigint": "BIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP WITH TIME ZONE",  # an instant (Parquet's adjusted-to-UTC times)
    "timestamp_ntz": "TIMESTAMP",
}


def _duck_type(spark_type: str) -> str | None:
    if spark_type.startswith("decimal("):
        return spark_type.upper()
    if spark_type.startswith("varchar(") or spark_type.startswith("char("):
        return "VARCHAR"
    return _DUCK_TYPES.get(spark_type)


#: The loader's reject limits, which a table's source on Spark must keep within (`load`'s defaults).
REJECT_LIMITS = LoadOptions()


def check_table(checked: DataFrame, table: Table, what: str, cache: bool) -> CheckedTable:
    """The valid rows of a converted table and a count of the others with their first few (one job when
    no row is rejected). With `cache`, the converted rows are kept (memory, then disk) for both."""
    if cache:
        checked = checked.cache()
    examples = (
        checked.where("`__reason` IS NOT NULL")
        .select(table.key, "__line", "__reason")
        .limit(SHOW_REJECTS)
        .collect()
    )
    warnings = []
    view = f"chuanliu_checked_{table.name}_{next(_VIEWS)}"
    warning_sql = duration_warning_sql(table.name, view, "spark")
    if warning_sql is not None:
        checked.createOrReplaceTempView(view)
        try:
            doubtful = [tuple(r) for r in checked.sparkSession.sql(warning_sql).collect()]
        finally:
            checked.sparkSession.catalog.dropTempView(view)
        warning = duration_warning(what, doubtful)
        if warning is not None:
            warnings.append(warning)
    rejected = None
    if examples:
        count = len(examples)
        if count == SHOW_REJECTS:
            count = checked.where("`__reason` IS NOT NULL").count()
        rows = tuple(SparkReject(table.name, what, r[0], r[1], r[2]) for r in examples)
        rejected = RejectedRows(table.name, what, count, rows)
        # the loader's reject limits: a source mostly unreadable (another encoding, another layout) is
        # refused rather than scored on what is left of it
        limits, read = REJECT_LIMITS, checked.count()
        if limits.too_many_rejects(count, read):
            raise DataError(
                f"{what}: {limits.over_limits(count, read)} as rows of {table.name}; nothing was scored",
                hint="fix the data (the first rejects are below), or load it with `chuanliu load "
                "--max-reject-rate ... --max-reject-rows ...` and score the database",
                details=[str(r) for r in rows],
            )
    valid = checked.where("`__reason` IS NULL").drop("__line", "__reason")
    valid, repeated = _unique_keys(valid, table, what)
    if repeated is not None:
        warnings.append(repeated)
    return CheckedTable(valid, rejected, checked if cache else None, warnings)


def _unique_keys(valid: DataFrame, table: Table, what: str) -> tuple[DataFrame, str | None]:
    """The valid rows with each key once, and a warning when rows were read twice.

    The metric queries count a repeated key twice (an order in two overlapping exports: its amount
    summed twice). Rows repeated whole (the same key, the same values) are read once, with a warning;
    a key repeated with different values is refused: Spark keeps no file order or line to pick the
    latest by, as `load` does. One job when no key repeats."""
    key = table.key
    repeats = valid.groupBy(key).count().where("`count` > 1")
    if not repeats.limit(1).collect():
        return valid, None
    distinct = valid.dropDuplicates()
    differing = distinct.groupBy(key).count().where("`count` > 1")
    examples = differing.orderBy(key).limit(SHOW_REJECTS).collect()
    if examples:
        total = differing.count()
        shown = ", ".join(f"{r[0]} ({r[1]} different rows)" for r in examples)
        more = f" and {total - len(examples)} more" if total > len(examples) else ""
        raise DataError(
            f"{what}: {total} {key} value(s) of {table.name} come with different values in different rows: "
            f"{shown}{more}; the Spark engine cannot tell which row is the latest",
            hint="keep each key in one row (one export per period, without overlaps), or load the files "
            "with `chuanliu load`, which keeps the last file's row and lists the others in rejected_rows",
        )
    first = repeats.orderBy(key).limit(SHOW_REJECTS).collect()
    extra = valid.count() - distinct.count()
    shown = ", ".join(str(r[0]) for r in first)
    return distinct, (
        f"{what}: {extra} repeated row(s) of {table.name} (the same {key} with the same values, e.g. "
        f"{shown}) read once"
    )
