"""Columns between DuckDB and polars through the Arrow PyCapsule interface, without pyarrow.

Importing pyarrow (and pyarrow.compute, which polars imports when it reads a pyarrow array) cost 0.18 s of
every scoring command, a fifth of `eligible`'s whole process on the sample. DuckDB's relations and polars'
frames both speak the Arrow C stream interface (`__arrow_c_stream__`), so results come to polars and
frames go to DuckDB zero-copy with neither importing pyarrow. Loading and writing Parquet still use
pyarrow; scoring, explaining and recording do not.

Loading builds pyarrow arrays from Python values with `text_array` and `int_array`, never `pa.array`:
pyarrow's `array()` imports pandas, when it is installed (the impact extra brings it), to ask whether the
values are a pandas object, which cost 0.25-0.5 s of every load of a CSV or JSON file (a third of
`eligible --data sample_data`). polars builds the same arrays without asking.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb
    import polars as pl
    import pyarrow as pa


def text_array(values: Sequence[str | None]) -> pa.Array:
    """`pa.array(values, pa.string())` without importing pandas."""
    import polars as pl

    return arrow_text(pl.Series(values=values, dtype=pl.String))


def arrow_text(column: pl.Series | pa.Array) -> pa.Array:
    """A column of a batch as pyarrow: a polars text Series (a text file's) as a pyarrow string array, a
    pyarrow array (Parquet's) as it is."""
    import polars as pl
    import pyarrow as pa

    return column.to_arrow().cast(pa.string()) if isinstance(column, pl.Series) else column


def int_array(values: Iterable[int]) -> pa.Array:
    """`pa.array(values, pa.int64())` without importing pandas."""
    import polars as pl

    return pl.Series(values=list(values), dtype=pl.Int64).to_arrow()


def frame_of(relation: duckdb.DuckDBPyRelation) -> pl.DataFrame:
    """A DuckDB relation's rows as a polars frame (the same types as `relation.pl()`, which goes through
    pyarrow)."""
    import polars as pl

    return pl.DataFrame(relation)


class ArrowStream:
    """A polars frame or a pyarrow table as something DuckDB scans or registers (`con.register(name,
    ArrowStream(frame))`, `SELECT ... FROM stream`): each scan asks for a new Arrow C stream of it, so a
    registered view can be read any number of times. (DuckDB reads a polars frame itself through
    `to_arrow()`: pyarrow; and asks pandas whether a pyarrow table is one of its frames: pandas.)"""

    def __init__(self, frame: pl.DataFrame | pa.Table) -> None:
        self.frame: pl.DataFrame | pa.Table | None = frame

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        assert self.frame is not None, "read after release()"
        return self.frame.__arrow_c_stream__(requested_schema)

    def release(self) -> None:
        """Let go of the rows: DuckDB keeps a registered object until its transaction ends, and a load
        registers a batch after batch in one transaction."""
        self.frame = None
