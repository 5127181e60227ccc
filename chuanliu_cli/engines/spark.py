"""The metric queries on Spark (`--engine spark`, SPEC §8): pyspark, an optional extra.

Only the compiled metric query of each scorecard runs on Spark, rendered for the Spark dialect from the
same sqlglot tree as for DuckDB; the per-entity metric rows come back to the driver (Arrow), and scoring,
gates, tiers and allocation are the same Python code as for DuckDB.

The session computes in UTC with `spark.sql.timestampType=TIMESTAMP_NTZ`: times are naive local times
(SPEC §2) and stay naive, so dates, ISO weeks and window bounds are the same as on DuckDB. ANSI mode is
on, as DuckDB errors rather than silently overflowing or mis-casting.

The four tables come from a directory or any Spark-readable location (`--data`: Parquet or CSV with the
canonical column names) or from tables of Spark's catalog (`--spark-table orders=db.orders`). Either way
each column is cast to its canonical type, the derived columns net_amount, quality_return and
duration_minutes are computed exactly as `loading/convert.py` computes them, and rows that `chuanliu
load` would reject (empty required values, values that do not parse, out of range) are left out.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from chuanliu_cli.errors import DataError, UsageError
from chuanliu_cli.ingest.canonical import MAX_TIME, MIN_TIME
from chuanliu_cli.ingest.loader import table_for_file
from chuanliu_cli.schema import QUALITY_REFUND_REASONS, REQUIRED_TABLES, TABLES, Column, Table

if TYPE_CHECKING:
    import polars as pl
    from pyspark.sql import DataFrame, SparkSession

#: Session settings the engine relies on; --spark-conf cannot change them.
FIXED_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.ansi.enabled": "true",
}

#: Defaults for a local session (any of them can be changed with --spark-conf).
LOCAL_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.memory": "4g",
    # Few, larger partitions: local mode has only the machine's cores (adaptive execution merges more).
    "spark.sql.shuffle.partitions": str(max(4, 2 * (os.cpu_count() or 1))),
}

#: Spark's column type names (DataType.typeName()) grouped as the parsing below needs them.
_NUMBER_TYPES = ("byte", "short", "integer", "long", "float", "double", "decimal")
_FLOAT_TYPES = ("float", "double")

#: Naive timestamp layouts besides the ISO ones a cast reads (SPEC §2), as Spark datetime patterns.
_TIME_PATTERNS = (
    "yyyy/M/d H:mm:ss",
    "yyyy/M/d H:mm",
    "yyyy/M/d H:mm:ss.SSSSSS",
    "yyyy/M/d",
    "yyyy-M-d H:mm",
    "yyyyMMdd HH:mm:ss",
    "yyyy年M月d日 H:mm:ss",
    "yyyy年M月d日 H:mm",
    "yyyy年M月d日",
)

#: Layouts with a UTC offset (loading/convert.py _AWARE_FORMATS).
_AWARE_PATTERNS = (
    "yyyy-MM-dd'T'HH:mm:ss[.SSSSSS]XXX",
    "yyyy-MM-dd HH:mm:ss[.SSSSSS]XXX",
    "yyyy-MM-dd'T'HH:mmXXX",
    "yyyy-MM-dd'T'HH:mm:ss[.SSSSSS]XX",
    "yyyy-MM-dd HH:mm:ss[.SSSSSS]XX",
)

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
"""


@dataclass(frozen=True)
class SparkSettings:
    """Where Spark runs and where the tables come from (the --spark-* and --data options)."""

    master: str = "local[*]"
    conf: tuple[tuple[str, str], ...] = ()
    data: str | None = None
    tables: tuple[tuple[str, str], ...] = ()  # canonical table -> Spark table name
    timezone: str = "Asia/Shanghai"  # of aware times in the data, as for --data on DuckDB


def parse_pairs(values: Iterable[str], option: str) -> tuple[tuple[str, str], ...]:
    """`key=value` strings as pairs; a UsageError naming the option for anything else."""
    pairs = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} {value!r}: expected KEY=VALUE")
        pairs.append((key.strip(), rest.strip()))
    return tuple(pairs)


def spark_tables(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """--spark-table pairs checked against the canonical table names."""
    out = []
    for table, name in pairs:
        if table not in TABLES:
            raise UsageError(
                f"--spark-table {table}={name}: unknown table {table!r}",
                hint=f"use one of {', '.join(TABLES)}",
            )
        if not name:
            raise UsageError(f"--spark-table {table}=: give the Spark table name, e.g. {table}=db.{table}")
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
            "--engine spark needs pyspark", hint="pip install 'chuanliu[spark]' (and Java 17 or later)"
        ) from None
    _quiet_pyspark()
    given = dict(conf)
    for key in FIXED_CONF:
        if key in given and given[key] != FIXED_CONF[key]:
            raise UsageError(f"--spark-conf {key} cannot be changed: the engine needs {FIXED_CONF[key]}")
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

    def __init__(self, spark: SparkSession, tables: Mapping[str, DataFrame]) -> None:
        self.spark = spark
        self.tables = dict(tables)
        self._activate()

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
        tables = read_tables(spark, settings.data, dict(settings.tables), settings.timezone, cache=local)
        return cls(spark, tables)

    def close(self) -> None:
        """Drop the temp views and cached tables (the session stays up for reuse)."""
        if _ACTIVE.get(id(self.spark)) is self:
            for name in self.tables:
                self.spark.catalog.dropTempView(name)
            del _ACTIVE[id(self.spark)]
        for frame in self.tables.values():
            if frame.is_cached:
                frame.unpersist()

    def __enter__(self) -> SparkEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query(self, sql: str) -> pl.DataFrame:
        """Run Spark SQL and bring the rows to the driver as a polars frame."""
        self._activate()
        try:
            return to_polars(self.spark.sql(sql))
        except Exception as exc:
            if type(exc).__module__.startswith(("pyspark", "py4j")):
                raise DataError(f"the metric query failed on Spark: {_first_line(exc)}") from None
            raise

    def register(self, name: str, table: Any) -> None:
        """Make an arrow table (earlier scorecards' results) a temp view."""
        _quiet_pyspark()
        if _arrow_input_supported():
            frame = self.spark.createDataFrame(table)
        else:  # pyspark 3.5 takes pandas, not Arrow
            frame = self.spark.createDataFrame(table.to_pandas())
        frame.createOrReplaceTempView(name)

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
    """The four canonical tables: Spark tables named in `names`, else files found in `data`.

    Text files are always cached (parsed once); with `cache`, every table is.
    """
    found = _discover(spark, data) if data is not None else {}
    tables: dict[str, DataFrame] = {}
    for table in TABLES.values():
        if table.name in names:
            try:
                raw = spark.table(names[table.name])
            except Exception as exc:
                raise DataError(
                    f"--spark-table {table.name}={names[table.name]}: {_first_line(exc)}",
                    hint="name a table of Spark's catalog (db.table)",
                ) from None
            tables[table.name] = canonical(raw, table, timezone, f"Spark table {names[table.name]}")
        elif table.name in found:
            kind, paths = found[table.name]
            tables[table.name] = _read_files(spark, table, kind, paths, timezone)
            if kind != "parquet":
                tables[table.name] = tables[table.name].cache()
        elif table.optional:
            tables[table.name] = _empty(spark, table)
        else:
            where = f"in {data}" if data is not None else "among the --spark-table options"
            raise DataError(
                f"no {table.name} table {where}",
                hint=f"add {table.name}.parquet or {table.name}.csv to --data, or --spark-table "
                f"{table.name}=db.{table.name}",
            )
    if cache:
        tables = {name: frame if frame.is_cached else frame.cache() for name, frame in tables.items()}
    return tables


def _hadoop_path(spark: SparkSession, location: str) -> Any:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    return jvm.org.apache.hadoop.fs.Path(location)


def _discover(spark: SparkSession, data: str) -> dict[str, tuple[str, list[str]]]:
    """Table -> (format, paths) for the files and folders in `data`, recognised by name like `load --dir`."""
    location = data
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
    for status in sorted(statuses, key=lambda s: str(s.getPath().getName())):
        name = str(status.getPath().getName())
        if name.startswith((".", "_")):
            continue
        table = table_for_file(Path(name))
        if table is None:
            continue
        suffix = Path(name).suffix.lower()
        if status.isDirectory() or suffix == ".parquet":
            kind = "parquet"
        elif suffix in (".csv", ".tsv", ".txt"):
            kind = "tsv" if suffix == ".tsv" else "csv"
        else:
            raise DataError(
                f"{data}/{name}: the Spark engine reads Parquet and CSV only",
                hint="convert it, or score with --engine duckdb",
            )
        previous = found.get(table)
        if previous is not None and previous[0] != kind:
            raise DataError(f"{data}: {table} comes as both {previous[0]} and {kind}; keep one format")
        found.setdefault(table, (kind, []))[1].append(str(status.getPath().toString()))
    if not found:
        raise DataError(
            f"{data}: no export files found",
            hint="name them orders*, reviews*, livestreams*, shops* (.parquet, .csv or Parquet folders)",
        )
    return found


def _read_files(spark: SparkSession, table: Table, kind: str, paths: list[str], timezone: str) -> DataFrame:
    what = ", ".join(p.rsplit("/", 1)[-1] for p in paths)
    try:
        if kind == "parquet":
            raw = spark.read.parquet(*paths)
        else:
            # Every cell as text, as written: ids keep their leading zeros, parsing is done below.
            raw = spark.read.csv(
                paths,
                header=True,
                inferSchema=False,
                sep="\t" if kind == "tsv" else ",",
                encoding="UTF-8",
                quote='"',
                escape='"',  # RFC 4180: a quote inside a quoted cell is doubled
            )
    except Exception as exc:
        raise DataError(f"{what}: cannot read it ({_first_line(exc)})") from None
    return canonical(raw, table, timezone, what)


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


def canonical(raw: DataFrame, table: Table, timezone: str, what: str) -> DataFrame:
    """`raw` with the table's canonical columns and types, derived columns, and only valid rows.

    Mirrors `loading/convert.py`: the same defaults, value maps, parsing and derived columns; rows it
    would reject are filtered out. The projection is built as sqlglot trees rendered for Spark, so that
    Spark receives one expression per column instead of thousands of calls through the Java gateway.
    """
    by_name: dict[str, str] = {}
    for name in raw.columns:
        by_name.setdefault(name.strip().lstrip("\ufeff").lower(), name)
    present = {c.name: by_name[c.name.lower()] for c in table.columns if c.name.lower() in by_name}
    missing = [
        c.name for c in table.columns if c.required and c.name not in present and c.name != "sale_mode"
    ]
    if missing:
        raise DataError(
            f"{what}: no column {', '.join(missing)} for table {table.name}",
            hint="the Spark engine reads canonical column names; `chuanliu load` maps other headers",
        )
    types = {f.name: f.dataType.typeName() for f in raw.schema.fields}
    # As in convert.py: `parsed` holds each cell parsed (NULL when absent, empty or unreadable), and
    # defaults, derived columns and row checks are computed from the parsed values.
    parsed: dict[str, exp.Expr] = {}
    valid: list[exp.Expr] = []
    for col in table.columns:
        if col.derived:
            continue
        if col.name not in present:
            parsed[col.name] = _cast(exp.Null(), _parsed_type(col))
            continue
        source = present[col.name]
        cell = exp.Column(this=exp.Identifier(this=source, quoted=True))
        parsed[col.name] = _parse(col, cell, types[source], timezone)
        valid.extend(_checks(col, cell, parsed[col.name]))
    valid.extend(_row_checks(table, parsed))
    derived = _derived(table, parsed)
    outputs = [derived[c.name] if c.name in derived else _finish(c, parsed) for c in table.columns]
    select = [
        exp.Alias(this=o, alias=exp.Identifier(this=c.name, quoted=True)).sql(dialect="spark")
        for o, c in zip(outputs, table.columns, strict=True)
    ]
    condition = exp.and_(*(exp.Paren(this=_coalesce(v, exp.true())) for v in valid)) if valid else exp.true()
    valid_sql = exp.Alias(this=condition, alias=exp.Identifier(this="__valid", quoted=True)).sql(
        dialect="spark"
    )
    return raw.selectExpr(*select, valid_sql).where("`__valid`").drop("__valid")


def _parsed_type(col: Column) -> str:
    return {"timestamp": "timestamp_ntz", "text": "string", "enum": "string", "boolean": "string"}.get(
        col.type, "decimal(38,6)"
    )


# Small builders for Spark SQL trees. sqlglot does not parenthesize constructed trees by precedence,
# so every operand that is not atomic is wrapped.


def _p(node: exp.Expr) -> exp.Expr:
    atomic = exp.Column | exp.Literal | exp.Paren | exp.Func | exp.Null | exp.Boolean | exp.Cast | exp.Case
    return node if isinstance(node, atomic) else exp.Paren(this=node)


def _fn(name: str, *args: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=name, expressions=[a.copy() for a in args])


def _s(value: str) -> exp.Expr:
    return exp.Literal.string(value)


def _n(value: float | int | str) -> exp.Expr:
    return exp.Literal.number(value)


@functools.cache
def _data_type(name: str) -> exp.DataType:
    return exp.DataType.build(name, dialect="spark")


def _cast(x: exp.Expr, to: str) -> exp.Expr:
    return exp.Cast(this=x.copy(), to=_data_type(to).copy())


def _coalesce(*args: exp.Expr) -> exp.Expr:
    return exp.Coalesce(this=args[0].copy(), expressions=[a.copy() for a in args[1:]])


def _case(*whens: tuple[exp.Expr, exp.Expr], default: exp.Expr | None = None) -> exp.Expr:
    return exp.Case(
        ifs=[exp.If(this=c.copy(), true=v.copy()) for c, v in whens],
        default=default.copy() if default is not None else None,
    )


def _bin(cls: type[exp.Binary], a: exp.Expr, b: exp.Expr) -> exp.Expr:
    return cls(this=_p(a.copy()), expression=_p(b.copy()))


def _and(*conds: exp.Expr) -> exp.Expr:
    return exp.and_(*(exp.Paren(this=c.copy()) for c in conds))


def _or(*conds: exp.Expr) -> exp.Expr:
    return exp.Paren(this=exp.or_(*(exp.Paren(this=c.copy()) for c in conds)))


def _not(cond: exp.Expr) -> exp.Expr:
    return exp.Not(this=exp.Paren(this=cond.copy()))


def _is_null(x: exp.Expr) -> exp.Expr:
    return exp.Is(this=_p(x.copy()), expression=exp.Null())


def _in(x: exp.Expr, values: Iterable[str]) -> exp.Expr:
    return exp.In(this=_p(x.copy()), expressions=[_s(v) for v in values])


def _trim(x: exp.Expr) -> exp.Expr:
    return _fn("TRIM", x)


def _text(x: exp.Expr, spark_type: str) -> exp.Expr:
    """A raw cell as text (whole floats from spreadsheets without the trailing .0)."""
    if spark_type in _FLOAT_TYPES:
        return _case(
            (_bin(exp.GTE, _fn("ABS", x), _n("1e18")), _cast(x, "string")),
            (_bin(exp.EQ, x, _fn("FLOOR", x)), _cast(_cast(x, "bigint"), "string")),
            default=_cast(x, "string"),
        )
    return _cast(x, "string")


def _clean(x: exp.Expr) -> exp.Expr:
    """An amount's text without ¥, thousands separators, spaces and 元 (loading/convert.py chl_clean)."""
    return _fn("REGEXP_REPLACE", _trim(x), _s(r"[,¥￥\s元]"), _s(""))


def _blank(x: exp.Expr) -> exp.Expr:
    return _or(_is_null(x), _in(_clean(x), ("", "-", "--")))


def _try_decimal(text: exp.Expr) -> exp.Expr:
    # Only digits, a sign and a point get near the cast, so that it cannot fail in ANSI mode.
    number = _and(
        exp.RegexpLike(this=_p(text.copy()), expression=_s(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)$")),
        _bin(exp.LTE, _fn("LENGTH", text), _n(30)),
    )
    return _case((number, _cast(text, "decimal(38,6)")))


def _decimal(text: exp.Expr) -> exp.Expr:
    """An amount or number written as text: 1,234.50, ¥88, 1.2万 (chl_decimal), as DECIMAL(38,6)."""
    cleaned = _clean(text)
    wan = _fn("REGEXP_EXTRACT", cleaned, _s("^(.*)万$"), _n(1))
    return _case(
        (_blank(text), _cast(exp.Null(), "decimal(38,6)")),
        (
            _fn("ENDSWITH", cleaned, _s("万")),
            _cast(_bin(exp.Mul, _try_decimal(wan), _n(10000)), "decimal(38,6)"),
        ),
        default=_try_decimal(cleaned),
    )


def _utc_to_local(instant: exp.Expr, timezone: str) -> exp.Expr:
    """An instant as naive local time in `timezone` (the session computes in UTC)."""
    return _cast(_fn("FROM_UTC_TIMESTAMP", _cast(instant, "timestamp_ltz"), _s(timezone)), "timestamp_ntz")


def _time(text: exp.Expr, timezone: str) -> exp.Expr:
    """A timestamp written as text (chl_time): ISO and Chinese layouts, epoch milliseconds, offsets."""
    t = _trim(text)
    local = _coalesce(
        _fn("TRY_TO_TIMESTAMP", t), *(_fn("TRY_TO_TIMESTAMP", t, _s(p)) for p in _TIME_PATTERNS)
    )
    # An offset: parsed as an instant (to_timestamp_ltz), only where the layout is known to match, since
    # in ANSI mode a failed to_timestamp_ltz is an error.
    offset = _fn("REGEXP_REPLACE", t, _s("Z$"), _s("+00:00"))
    aware = _case(
        *(
            (
                exp.Not(this=_is_null(_fn("TRY_TO_TIMESTAMP", offset, _s(p)))),
                _fn("TO_TIMESTAMP_LTZ", offset, _s(p)),
            )
            for p in _AWARE_PATTERNS
        )
    )
    millis = _fn("TIMESTAMP_MILLIS", _cast(t, "bigint"))
    return _case(
        (_or(_is_null(t), _bin(exp.EQ, t, _s(""))), _cast(exp.Null(), "timestamp_ntz")),
        (exp.RegexpLike(this=_p(t), expression=_s("^[0-9]{12,13}$")), _utc_to_local(millis, timezone)),
        (
            exp.RegexpLike(this=_p(t), expression=_s("([+-][0-9]{2}:?[0-9]{2}|Z)$")),
            _utc_to_local(aware, timezone),
        ),
        default=_cast(local, "timestamp_ntz"),
    )


def _parse(col: Column, x: exp.Expr, spark_type: str, timezone: str) -> exp.Expr:
    """The raw cell `x` (of Spark type `spark_type`) parsed for the column; NULL if it does not parse."""
    if col.type == "text":
        if spark_type == "string":
            return _fn("NULLIF", _trim(x), _s(""))
        return _text(x, spark_type)
    if col.type in ("enum", "boolean"):
        if col.type == "boolean" and spark_type == "boolean":
            return _cast(x, "string")
        text = _text(x, spark_type)
        if spark_type in _NUMBER_TYPES:
            text = _fn("REGEXP_REPLACE", text, _s(r"\.0+$"), _s(""))  # 1.0 from a spreadsheet is the code 1
        key = _fn("LOWER", _trim(text))
        # One hash lookup per cell (a CASE would compute lower(trim(x)) once per value it lists).
        pairs = [_s(part) for item in sorted(col.values.items()) for part in item]
        return _fn("TRY_ELEMENT_AT", _fn("MAP", *pairs), key) if pairs else _cast(exp.Null(), "string")
    if col.type == "timestamp":
        if spark_type in ("timestamp_ntz", "date"):
            return _cast(x, "timestamp_ntz")
        if spark_type == "timestamp":
            return _utc_to_local(x, timezone)
        if spark_type in _NUMBER_TYPES:
            millis = _fn("TIMESTAMP_MILLIS", _cast(x, "bigint"))
            return _case((_bin(exp.GTE, x, _n(100000000000)), _utc_to_local(millis, timezone)))
        return _time(_cast(x, "string"), timezone)
    if spark_type in _NUMBER_TYPES:
        return _cast(x, "decimal(38,6)")
    return _decimal(_cast(x, "string"))


def _checks(col: Column, x: exp.Expr, value: exp.Expr) -> list[exp.Expr]:
    """Conditions a valid row meets for this column (convert.py _column_checks); NULL counts as met."""
    text = _trim(_cast(x, "string"))
    out: list[exp.Expr] = []
    if col.required and col.default is None and col.name != "sale_mode":
        out.append(_and(exp.Not(this=_is_null(x)), _bin(exp.NEQ, text, _s(""))))
    if col.type != "text":
        filled = _and(exp.Not(this=_is_null(x)), _not(_in(text, ("", "-", "--"))))
        out.append(_or(_not(filled), exp.Not(this=_is_null(value))))
    if col.type == "timestamp":
        out.append(
            _and(
                _bin(exp.GTE, value, _cast(_s(MIN_TIME), "timestamp_ntz")),
                _bin(exp.LT, value, _cast(_s(MAX_TIME), "timestamp_ntz")),
            )
        )
    if col.type in ("amount", "integer", "number", "score"):
        if col.type == "amount":
            out.append(_bin(exp.LT, _fn("ABS", value), _n(1000000000000)))
        if col.type in ("integer", "score"):
            out.append(_bin(exp.LT, _fn("ABS", value), _n(1000000000000000)))
            out.append(_bin(exp.EQ, value, _fn("FLOOR", value)))
        if col.minimum is not None:
            out.append(_bin(exp.GTE, value, _n(repr(col.minimum))))
        if col.maximum is not None:
            out.append(_bin(exp.LTE, value, _n(repr(col.maximum))))
    return out


def _finish(col: Column, parsed: Mapping[str, exp.Expr]) -> exp.Expr:
    """The parsed value with the column's default, in its canonical type (convert.py _outputs)."""
    value = parsed[col.name]
    if col.name == "duration_minutes":
        return _duration(value, parsed["start_time"], parsed["end_time"])
    if col.name == "sale_mode":
        # SPEC §2: without a sale mode, an order with a promoter is a distribution order.
        promoter = parsed["promoter_id"]
        value = _coalesce(
            value, _case((exp.Not(this=_is_null(promoter)), _s("distribution")), default=_s("self"))
        )
    elif col.default is not None:
        default = _s(col.default)
        value = _coalesce(
            value, default if col.type in ("text", "enum", "boolean") else _cast(default, "decimal(38,6)")
        )
    if col.type == "boolean":
        return _bin(exp.EQ, value, _s("true"))
    return _cast(value, _SPARK_TYPES[col.type])


def _duration(value: exp.Expr, start: exp.Expr, end: exp.Expr) -> exp.Expr:
    """duration_minutes, else whole seconds from start to end / 60 in DOUBLE (DuckDB's date_diff)."""
    # The session is in UTC, so a naive time read as UTC gives its wall-clock seconds.
    seconds = _bin(
        exp.Sub,
        _fn("UNIX_SECONDS", _cast(end, "timestamp_ltz")),
        _fn("UNIX_SECONDS", _cast(start, "timestamp_ltz")),
    )
    return _coalesce(
        _cast(value, "double"), _bin(exp.Div, _cast(seconds, "double"), _cast(_n("60.0"), "double"))
    )


def _derived(table: Table, parsed: Mapping[str, exp.Expr]) -> dict[str, exp.Expr]:
    """net_amount and quality_return of orders, exactly as convert.py defines them (SPEC §2)."""
    if table.name != "orders":
        return {}
    paid, refund, status = parsed["paid_amount"], parsed["refund_amount"], parsed["status"]
    refunded = _bin(exp.EQ, status, _s("refunded"))
    net = _bin(exp.Sub, paid, _coalesce(refund, _case((refunded, paid), default=_n(0))))
    refund_or_full = _coalesce(refund, _case((refunded, paid)))
    reason = _fn("LOWER", _trim(parsed["refund_reason"]))
    quality = _coalesce(
        _and(_bin(exp.GT, refund_or_full, _n(0)), _in(reason, sorted(QUALITY_REFUND_REASONS))), exp.false()
    )
    return {"net_amount": _cast(net, "decimal(14,2)"), "quality_return": quality}


def _row_checks(table: Table, parsed: Mapping[str, exp.Expr]) -> list[exp.Expr]:
    """Conditions across columns (convert.py _row_checks)."""
    if table.name == "orders":
        return [_not(_bin(exp.GT, parsed["refund_amount"], parsed["paid_amount"]))]
    if table.name == "livestreams":
        start, end = parsed["start_time"], parsed["end_time"]
        promoter_host = _and(
            _bin(exp.EQ, parsed["host_type"], _s("promoter")), _is_null(parsed["promoter_id"])
        )
        return [
            _not(promoter_host),
            _or(exp.Not(this=_is_null(parsed["duration_minutes"])), exp.Not(this=_is_null(end))),
            _not(_bin(exp.LT, end, start)),
        ]
    return []
