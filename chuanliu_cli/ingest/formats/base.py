"""What every format reader yields: an open file (`FileReader`) and batches of its cells (`Batch`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

FileFormat = Literal["csv", "parquet", "xlsx", "jsonl", "html", "openplatform"]


@dataclass
class Batch:
    """Rows of one file: the selected columns (by file column index), a line number per row, the raw rows.

    Text files (CSV, spreadsheets, JSON, HTML, API responses) give polars Series of text; Parquet gives the
    pyarrow arrays it stores, in their own types. Both reach DuckDB through the Arrow C stream interface, so
    loading a text file never imports pyarrow (a tenth of `eligible --data` on the sample)."""

    columns: dict[int, pa.Array | pl.Series]
    lines: pa.Array | pl.Series  # int64 line (text files) or row (Parquet, sheets) numbers
    rows: list[list[str]] | None = None  # text files: every cell of every row, for `rejected_rows`
    shape_errors: dict[int, str] = field(default_factory=dict)  # row index -> reason
    # the record of each row as the file holds it, when that is not a row of cells (an API response's order)
    raws: list[str] | None = None

    def raw(self, k: int) -> str:
        """Row k as it was in the file (CSV-quoted), for `rejected_rows`."""
        if self.raws is not None:
            return self.raws[k]
        if self.rows is not None:
            cells = self.rows[k]
        else:
            cells = ["" if (v := _value(col[k])) is None else str(v) for col in self.columns.values()]
        return ",".join(csv_cell(c) for c in cells)

    def line_numbers(self) -> list[int]:
        """The line (or row) number of each row."""
        import polars as pl

        return self.lines.to_list() if isinstance(self.lines, pl.Series) else self.lines.to_pylist()

    def first_line(self) -> int:
        """The first row's line number (0 for no rows)."""
        return int(_value(self.lines[0])) if len(self.lines) else 0

    def last_line(self) -> int:
        """The last row's line number (0 for no rows)."""
        return int(_value(self.lines[len(self.lines) - 1])) if len(self.lines) else 0

    def table(self, selected: list[int], names: list[str]) -> pl.DataFrame | pa.Table:
        """The columns `selected` named `names`, then `__line` and `__shape` (the reason the row could not
        be read as a row, else NULL): a polars frame for text files, a pyarrow table for Parquet."""
        import polars as pl

        n = len(self.lines)
        shape = [self.shape_errors.get(k) for k in range(n)] if self.shape_errors else None
        columns = [self.columns[i] for i in selected]
        if all(isinstance(c, pl.Series) for c in (*columns, self.lines)):
            return pl.DataFrame(
                [
                    *(c.alias(name) for c, name in zip(columns, names, strict=True)),
                    self.lines.alias("__line"),
                    pl.Series("__shape", shape, dtype=pl.String)
                    if shape is not None
                    else pl.repeat(None, n, dtype=pl.String, eager=True).alias("__shape"),
                ]
            )
        import pyarrow as pa

        from chuanliu_cli.arrays import text_array

        arrays = [*columns, self.lines, text_array(shape) if shape is not None else pa.nulls(n, pa.string())]
        return pa.Table.from_arrays(arrays, names=[*names, "__line", "__shape"])


def _value(item: Any) -> Any:
    """A Python value of an element of a polars Series (already one) or of a pyarrow array (a scalar)."""
    as_py = getattr(item, "as_py", None)
    return as_py() if as_py is not None else item


def csv_cell(text: str) -> str:
    if any(ch in text for ch in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


@dataclass
class FileReader:
    """An open export file: its headers and an iterator over batches of rows."""

    path: Path
    format: FileFormat
    headers: list[str]
    line_label: str  # "line" for text files, "row" for Parquet and spreadsheets
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    total_rows: int | None = None  # known up front for Parquet (for the progress bar)
    arrow_schema: pa.Schema | None = None  # Parquet: the column types as the file declares them
    # What reading found that the caller should hear (a skipped summary sheet, a change of encoding); notes
    # found while reading are appended by the time the batches are exhausted.
    notes: list[str] = field(default_factory=list)
    # open-platform responses: the API method the file holds, the unit of its amounts (fen: 0.01 per column),
    # and where a row is (its line and JSON path, and the field a reason names) for `rejected_rows`
    method: str | None = None
    scale: dict[str, float] = field(default_factory=dict)
    locate: Callable[[int, str], str] | None = field(default=None, repr=False)
    _open: Callable[[list[int]], Iterator[Batch]] | None = field(default=None, repr=False)
    _close: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """The file (and sheet) as shown in messages."""
        return f"{self.path}[{self.sheet}]" if self.sheet else str(self.path)

    def batches(self, selected: list[int]) -> Iterator[Batch]:
        """Batches of the rows with the file columns `selected` (indexes into `headers`), read once."""
        assert self._open is not None
        return self._open(selected)

    def where(self, line: int, reason: str = "") -> str:
        """Where row `line` is, for messages: `line 12`, or its JSON path (to the field `reason` names)."""
        if self.locate is not None:
            return self.locate(line, reason)
        return f"{self.line_label} {line}"

    def close(self) -> None:
        """Release the file when its batches will not be read (only the header was wanted)."""
        if self._close is not None:
            self._close()


def text_batch(rows: list[list[str]], lines: list[int], selected: list[int], shape: dict[int, str]) -> Batch:
    """Columns of text cells (empty cells become NULL) from rows of strings, as polars Series."""
    import polars as pl

    need = max(selected, default=-1) + 1
    lengths = set(map(len, rows))
    if len(lengths) == 1 and min(lengths) >= need:
        table = rows  # every row as wide, wide enough: read as they are
    else:  # rows of other widths: each cut or padded to the columns wanted (`rows` stays as read)
        table = [row[:need] if len(row) >= need else [*row, *[""] * (need - len(row))] for row in rows]
    width = len(table[0]) if table else need
    # polars reads the rows in one pass (a third of the time of building each column in Python)
    frame = pl.DataFrame(table, orient="row", schema=[(f"c{j}", pl.String) for j in range(width)])
    wanted = list(dict.fromkeys(selected))
    picked = frame.select(pl.when(pl.col(f"c{i}") != "").then(pl.col(f"c{i}")).alias(f"c{i}") for i in wanted)
    columns = {i: picked.get_column(f"c{i}") for i in selected}
    return Batch(columns, pl.Series(values=lines, dtype=pl.Int64), rows, shape)
