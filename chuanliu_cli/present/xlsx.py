"""xlsx: a `Document` or `EntityDocument` (present/documents.py) as an Excel workbook, written streaming.

The cells are the csv writer's (the same flat rows: `flat_frame` for score/eligible, `Document.rows` for
the others), typed: numbers as numbers, booleans as booleans, text as text (ids too: `00123` stays
`00123`), empty and null cells blank. Formula-looking text needs no quote here: a text cell is never
evaluated. Numbers keep 16 significant digits (xlsxwriter's, and openpyxl's, precision; Excel shows 15).
The first sheet holds the rows under a frozen, styled header; the second the document's other facts
(ruleset and sha256, period and completeness, missing history, totals and pool, assumptions, warnings).

xlsxwriter in `constant_memory` mode: each row goes to a temporary file as soon as the next one starts,
so 500k rows take the memory of one row (openpyxl's write-only mode streams too, but is several times
slower per cell, and xlsxwriter already writes `sample --format xlsx`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from chuanliu_cli.present.documents import Document, EntityDocument

#: Excel's limits: rows of a sheet (the header included) and characters of a cell.
MAX_ROWS = 1_048_576
MAX_TEXT = 32_767
#: Integers beyond this lose digits as Excel numbers (doubles): they are written as text, exact.
EXACT_INT = 2**53

#: Number formats: grants and other amounts, decimals, rates, plain integers (ids, ranks, lines), text.
AMOUNT, DECIMAL, RATE, PLAIN, TEXT = "#,##0", "#,##0.00", "0.00%", "0", "@"
#: Integer columns shown with thousands separators whatever their values; the other integers are plain
#: unless they count something (rows, entities): ids, ranks and line numbers are not amounts.
_AMOUNTS = {"grant", "allocated", "pool", "unallocated"}
_PLAIN_INTS = {"rank", "line"}
#: A column whose name holds one of these words is a rate, shown as a percentage when every value is a
#: fraction (between 0 and 1); a rate outside that range is a plain decimal (it is not a fraction).
_RATE_WORDS = {"rate", "share", "ratio"}

Kind = Literal["int", "float", "bool", "str", "other"]


def write_xlsx(out: IO[bytes], doc: Document | EntityDocument, labels: Literal["en", "zh"] = "en") -> None:
    """Write `doc` as a workbook into `out` (a binary file open for writing). More rows than a sheet
    holds, or a text cell longer than Excel keeps, is a UsageError: nothing is cut short silently."""
    import xlsxwriter

    from chuanliu_cli.errors import UsageError
    from chuanliu_cli.present.documents import EntityDocument, headers

    columns = list(doc.columns)
    names = headers(doc, labels)
    if isinstance(doc, EntityDocument):
        from chuanliu_cli.present.documents import flat_frame

        frame = flat_frame(doc)
        count = frame.height
        kinds, formats = _frame_formats(frame, columns)
        rows: Iterable[Sequence[Any]] = _frame_rows(frame)
        facts = _facts({k: v for k, v in doc.head.items() if k != "entities"})
    else:
        count = len(doc.rows)
        kinds, formats = _row_formats(doc.rows, columns, doc.types)
        rows = ([r.get(c) for c in columns] for r in doc.rows)
        facts = _facts(_other_facts(doc))
    if count + 1 > MAX_ROWS:
        raise UsageError(
            f"xlsx holds at most {MAX_ROWS - 1:,} rows on a sheet; this result has {count:,}",
            hint="write csv or parquet (-o list.csv), or fewer rows (--top N)",
        )

    book = xlsxwriter.Workbook(out, {"constant_memory": True, "strings_to_numbers": False})
    try:
        header_style = book.add_format(
            {"bold": True, "bg_color": "#DDEBF7", "bottom": 1, "valign": "top", "text_wrap": True}
        )
        styles = {f: book.add_format({"num_format": f}) for f in (AMOUNT, DECIMAL, RATE, PLAIN, TEXT)}
        sheet = book.add_worksheet("数据" if labels == "zh" else "data")
        sheet.freeze_panes(1, 0)
        for col, name in enumerate(names):
            sheet.write_string(0, col, name, header_style)
        widths = [_width(name) + 2 for name in names]  # (room for the filter button)
        cells = [_cell_writer(sheet, kinds[c], styles.get(formats[c] or ""), styles[TEXT]) for c in columns]
        for r, values in enumerate(rows, start=1):
            for col, value in enumerate(values):
                if cells[col](r, col, value) < 0:
                    raise UsageError(
                        f"xlsx keeps at most {MAX_TEXT:,} characters in a cell; row {r + 1}, column "
                        f"{columns[col]} holds {len(str(value)):,}",
                        hint="write csv or parquet instead (-o list.csv)",
                    )
            if r <= 200:  # widths from the header and the first rows
                widths = [max(w, _shown(v)) for w, v in zip(widths, values, strict=True)]
        for col, width in enumerate(widths):
            sheet.set_column(col, col, min(max(width, 6), 50) + 1, styles.get(formats[columns[col]] or ""))
        if columns:
            sheet.autofilter(0, 0, max(count, 1), len(columns) - 1)
        _write_facts(book, facts, labels, header_style, styles)
    finally:
        book.close()


# --- the data sheet ----------------------------------------------------------------------------------------


def _width(text: str) -> int:
    """Display width of text in character cells: East Asian wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _shown(value: Any) -> int:
    """About the width a value takes in its cell (numbers with separators and two decimals)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return len(f"{value:,}")
    if isinstance(value, float):
        return len(f"{value:,.2f}") if math.isfinite(value) else 4
    return _width(value if isinstance(value, str) else _text(value))


def _cell_writer(sheet: Any, kind: Kind, style: Any, text_style: Any) -> Any:
    """A function writing one value of a column of `kind` at (row, col) in its `style` (text in
    `text_style`), returning 0, or a negative number when Excel cannot hold the value."""
    write_string, write_number, write_boolean = sheet.write_string, sheet.write_number, sheet.write_boolean

    def text(r: int, c: int, value: Any) -> int:
        if value is None or value == "":
            return 0
        return int(write_string(r, c, value if isinstance(value, str) else _text(value), text_style))

    def number(r: int, c: int, value: Any) -> int:
        if value is None:
            return 0
        if isinstance(value, bool):
            return int(write_boolean(r, c, value))
        if (isinstance(value, int) and abs(value) < EXACT_INT) or (
            isinstance(value, float) and math.isfinite(value)
        ):
            return int(write_number(r, c, value, style))
        return text(r, c, value)  # NaN, inf (as the csv writes them), integers past 2**53: exact text

    def boolean(r: int, c: int, value: Any) -> int:
        if value is None:
            return 0
        if isinstance(value, bool):
            return int(write_boolean(r, c, value))
        return text(r, c, value)

    if kind in ("int", "float"):
        return number
    if kind == "bool":
        return boolean
    return text


def _text(value: Any) -> str:
    """A value that is not text, as the csv writer writes it (without the formula quote)."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    return str(value)


def _frame_rows(frame: Any, size: int = 10_000) -> Iterator[tuple[Any, ...]]:
    """The rows of a polars frame, a slice at a time (only one slice's Python values at once)."""
    for start in range(0, frame.height, size):
        yield from frame.slice(start, size).iter_rows()


def _frame_formats(frame: Any, columns: list[str]) -> tuple[dict[str, Kind], dict[str, str | None]]:
    """Each column's kind and number format, from its type, its name and its values."""
    import polars as pl

    kinds: dict[str, Kind] = {}
    formats: dict[str, str | None] = {}
    for name in columns:
        dtype = frame.schema[name]
        col = frame.get_column(name)
        if dtype.is_integer():
            kinds[name] = "int"
            formats[name] = _int_format(name)
        elif dtype.is_float():
            kinds[name] = "float"
            values = col.drop_nulls()
            values = values.filter(values.is_finite()) if values.len() else values
            integral = bool((values == values.floor()).all()) if values.len() else False
            fraction = bool(((values >= 0) & (values <= 1)).all()) if values.len() else True
            formats[name] = _float_format(name, integral, fraction)
        elif dtype == pl.Boolean:
            kinds[name], formats[name] = "bool", None
        else:
            kinds[name], formats[name] = "str", TEXT
    return kinds, formats


def _row_formats(
    rows: list[dict[str, Any]], columns: list[str], types: dict[str, Any]
) -> tuple[dict[str, Kind], dict[str, str | None]]:
    """`_frame_formats` for rows of Python values: the document's type of a column, else its values'."""
    kinds: dict[str, Kind] = {}
    formats: dict[str, str | None] = {}
    for name in columns:
        values = [r.get(name) for r in rows]
        present = [v for v in values if v is not None]
        kind = types.get(name) or _kind_of(present)
        if kind == "int" and not all(isinstance(v, int) for v in present):
            kind = "float" if all(isinstance(v, int | float) for v in present) else "other"
        if kind == "float" and not all(isinstance(v, int | float) for v in present):
            kind = "other"
        kinds[name] = kind
        if kind == "int":
            formats[name] = _int_format(name)
        elif kind == "float":
            finite = [v for v in present if not isinstance(v, bool) and math.isfinite(v)]
            integral = bool(finite) and all(float(v).is_integer() for v in finite)
            fraction = all(0 <= v <= 1 for v in finite)
            formats[name] = _float_format(name, integral, fraction)
        elif kind in ("str", "other"):
            formats[name] = TEXT
        else:
            formats[name] = None
    return kinds, formats


def _kind_of(values: list[Any]) -> Kind:
    """The kind of a column's (non-null) Python values: all booleans, integers, numbers, else text."""
    if not values:
        return "str"
    if all(isinstance(v, bool) for v in values):
        return "bool"
    if any(isinstance(v, bool) for v in values):
        return "other"
    if all(isinstance(v, int) for v in values):
        return "int"
    if all(isinstance(v, int | float) for v in values):
        return "float"
    return "str" if all(isinstance(v, str) for v in values) else "other"


def _int_format(name: str) -> str:
    if name in _AMOUNTS or name.startswith("grant_"):
        return AMOUNT
    if name in _PLAIN_INTS or name.endswith("id"):
        return PLAIN
    return AMOUNT


def _float_format(name: str, integral: bool, fraction: bool) -> str:
    if _RATE_WORDS & set(name.lower().split("_")) and fraction:
        return RATE
    return AMOUNT if integral else DECIMAL


# --- the facts sheet ---------------------------------------------------------------------------------------


def _other_facts(doc: Document) -> dict[str, Any]:
    """What a document says besides its rows: its top-level values that are not lists of records (those
    are the rows of the first sheet), e.g. the summary of `compare`."""
    if not isinstance(doc.document, dict):
        return {"rows": len(doc.rows)}
    facts: dict[str, Any] = {"rows": len(doc.rows)}
    for key, value in doc.document.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            continue
        facts[key] = value
    return facts


def _facts(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested facts as (dotted name, value) pairs: dicts opened, lists of scalars joined by `; `, lists of
    records as compact JSON (missing history: table, needed from, data from)."""
    out: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out += _facts(value, name + ".")
        elif isinstance(value, dict):
            out.append((name, None))
        elif isinstance(value, list | tuple):
            if all(not isinstance(v, dict | list | tuple) for v in value):
                out.append((name, "; ".join("" if v is None else str(v) for v in value)))
            else:
                out.append((name, json.dumps(value, ensure_ascii=False, default=str)))
        elif isinstance(value, dt.date | dt.datetime):
            out.append((name, value.isoformat()))
        else:
            out.append((name, value))
    return out


def _write_facts(
    book: Any, facts: list[tuple[str, Any]], labels: str, header_style: Any, styles: dict[str, Any]
) -> None:
    """The second sheet: one fact a row, name and value."""
    from chuanliu_cli.errors import UsageError

    sheet = book.add_worksheet("说明" if labels == "zh" else "about")
    sheet.freeze_panes(1, 0)
    sheet.write_string(0, 0, "项目" if labels == "zh" else "fact", header_style)
    sheet.write_string(0, 1, "值" if labels == "zh" else "value", header_style)
    wrap = book.add_format({"text_wrap": True, "valign": "top"})
    width = 10
    for r, (name, value) in enumerate(facts, start=1):
        sheet.write_string(r, 0, name)
        width = max(width, _width(name))
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            sheet.write_boolean(r, 1, value)
        elif isinstance(value, int) and abs(value) < EXACT_INT:
            sheet.write_number(r, 1, value, styles[AMOUNT])
        elif isinstance(value, float) and math.isfinite(value):
            sheet.write_number(r, 1, value)
        elif sheet.write_string(r, 1, str(value), wrap) < 0:
            raise UsageError(
                f"xlsx keeps at most {MAX_TEXT:,} characters in a cell; the fact {name} holds "
                f"{len(str(value)):,}",
                hint="write json instead (-o list.json)",
            )
    sheet.set_column(0, 0, min(width, 40) + 2)
    sheet.set_column(1, 1, 100)
