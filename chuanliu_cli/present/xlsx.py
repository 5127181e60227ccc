"""xlsx: a `Document` or `EntityDocument` (present/documents.py) as an Excel workbook, written streaming.

The cells are the csv writer's (the same flat rows: `flat_frame` for score/eligible, `Document.rows` for
the others), typed: numbers as numbers (floats with repr's digits, as the csv has them), booleans as
booleans, text as text (ids too: `00123` stays `00123`), empty and null cells blank. Formula-looking text
needs no quote here: a text cell is never evaluated. The first sheet holds the rows under a frozen, styled
header with a filter; the second the document's other facts (ruleset and sha256, period and completeness,
missing history, totals and pool, assumptions, warnings).

How: xlsxwriter builds the workbook (styles, frozen panes, column widths, filter, the parts and their
relations), with a header row and one row of styled blank cells per sheet; the cells' XML is written here,
a slice of rows at a time, by polars expressions over the columns (as the json writer does), into a
temporary file; then the package is copied with each sheet's data in place of xlsxwriter's. Memory stays
that of a slice (5,000 rows) beside the flat rows the csv writer makes too, whatever the rows; writing is
about seven times faster than xlsxwriter's `constant_memory` mode (a Python call per cell, minutes at
500,000 rows), itself faster than openpyxl's write-only mode.
It also escapes every text: xlsxwriter writes text that starts with `<r>` and ends with `</r>` into the
XML as it is (its rich strings), which a shop name could use to break the file.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import shutil
import tempfile
import unicodedata
import zipfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import polars as pl

    from chuanliu_cli.present.documents import Document, EntityDocument, FrameDocument

#: Excel's limits: rows of a sheet (the header included) and characters of a cell.
MAX_ROWS = 1_048_576
MAX_TEXT = 32_767
#: Integers beyond this lose digits as Excel numbers (doubles): they are written as text, exact.
EXACT_INT = 2**53
#: Rows turned into XML at a time.
SLICE = 5_000

#: Number formats: grants and other amounts, decimals, rates, plain integers (ids, ranks, lines), text.
AMOUNT, DECIMAL, RATE, PLAIN, TEXT = "#,##0", "#,##0.00", "0.00%", "0", "@"
#: Integer columns shown with thousands separators whatever their values; the other integers are plain
#: unless they count something (rows, entities): ids, ranks and line numbers are not amounts.
_AMOUNTS = {"grant", "allocated", "pool", "unallocated"}
_PLAIN_INTS = {"rank", "line"}
#: A column whose name holds one of these words is a rate, shown as a percentage when every value is a
#: fraction (between 0 and 1); a rate outside that range is a plain decimal (it is not a fraction).
_RATE_WORDS = {"rate", "share", "ratio"}

Kind = Literal["int", "float", "bool", "str"]

#: Text that XML or Excel needs escaped: markup, control characters (as _xHHHH_, Excel's escape), the two
#: non-characters, and text that already looks like such an escape (its underscore escaped: _x005F_).
_ODD = r"[&<>\x00-\x08\x0b-\x1f\x{fffe}\x{ffff}]|_x[0-9a-fA-F]{4}_"
_ESCAPE_OF_ESCAPE = re.compile(r"(_x[0-9a-fA-F]{4}_)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\ufffe\uffff]")


def write_xlsx(
    out: IO[bytes], doc: Document | EntityDocument | FrameDocument, labels: Literal["en", "zh"] = "en"
) -> None:
    """Write `doc` as a workbook into `out` (a binary file open for writing). More rows than a sheet
    holds, or a text cell longer than Excel keeps, is a UsageError: nothing is cut short silently."""
    from chuanliu_cli.errors import UsageError
    from chuanliu_cli.present.documents import EntityDocument, FrameDocument, flat_frame, headers

    columns = list(doc.columns)
    names = headers(doc, labels)
    if isinstance(doc, EntityDocument):
        frame = flat_frame(doc, labels)
        facts = _facts({k: v for k, v in doc.head.items() if k != "entities"})
    elif isinstance(doc, FrameDocument):
        frame = doc.flat()
        facts = _facts({"rows": frame.height, **{k: v for k, v in doc.head.items() if k != doc.rows_key}})
    else:
        frame = _rows_frame(doc.rows, columns, doc.types)
        facts = _facts(_other_facts(doc))
    if frame.height + 1 > MAX_ROWS:
        raise UsageError(
            f"xlsx holds at most {MAX_ROWS - 1:,} rows on a sheet; this result has {frame.height:,}",
            hint="write csv or parquet (-o list.csv), or fewer rows (--top N)",
        )
    kinds, formats = _formats(frame, columns)
    _check_text(frame, columns, kinds)
    widths = _widths(frame, columns, names)

    with tempfile.TemporaryDirectory(prefix="chuanliu-xlsx-") as tmp:
        book = Path(tmp) / "book.xlsx"
        _skeleton(book, columns, formats, widths, frame.height, labels)
        with zipfile.ZipFile(book) as z:
            data_styles = _template_styles(z.read("xl/worksheets/sheet1.xml").decode())
            facts_styles = _template_styles(z.read("xl/worksheets/sheet2.xml").decode())
        rows = Path(tmp) / "rows.xml"
        with rows.open("wb") as f:
            f.write(_header_xml(names, data_styles[0]).encode())
            _write_rows(f, frame, columns, kinds, data_styles)
        about = _facts_xml(facts, labels, facts_styles)
        last = _letters(max(len(columns), 1) - 1)
        _assemble(
            book,
            out,
            {
                "xl/worksheets/sheet1.xml": (rows, f"A1:{last}{frame.height + 1}"),
                "xl/worksheets/sheet2.xml": (about, f"A1:B{len(facts) + 1}"),
            },
        )


# --- cells: kinds, formats, widths -------------------------------------------------------------------------


def _rows_frame(rows: list[dict[str, Any]], columns: list[str], types: dict[str, Any]) -> pl.DataFrame:
    """A `Document`'s rows as a frame with the csv's cells: a column of integers, numbers or booleans
    (the document's type, else its values') stays one, anything else is the text the csv writes (without
    the formula quote), so that xlsx and csv say the same."""
    import polars as pl

    series = []
    for name in columns:
        values = [r.get(name) for r in rows]
        present = [v for v in values if v is not None]
        kind = types.get(name) or _kind_of(present)
        s = None
        if kind == "bool" and all(isinstance(v, bool) for v in present):
            s = pl.Series(name, values, dtype=pl.Boolean)
        elif kind in ("int", "float") and not any(isinstance(v, bool) for v in present):
            with_floats = any(isinstance(v, float) for v in present)
            if all(isinstance(v, int) and abs(v) < 2**63 for v in present) and not with_floats:
                s = pl.Series(name, values, dtype=pl.Int64)
            elif all(
                (isinstance(v, int | float) and abs(v) < EXACT_INT) or isinstance(v, float) for v in present
            ):
                s = pl.Series(name, [None if v is None else float(v) for v in values], dtype=pl.Float64)
        if s is None:
            s = pl.Series(name, [None if v is None else _text(v) for v in values], dtype=pl.String)
        series.append(s)
    return pl.DataFrame(series) if series else pl.DataFrame()


def _kind_of(values: list[Any]) -> str:
    """The kind of a column's (non-null) Python values: all booleans, integers, numbers, else text."""
    if values and all(isinstance(v, bool) for v in values):
        return "bool"
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int"
    if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "float"
    return "str"


def _text(value: Any) -> str:
    """A value that is not text, as the csv writer writes it (without the formula quote)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _formats(frame: pl.DataFrame, columns: list[str]) -> tuple[dict[str, Kind], dict[str, str | None]]:
    """Each column's kind and number format, from its type, its name and its values."""
    import polars as pl

    kinds: dict[str, Kind] = {}
    formats: dict[str, str | None] = {}
    for name in columns:
        dtype = frame.schema[name]
        if dtype.is_integer():
            kinds[name], formats[name] = "int", _int_format(name)
        elif dtype.is_float():
            values = frame.get_column(name).drop_nulls()
            values = values.filter(values.is_finite())
            integral = bool(values.len()) and bool((values == values.floor()).all())
            fraction = not values.len() or bool(((values >= 0) & (values <= 1)).all())
            kinds[name], formats[name] = "float", _float_format(name, integral, fraction)
        elif dtype == pl.Boolean:
            kinds[name], formats[name] = "bool", None
        else:
            kinds[name], formats[name] = "str", TEXT
    return kinds, formats


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


def _check_text(frame: pl.DataFrame, columns: list[str], kinds: dict[str, Kind]) -> None:
    """Refuse a text longer than a cell holds, naming the first one (Excel would cut it)."""
    import polars as pl

    from chuanliu_cli.errors import UsageError

    for name in columns:
        if kinds[name] != "str" or not frame.height:
            continue
        lengths = frame.get_column(name).cast(pl.String).str.len_chars()
        if (lengths.max() or 0) > MAX_TEXT:  # type: ignore[operator]
            row = int((lengths > MAX_TEXT).arg_true()[0])
            raise UsageError(
                f"xlsx keeps at most {MAX_TEXT:,} characters in a cell; row {row + 2}, column {name} "
                f"holds {lengths[row]:,}",
                hint="write csv or parquet instead (-o list.csv)",
            )


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
    return _width(str(value))


def _widths(frame: pl.DataFrame, columns: list[str], names: list[str]) -> list[int]:
    """Column widths from the header (and room for the filter button) and the first 200 rows."""
    widths = [_width(n) + 2 for n in names]
    for row in frame.head(200).iter_rows():
        widths = [max(w, _shown(v)) for w, v in zip(widths, row, strict=True)]
    return [min(max(w, 6), 50) + 1 for w in widths]


# --- the workbook around the cells -------------------------------------------------------------------------


def _skeleton(
    path: Path,
    columns: list[str],
    formats: dict[str, str | None],
    widths: list[int],
    count: int,
    labels: str,
) -> None:
    """The workbook xlsxwriter writes: styles, frozen header, widths, filter, the two sheets, each with a
    placeholder header row and a row of blank cells in the styles the cells take (`_template_styles`)."""
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    try:
        header = book.add_format({"bold": True, "bg_color": "#DDEBF7", "bottom": 1})
        styles = {f: book.add_format({"num_format": f}) for f in (AMOUNT, DECIMAL, RATE, PLAIN, TEXT)}
        wrap = book.add_format({"text_wrap": True, "valign": "top"})
        sheet = book.add_worksheet("数据" if labels == "zh" else "data")
        sheet.freeze_panes(1, 0)
        for col, name in enumerate(columns):
            style = styles.get(formats[name] or "")
            sheet.set_column(col, col, widths[col], style)
            sheet.write_blank(0, col, None, header)
            # template row: the style of the column's numbers, then (as column n + col) of its text
            sheet.write_blank(1, col, None, style or header)
        for col in range(len(columns)):
            sheet.write_blank(1, len(columns) + col, None, styles[TEXT])
        if columns:
            sheet.autofilter(0, 0, max(count, 1), len(columns) - 1)
        about = book.add_worksheet("说明" if labels == "zh" else "about")
        about.freeze_panes(1, 0)
        about.set_column(0, 0, 30)
        about.set_column(1, 1, 100)
        about.write_blank(0, 0, None, header)
        for col, style in enumerate((styles[AMOUNT], wrap)):
            about.write_blank(1, col, None, style)
    finally:
        book.close()


def _template_styles(sheet_xml: str) -> list[int]:
    """The style index of each cell of a sheet's template rows, in order: the header's, then row 2's."""
    header = re.search(r'<c r="A1" s="(\d+)"', sheet_xml)
    row2 = re.findall(r'<c r="[A-Z]+2" s="(\d+)"', sheet_xml)
    return [int(header.group(1)) if header else 0, *(int(s) for s in row2)]


def _assemble(book: Path, out: IO[bytes], sheets: dict[str, tuple[Path | str, str]]) -> None:
    """Copy xlsxwriter's package into `out`, each sheet of `sheets` with its data (a file of rows, or
    text) in place of the template's, and its dimension (the range the data covers) set."""
    with zipfile.ZipFile(book) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename not in sheets:
                dst.writestr(info, data)
                continue
            xml = data.decode()
            found = re.search(r"<sheetData/>|<sheetData>.*</sheetData>", xml, re.S)
            if found is None:  # pragma: no cover - xlsxwriter writes one in every sheet
                raise ValueError(f"{info.filename} has no sheetData")
            start, end = found.span()
            body, ref = sheets[info.filename]
            before, after = _dimension(xml[:start], ref), xml[end:]
            entry = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            entry.compress_type = zipfile.ZIP_DEFLATED
            with dst.open(entry, "w", force_zip64=True) as f:
                f.write(before.encode())
                f.write(b"<sheetData>")
                if isinstance(body, Path):
                    with body.open("rb") as rows:
                        shutil.copyfileobj(rows, f, 1 << 20)
                else:
                    f.write(body.encode())
                f.write(b"</sheetData>")
                f.write(after.encode())


def _dimension(xml: str, ref: str) -> str:
    return re.sub(r'<dimension ref="[^"]*"/>', f'<dimension ref="{ref}"/>', xml, count=1)


# --- the cells' XML ----------------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Text as the character data of an inline string: `_xHHHH_` written as `_x005F_xHHHH_`, control
    characters (but tab and newline) and U+FFFE/U+FFFF as `_xHHHH_` (what Excel reads back), then & < >."""
    text = _ESCAPE_OF_ESCAPE.sub(r"_x005F\1", text)
    text = _CONTROL.sub(lambda m: f"_x{ord(m.group(0)):04X}_", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escaped(values: pl.Series) -> pl.Series:
    """`escape` for a column: only the values that need it go through Python (few do)."""
    import polars as pl

    text = values.cast(pl.String)
    odd = text.str.contains(_ODD).fill_null(False).arg_true()
    if odd.len():
        fixed = pl.Series([escape(v) for v in text.gather(odd).to_list()], dtype=pl.String)
        text = text.scatter(odd, fixed)
    return text


def _letters(col: int) -> str:
    """A column's letters: 0 → A, 25 → Z, 26 → AA."""
    out = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        out = chr(65 + rem) + out
    return out


def _string_cell(ref: pl.Expr, text: pl.Expr, style: int) -> pl.Expr:
    """An inline-string cell of (escaped) text, keeping leading and trailing spaces."""
    import polars as pl

    preserve = (
        pl.when(text.str.contains(r"^\s|\s$")).then(pl.lit(' xml:space="preserve"')).otherwise(pl.lit(""))
    )
    return pl.concat_str(
        [
            ref,
            pl.lit(f'" s="{style}" t="inlineStr"><is><t'),
            preserve,
            pl.lit(">"),
            text,
            pl.lit("</t></is></c>"),
        ]
    )


def _cell(name: str, letters: str, kind: Kind, style: int, text_style: int) -> pl.Expr:
    """One column's cells as XML, the empty string for a blank cell (null, or empty text)."""
    import polars as pl

    from chuanliu_cli.present.writers import float_text

    col = pl.col(name)
    ref = pl.lit(f'<c r="{letters}') + pl.col("__row")
    if kind == "bool":
        value = pl.when(col).then(pl.lit("1")).when(~col).then(pl.lit("0"))  # (null: a blank cell)
        cell = pl.concat_str([ref, pl.lit('" t="b"><v>'), value, pl.lit("</v></c>")])
    elif kind == "str":
        text = col.map_batches(_escaped, return_dtype=pl.String, is_elementwise=True)
        cell = pl.when(col != "").then(_string_cell(ref, text, text_style))
    else:
        x = col.cast(pl.Float64)
        text = float_text(col) if kind == "float" else col.cast(pl.String)
        # NaN and infinities as the csv writes them (repr: nan, inf, -inf)
        text = (
            pl.when(x.is_nan())
            .then(pl.lit("nan"))
            .when(x.is_infinite())
            .then(pl.when(x > 0).then(pl.lit("inf")).otherwise(pl.lit("-inf")))
            .otherwise(text)
        )
        number = pl.concat_str([ref, pl.lit(f'" s="{style}"><v>'), text, pl.lit("</v></c>")])
        exact = x.is_finite() & (x.abs() < EXACT_INT if kind == "int" else pl.lit(True))
        # NaN, infinities and integers past 2**53 as exact text
        cell = pl.when(exact).then(number).otherwise(_string_cell(ref, text, text_style))
    return cell.fill_null("")


def _write_rows(
    out: IO[bytes],
    frame: pl.DataFrame,
    columns: list[str],
    kinds: dict[str, Kind],
    styles: list[int],
) -> None:
    """The data rows as XML into `out`, a slice at a time."""
    import polars as pl

    n = len(columns)
    if not n:
        return
    cells = []
    for i, name in enumerate(columns):
        style, text_style = styles[1 + i], styles[1 + n + i]
        cells.append(_cell(name, _letters(i), kinds[name], style, text_style))
    row = pl.concat_str([pl.lit('<row r="'), pl.col("__row"), pl.lit('">'), *cells, pl.lit("</row>")])
    for start in range(0, frame.height, SLICE):
        part = frame.slice(start, SLICE).with_columns(
            pl.int_range(start + 2, start + 2 + min(SLICE, frame.height - start))
            .cast(pl.String)
            .alias("__row")
        )
        out.write(part.select(row.str.join("")).item().encode())


def _header_xml(names: list[str], style: int) -> str:
    cells = "".join(
        f'<c r="{_letters(i)}1" s="{style}" t="inlineStr"><is><t>{escape(n)}</t></is></c>'
        for i, n in enumerate(names)
    )
    return f'<row r="1">{cells}</row>'


# --- the facts sheet ---------------------------------------------------------------------------------------


def _other_facts(doc: Document) -> dict[str, Any]:
    """What a document says besides its rows: its top-level values that are not lists of records (those
    are the rows of the first sheet), e.g. the summary of `compare`."""
    facts: dict[str, Any] = {"rows": len(doc.rows)}
    if isinstance(doc.document, dict):
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


def _facts_xml(facts: list[tuple[str, Any]], labels: str, styles: list[int]) -> str:
    """The second sheet's rows: a header, then one fact a row, name and value."""
    from chuanliu_cli.errors import UsageError

    header, amount, wrap = styles[0], styles[1], styles[2]
    head = ("项目", "值") if labels == "zh" else ("fact", "value")
    rows = [_header_xml(list(head), header)]

    def text(ref: str, value: str, style: int | None = None) -> str:
        s = f' s="{style}"' if style is not None else ""
        space = ' xml:space="preserve"' if value != value.strip() else ""
        return f'<c r="{ref}"{s} t="inlineStr"><is><t{space}>{escape(value)}</t></is></c>'

    for r, (name, value) in enumerate(facts, start=2):
        cells = text(f"A{r}", name)
        if value is None or value == "":
            pass
        elif isinstance(value, bool):
            cells += f'<c r="B{r}" t="b"><v>{int(value)}</v></c>'
        elif isinstance(value, int) and abs(value) < EXACT_INT:
            cells += f'<c r="B{r}" s="{amount}"><v>{value}</v></c>'
        elif isinstance(value, float) and math.isfinite(value):
            cells += f'<c r="B{r}"><v>{value!r}</v></c>'
        else:
            if len(str(value)) > MAX_TEXT:
                raise UsageError(
                    f"xlsx keeps at most {MAX_TEXT:,} characters in a cell; the fact {name} holds "
                    f"{len(str(value)):,}",
                    hint="write json instead (-o list.json)",
                )
            cells += text(f"B{r}", str(value), wrap)
        rows.append(f'<row r="{r}">{cells}</row>')
    return "".join(rows)
