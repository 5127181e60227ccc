"""What every format reader yields: an open file (`FileReader`) and batches of its cells (`Batch`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pyarrow as pa

FileFormat = Literal["csv", "parquet", "xlsx", "jsonl", "html", "openplatform"]


@dataclass
class Batch:
    """Rows of one file: the selected columns (by file column index), a line number per row, the raw rows."""

    columns: dict[int, pa.Array]
    lines: pa.Array  # int64 line (text files) or row (Parquet, sheets) numbers
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
            cells = ["" if (v := col[k].as_py()) is None else str(v) for col in self.columns.values()]
        return ",".join(csv_cell(c) for c in cells)


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
    """Columns of text cells (empty cells become NULL) from rows of strings."""
    from chuanliu_cli.arrays import int_array, text_array

    columns = {}
    for i in selected:
        columns[i] = text_array([row[i] if i < len(row) and row[i] != "" else None for row in rows])
    return Batch(columns, int_array(lines), rows, shape)
