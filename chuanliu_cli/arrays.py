"""Columns between DuckDB and polars through the Arrow PyCapsule interface, without pyarrow.

Importing pyarrow (and pyarrow.compute, which polars imports when it reads a pyarrow array) cost 0.18 s of
every scoring command, a fifth of `eligible`'s whole process on the sample. DuckDB's relations and polars'
frames both speak the Arrow C stream interface (`__arrow_c_stream__`), so results come to polars and
frames go to DuckDB zero-copy with neither importing pyarrow. Loading and writing Parquet still use
pyarrow; scoring, explaining and recording do not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb
    import polars as pl


def frame_of(relation: duckdb.DuckDBPyRelation) -> pl.DataFrame:
    """A DuckDB relation's rows as a polars frame (the same types as `relation.pl()`, which goes through
    pyarrow)."""
    import polars as pl

    return pl.DataFrame(relation)


class ArrowStream:
    """A polars frame as something DuckDB scans or registers (`con.register(name, ArrowStream(frame))`,
    `SELECT ... FROM stream`): each scan asks for a new Arrow C stream of the frame, so a registered view
    can be read any number of times. (DuckDB reads a polars frame itself through `to_arrow()`: pyarrow.)"""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        return self.frame.__arrow_c_stream__(requested_schema)
