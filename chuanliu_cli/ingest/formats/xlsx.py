"""XLSX exports: one reader per data sheet, streaming rows with openpyxl and turning cells into exact text.

Spreadsheets store numbers as doubles and dates as serial numbers; the loader works on text, so every cell
is rendered the way an export's author meant it: an order number held in a number cell prints as its digits
(no `.0`, no `1.2E+15`), a date cell as `YYYY-MM-DD HH:MM:SS`, a boolean as `true`/`false`. Text cells are
kept verbatim, leading zeros included.
"""

from __future__ import annotations

import difflib
import functools
import math
import warnings
import zipfile
from collections.abc import Callable, Generator, Iterable, Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chuanliu_cli.errors import DataError
from chuanliu_cli.ingest.formats.base import Batch, FileReader, text_batch

if TYPE_CHECKING:
    from openpyxl.workbook.workbook import Workbook
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

#: Rows per batch; a sheet is never held in memory whole.
XLSX_BATCH_ROWS = 100_000
#: A workbook whose members would inflate to more than this is refused before it is opened (a zip bomb, or
#: far more than the 1,048,576 rows a sheet can hold).
MAX_UNCOMPRESSED_BYTES = 2 << 30
#: Real workbooks compress XML about 5-30:1; far beyond that it is a zip bomb, not an export.
MAX_COMPRESSION_RATIO = 200
# Below this uncompressed total the ratio is irrelevant: such an archive cannot exhaust memory.
_RATIO_FLOOR_BYTES = 1 << 20
# The magic number of OLE2 compound files: legacy .xls workbooks and password-protected .xlsx files.
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def open_xlsx(path: Path, sheet: str | None) -> list[FileReader]:
    """One reader per sheet whose first non-blank row is a header row, or only the sheet named `sheet`.

    Without `sheet`, hidden sheets and sheets without a header row (empty, notes, a lone title) are
    skipped; a header row has at least two cells, all of them text. With `sheet`, that sheet's first
    non-blank row is its header whatever it holds. Raises DataError for a damaged or non-XLSX file and
    for an unknown sheet name (listing the sheets).
    """
    _check_archive(path)
    book = _Book(path)
    try:
        titles = book.titles()
        if sheet is not None:
            chosen = [_match_sheet(path, sheet, titles)]
        else:
            chosen = [t for t in titles if book.worksheet(t).sheet_state == "visible"]
        readers: list[FileReader] = []
        for title in chosen:
            found = _find_header(book, title, explicit=sheet is not None)
            if found is None:
                continue
            header_row, headers = found
            fr = FileReader(path, "xlsx", headers, "row", sheet=title)
            fr._open = _opener(book, title, header_row, headers, fr.notes)
            fr._close = functools.partial(book.done, title)
            readers.append(fr)
    except BaseException:
        book.close()
        raise
    book.pending = {fr.sheet for fr in readers if fr.sheet is not None}
    if not readers:
        book.close()
        if sheet is not None:
            raise DataError(f"{path}[{sheet}]: the sheet is empty (no header row)")
        raise DataError(
            f"{path}: no sheet with a header row (sheets: {', '.join(titles)})",
            hint="the first non-blank row of a data sheet must hold the column names; "
            "or name the sheet to read",
        )
    return readers


def _opener(
    book: _Book, title: str, header_row: int, headers: list[str], notes: list[str]
) -> Callable[[list[int]], Iterator[Batch]]:
    """The FileReader callback reading `title`; a function so that each reader binds its own sheet."""
    return lambda selected: _sheet_batches(book, title, header_row, headers, selected, notes)


#: A spreadsheet keeps 15 significant digits: a whole number of 16 or more digits in a number cell was
#: most likely an id (an order id has 16 to 19) whose last digits the spreadsheet rounded when it read it.
LONG_NUMBER = 10**15


def _long_whole(value: Any) -> bool:
    """A number cell holding a whole number of 16 or more digits."""
    if isinstance(value, bool) or not isinstance(value, int | float) or abs(value) < LONG_NUMBER:
        return False
    return isinstance(value, int) or value.is_integer()


def _long_number_notes(path: str, headers: list[str], found: dict[int, list[Any]]) -> list[str]:
    """A note per column holding whole numbers of 16 or more digits in number cells (`found`: column ->
    [count, first row, first value])."""
    notes = []
    for column, (count, row, value) in sorted(found.items()):
        name = headers[column] if column < len(headers) else _column_letter(column)
        cells = f"{count:,} number cell{'s' if count != 1 else ''}"
        notes.append(
            f"{path}: column {name} has {cells} of 16 or more digits (e.g. {value} in row {row}): a "
            "spreadsheet keeps 15 significant digits, so the last digits of such ids may have been rounded "
            "to 0 (orders then merge or match no review); export ids as text"
        )
    return notes


# --- the archive -----------------------------------------------------------------------------------------


def _check_archive(path: Path) -> None:
    """Refuse what is not a sane XLSX zip before openpyxl inflates anything."""
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    if head.startswith(_OLE_MAGIC):
        if _encrypted(path):
            raise DataError(
                f"{path}: an encrypted workbook or a legacy .xls file, not an XLSX workbook "
                "(it is password-protected)",
                hint="open it in Excel or WPS and save it as .xlsx without a password, or export CSV",
            )
        raise DataError(
            f"{path}: an encrypted workbook or a legacy .xls file, not an XLSX workbook "
            "(a legacy Excel 97-2003 .xls workbook, which is not read)",
            hint="open it in Excel or WPS and save it as .xlsx or .csv",
        )
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(
            f"{path}: not a readable XLSX workbook (damaged or not a zip archive: {exc})",
            hint="re-export the file; if it is really CSV text, give it a .csv name",
        ) from None
    names = {i.filename.lower() for i in infos}
    if not any(n.endswith("workbook.xml") for n in names):
        what = " (an .xlsb binary workbook)" if any(n.endswith("workbook.bin") for n in names) else ""
        raise DataError(
            f"{path}: a zip archive but not an XLSX workbook{what}: it has no xl/workbook.xml",
            hint="save the file as .xlsx (Excel workbook), or export CSV",
        )
    # Declared sizes are a hard bound: zipfile stops inflating a member at its declared size.
    unpacked = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos)
    if unpacked > MAX_UNCOMPRESSED_BYTES:
        raise DataError(
            f"{path}: refused: the workbook would inflate to {unpacked / (1 << 30):.1f} GiB "
            f"(limit {MAX_UNCOMPRESSED_BYTES / (1 << 30):.0f} GiB)",
            hint="export large data as CSV or Parquet",
        )
    if unpacked > _RATIO_FLOOR_BYTES and unpacked > MAX_COMPRESSION_RATIO * max(packed, 1):
        raise DataError(
            f"{path}: refused: compression ratio {unpacked / max(packed, 1):.0f}:1 exceeds "
            f"{MAX_COMPRESSION_RATIO}:1; this is not an export (a zip bomb?)",
            hint="re-export the file from the merchant backend",
        )


def _encrypted(path: Path) -> bool:
    """Whether an OLE2 file is a password-protected OOXML package (it has an EncryptedPackage stream) rather
    than a legacy .xls workbook; the stream's name is looked for in the first and last MiB."""
    name = "EncryptedPackage".encode("utf-16-le")
    with path.open("rb") as f:
        if name in f.read(1 << 20):
            return True
        f.seek(0, 2)
        f.seek(max(0, f.tell() - (1 << 20)))
        return name in f.read()


class _Book:
    """The workbook shared by the readers of its sheets; closed once the last of them has been read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pending: set[str] = set()
        self._wb: Workbook | None = None

    def _open(self) -> Workbook:
        if self._wb is None:
            import openpyxl

            try:
                with warnings.catch_warnings():
                    # openpyxl warns about unsupported extensions and missing styles: noise for a loader.
                    warnings.simplefilter("ignore")
                    self._wb = openpyxl.load_workbook(
                        self.path, read_only=True, data_only=True, keep_links=False
                    )
            except Exception as exc:  # openpyxl raises KeyError, ValueError, ParseError, ... on bad files
                raise DataError(
                    f"{self.path}: not a readable XLSX workbook: {_first_line(exc)}",
                    hint="open and re-save it in Excel or WPS, or export CSV",
                ) from None
        return self._wb

    def titles(self) -> list[str]:
        """The names of the workbook's worksheets (chart sheets excluded), in workbook order."""
        wb = self._open()
        return [ws.title for ws in wb.worksheets if hasattr(ws, "iter_rows")]

    def worksheet(self, title: str) -> ReadOnlyWorksheet:
        """The read-only worksheet `title`, with its declared dimensions dropped.

        Some writers store a wrong `<dimension>` (e.g. `A1`); openpyxl would silently stop at it, so rows
        are streamed until the sheet really ends.
        """
        ws: ReadOnlyWorksheet = self._open()[title]
        ws.reset_dimensions()
        return ws

    def done(self, title: str) -> None:
        """Sheet `title` has been read; close the file after the last sheet."""
        self.pending.discard(title)
        if not self.pending:
            self.close()

    def close(self) -> None:
        """Close the workbook's file (reopened if a sheet is read again)."""
        if self._wb is not None:
            self._wb.close()
            self._wb = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


# --- sheets ----------------------------------------------------------------------------------------------


def _match_sheet(path: Path, wanted: str, titles: list[str]) -> str:
    """The sheet called `wanted` (exactly, else ignoring case and surrounding spaces)."""
    if wanted in titles:
        return wanted
    loose = [t for t in titles if t.strip().casefold() == wanted.strip().casefold()]
    if len(loose) == 1:
        return loose[0]
    close = difflib.get_close_matches(wanted, titles, n=1)
    raise DataError(
        f"{path}: no sheet {wanted!r}; the sheets are: {', '.join(repr(t) for t in titles) or '(none)'}",
        hint=f"did you mean sheet={close[0]!r}?" if close else "name one of them as the sheet to read",
    )


def _rows(book: _Book, title: str) -> Generator[tuple[int, tuple[Any, ...]], None, None]:
    """(sheet row number, cell values) of every row, blank ones included; damage becomes DataError."""
    ws = book.worksheet(title)
    number = 0
    try:
        for number, row in enumerate(ws.iter_rows(min_row=1, values_only=True), start=1):
            yield number, row
    except DataError:
        raise
    except Exception as exc:  # a truncated member, a CRC mismatch, malformed XML
        raise DataError(
            f"{book.path}[{title}]: damaged sheet after row {number}: {_first_line(exc)}",
            hint="open and re-save it in Excel or WPS, or export CSV",
        ) from None


def _find_header(book: _Book, title: str, explicit: bool) -> tuple[int, list[str]] | None:
    """(row number, header names) of the sheet's first non-blank row, or None if it is not a header row."""
    rows = _rows(book, title)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for number, row in rows:
                cells = _trim(row)
                if not cells:
                    continue
                present = [v for v in cells if not _blank(v)]
                if not explicit and (len(present) < 2 or not all(isinstance(v, str) for v in present)):
                    return None  # a notes sheet, a lone title, or data without a header
                return number, [(_cell_text(v) or "").strip().lstrip("\ufeff").strip() for v in cells]
    finally:
        rows.close()
    return None


def _sheet_batches(
    book: _Book,
    title: str,
    header_row: int,
    headers: list[str],
    selected: list[int],
    notes: list[str] | None = None,
) -> Iterator[Batch]:
    """Batches of the rows below the header, as text; blank rows and repeated header rows are skipped. Long
    whole numbers in the columns read are said in `notes` once the sheet is read (_long_number_notes)."""
    rows = _rows(book, title)
    long: dict[int, list[Any]] = {}
    try:
        # Skip to the header: the rows above it are blank by construction.
        for number, _ in rows:
            if number >= header_row:
                break
        while True:
            batch = _next_batch(rows, headers, selected, long)
            if batch is None:
                if notes is not None:
                    notes.extend(_long_number_notes(f"{book.path}[{title}]", headers, long))
                return
            yield batch
    finally:
        rows.close()
        book.done(title)


def _next_batch(
    rows: Iterator[tuple[int, tuple[Any, ...]]],
    headers: list[str],
    selected: list[int],
    long: dict[int, list[Any]] | None = None,
) -> Batch | None:
    """Up to XLSX_BATCH_ROWS data rows as a Batch, or None at the end of the sheet; whole numbers of 16 or
    more digits in the `selected` columns are counted in `long` (column -> [count, first row, value])."""
    width = len(headers)
    norm_header = [h.strip() for h in headers]
    texts: list[list[str]] = []
    lines: list[int] = []
    shape: dict[int, str] = {}
    # Filled outside of any `yield`, so the warning filter never leaks into the caller's code.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for number, row in rows:
            values = _trim(row)
            cells = [_cell_text(v) or "" for v in values]
            if not any(c.strip() for c in cells):
                continue  # blank rows, trailing ones included (and rows of empty strings)
            if long is not None:
                for j in selected:
                    if j < len(values) and _long_whole(values[j]):
                        seen = long.setdefault(j, [0, number, cells[j]])
                        seen[0] += 1
            plain = [c.strip().lstrip("\ufeff").strip() for c in cells[:width]]
            if plain + [""] * (width - len(cells)) == norm_header and not any(
                c.strip() for c in cells[width:]
            ):
                continue  # a header repeated mid-sheet: concatenated exports
            beyond = next((j for j in range(width, len(cells)) if cells[j].strip()), None)
            if beyond is not None:
                # Kept so that it is rejected with its row number rather than silently cut.
                shape[len(texts)] = (
                    f"has a value in column {_column_letter(beyond)} beyond the {width} headers"
                )
            texts.append(cells)
            lines.append(number)
            if len(texts) >= XLSX_BATCH_ROWS:
                break
    if not texts:
        return None
    return text_batch(texts, lines, selected, shape)


def _trim(row: Iterable[Any]) -> list[Any]:
    """The row's values without trailing empty cells."""
    cells = list(row)
    while cells and _blank(cells[-1]):
        cells.pop()
    return cells


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _column_letter(index: int) -> str:
    """The spreadsheet letter of 0-based column `index` (0 → A, 26 → AA)."""
    letters = ""
    n = index + 1
    while n:
        n, r = divmod(n - 1, 26)
        letters = chr(ord("A") + r) + letters
    return letters


# --- cells -----------------------------------------------------------------------------------------------


def _cell_text(value: Any) -> str | None:
    """A cell value as the text the export meant; None for an empty cell.

    openpyxl gives int for integer literals, float otherwise, datetime/time/timedelta for cells with a
    date or duration format, bool, and str (error cells too, e.g. `#N/A`, which then fail validation with
    their text). A formula never calculated has no cached value and comes back as None.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value if value else None
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, datetime):
        return _datetime_text(value)
    if isinstance(value, date):
        return f"{value.isoformat()} 00:00:00"
    if isinstance(value, time):
        return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    if isinstance(value, timedelta):
        # A duration cell ([h]:mm:ss) prints as Excel shows it; it is not a date.
        seconds = round(value.total_seconds())
        sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
        return f"{sign}{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return str(value)


def _float_text(value: float) -> str:
    """A double as plain digits: whole numbers without `.0`, never scientific notation.

    Whole numbers print all their digits: exact up to 2**53; beyond that a double cannot hold every integer,
    and what is printed is the value the cell really stores.
    """
    if not math.isfinite(value):
        return repr(value)
    if value.is_integer():
        return str(int(value))
    text = repr(value)  # the shortest text that reads back as the same double: 12.34, not 12.3399999
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text


def _datetime_text(value: datetime) -> str:
    """`YYYY-MM-DD HH:MM:SS` (milliseconds only when present; an offset only for aware values)."""
    return value.isoformat(sep=" ", timespec="milliseconds" if value.microsecond else "seconds")
