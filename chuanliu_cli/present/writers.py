"""Writers: a `Document` (present/documents.py) as csv, json, jsonl or parquet (xlsx: present/xlsx.py); safe
CSV; csv encodings; atomic files."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

    from chuanliu_cli.present.documents import Document, EntityDocument, FrameDocument

Format = Literal["table", "csv", "json", "jsonl", "parquet", "xlsx"]
DataFormat = Literal["csv", "json", "jsonl", "parquet"]
LabelChoice = Literal["en", "zh"]
#: Formats that are bytes, not text: refused on a terminal, fine in a pipe or a file.
BINARY_FORMATS = frozenset({"parquet", "xlsx"})
#: The encodings of csv output (`--csv-encoding`).
CSV_ENCODINGS = ("utf-8", "utf-8-sig", "gb18030")

#: CSV cells starting with one of these are prefixed with ' so spreadsheets do not run them as formulas.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas: text starting with = + - @ tab or CR gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    text = str(value)
    if text.startswith(_FORMULA_START):
        with contextlib.suppress(ValueError):
            float(text)
            return text  # numbers excepted: -5 stays -5
        return "'" + text
    return text


#: Text that Python's float() reads (what `safe_cell` excepts as a number), as a regular expression of the
#: polars (Rust) engine: optional whitespace, a sign, digits with single underscores between them, a point,
#: an exponent, or inf/infinity/nan in any case. `\s` and `\d` are Unicode classes in both; the one known
#: difference is digits of scripts newer than Python 3.11's Unicode 14 (e.g. Kawi, U+11F50), which count as
#: digits here, as in Python 3.12+.
_DIGITS = r"\d(?:_?\d)*"
_NUMBER = (
    rf"^\s*[+-]?(?:(?:(?:{_DIGITS})?\.{_DIGITS}|{_DIGITS}\.?)(?:[eE][+-]?{_DIGITS})?"
    r"|(?i:inf|infinity|nan))\s*$"
)


def safe_text(expr: pl.Expr) -> pl.Expr:
    """`safe_cell` for a text column, as a polars expression: text starting with = + - @ tab or CR gets a
    leading quote, unless it is a number (-5, +3.5)."""
    import polars as pl

    return expr.map_batches(safe_texts, return_dtype=pl.String, is_elementwise=True)


def safe_texts(values: pl.Series) -> pl.Series:
    """`safe_text` for one column: only the values that start like a formula are read again (is it a
    number?) and only those that are not get their quote. (One expression over every value, a second
    regular expression and a quoted copy of each, took 1.1 s for 2.7M product names; this 0.3 s.)"""
    import polars as pl

    text = values.cast(pl.String)
    starts = text.str.contains(r"^[=+\-@\t\r]").fill_null(False).arg_true()
    if not starts.len():
        return text
    risky = starts.filter(~text.gather(starts).str.contains(_NUMBER))
    if not risky.len():
        return text
    return text.scatter(risky, "'" + text.gather(risky))


def float_text(expr: pl.Expr) -> pl.Expr:
    """Floats as the text Python's repr gives (what the row writers wrote); null stays null."""
    import polars as pl

    return expr.map_batches(repr_floats, return_dtype=pl.String, is_elementwise=True)


def repr_columns(frame: pl.DataFrame) -> set[str]:
    """The float columns of `frame` whose text polars writes otherwise than repr: those holding a value
    between 0 and 1e-4 (`repr_floats`). Every other float polars writes with repr's digits, so those
    columns go to the csv writer as they are (one pass over the values instead of a text copy of each)."""
    import polars as pl

    floats = [name for name, dtype in frame.schema.items() if dtype == pl.Float64]
    tiny = [((pl.col(n).abs() < 1e-4) & (pl.col(n) != 0)).any() for n in floats]
    odd = frame.select(tiny).row(0) if tiny else ()
    narrower = {name for name, dtype in frame.schema.items() if dtype.is_float() and dtype != pl.Float64}
    return narrower | {n for n, found in zip(floats, odd, strict=True) if found}


def repr_floats(values: pl.Series) -> pl.Series:
    """`float_text` for one column. Polars writes the shortest round-trip digits, as repr does, except
    between 0 and 1e-4: 1e-05 as 0.00001 and 1e-07 as 1e-7; only those few values are rewritten (a regular
    expression over every value would cost more than the formatting)."""
    import polars as pl

    x = values.cast(pl.Float64)
    text = x.cast(pl.String)
    odd = ((x.abs() < 1e-4) & (x != 0)).arg_true()
    if odd.len():
        fixed = text.gather(odd).str.replace(r"e-(\d)$", "e-0${1}")
        fixed = fixed.str.replace(r"^(-?)0\.0000(\d)$", "${1}${2}e-05")
        fixed = fixed.str.replace(r"^(-?)0\.0000(\d)(\d+)$", "${1}${2}.${3}e-05")
        text = text.scatter(odd, fixed)
    return text


def write_csv(
    stream: IO[str], rows: list[dict[str, Any]], columns: list[str], header: list[str] | None = None
) -> None:
    """CSV with a header row (`header`, else the column names); every cell formula-safe."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow([safe_cell(c) for c in (columns if header is None else header)])
    for row in rows:
        writer.writerow([safe_cell(row.get(c)) for c in columns])


def encode_csv(data: str | bytes, encoding: str, chunk: int = 1 << 20) -> Iterator[bytes]:
    """csv text (str, or UTF-8 bytes) as bytes in `encoding`, a piece at a time: utf-8 as it is, utf-8-sig
    after a byte-order mark (what Excel needs to read UTF-8), gb18030 transcoded (GB18030 encodes every
    Unicode character, so it cannot fail, unlike GBK)."""
    if encoding not in CSV_ENCODINGS:
        raise ValueError(encoding)
    if encoding == "utf-8-sig":
        yield b"\xef\xbb\xbf"
    if encoding != "gb18030":
        yield data.encode("utf-8") if isinstance(data, str) else data
        return
    if isinstance(data, str):
        for start in range(0, len(data), chunk):
            yield data[start : start + chunk].encode("gb18030")
        return
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    for start in range(0, len(data), chunk):
        yield decoder.decode(data[start : start + chunk]).encode("gb18030")
    yield decoder.decode(b"", final=True).encode("gb18030")


def write_document(
    out: IO[bytes],
    fmt: DataFormat,
    doc: Document | EntityDocument | FrameDocument,
    labels: LabelChoice = "en",
    csv_encoding: str = "utf-8",
) -> None:
    """`render`'s bytes written into a binary stream (csv in `csv_encoding`, the rest UTF-8): what a file
    (-o, --list-out) receives. The entities' csv and jsonl go from the frame into the stream as polars
    writes them, not gathered in memory first (2.7M products: 187 MB that were copied twice)."""
    from chuanliu_cli.present.documents import EntityDocument, FrameDocument

    if isinstance(doc, EntityDocument | FrameDocument) and not (fmt == "csv" and csv_encoding == "gb18030"):
        if fmt == "csv":
            if csv_encoding not in CSV_ENCODINGS:
                raise ValueError(csv_encoding)
            if csv_encoding == "utf-8-sig":
                out.write(b"\xef\xbb\xbf")
        write_columns(out, fmt, doc, labels)
        return
    data = render(fmt, doc, labels)
    if fmt == "csv":
        for chunk in encode_csv(data, csv_encoding):
            out.write(chunk)
        return
    out.write(data.encode("utf-8") if isinstance(data, str) else data)


def render(
    fmt: DataFormat, doc: Document | EntityDocument | FrameDocument, labels: LabelChoice = "en"
) -> str | bytes:
    """One result as csv, json or jsonl text, or parquet bytes: the one writer of every command's data.
    `labels` zh: Chinese column headers in csv and parquet (json and jsonl keep the stable English keys)."""
    from chuanliu_cli.present.documents import EntityDocument, FrameDocument, headers

    if isinstance(doc, EntityDocument | FrameDocument):
        out = io.BytesIO()
        write_columns(out, fmt, doc, labels)
        return out.getvalue()
    if fmt == "json":
        return json.dumps(doc.document, ensure_ascii=False, indent=2, default=str) + "\n"
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in doc.records)
    if fmt == "csv":
        buf = io.StringIO()
        write_csv(buf, doc.rows, doc.columns, headers(doc, labels))
        return buf.getvalue()
    if fmt == "parquet":
        return parquet_bytes(doc, labels)
    raise ValueError(fmt)


def parquet_bytes(doc: Document, labels: LabelChoice = "en") -> bytes:
    """Parquet of the flat rows: the document's column types where it fixes them (stable across runs),
    else what pyarrow infers."""
    import pyarrow as pa

    from chuanliu_cli.present.documents import headers

    arrow_types = _arrow_types()
    if not doc.types:
        table = pa.Table.from_pylist(doc.rows)
        if labels != "en":
            table = table.rename_columns(headers(replace(doc, columns=table.column_names), labels))
    else:
        arrays = []
        for c in doc.columns:
            values = [r.get(c) for r in doc.rows]
            kind = doc.types.get(c)
            if kind == "str":
                values = [None if v is None else str(v) for v in values]
            arrays.append(pa.array(values, arrow_types[kind] if kind else None))
        table = pa.Table.from_arrays(arrays, names=headers(doc, labels))
    return _parquet(table)


def _arrow_types() -> dict[str, Any]:
    """The Arrow type of each column type a document names (`Document.types`: float, int, bool, str)."""
    import pyarrow as pa

    return {"float": pa.float64(), "int": pa.int64(), "bool": pa.bool_(), "str": pa.string()}


def _parquet(table: pa.Table) -> bytes:
    """A table as the bytes of a parquet file: every parquet output goes through this one writer."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = pa.BufferOutputStream()
    pq.write_table(table, buf, compression="zstd")
    return bytes(buf.getvalue().to_pybytes())


# --- score / eligible, written from the frame (issue #21) -----------------------------------------------


def write_columns(
    out: IO[bytes], fmt: DataFormat, doc: EntityDocument | FrameDocument, labels: LabelChoice = "en"
) -> None:
    """A document kept as columns (`score`/`eligible`'s entities, `runs --id`'s results) as csv, json,
    jsonl (UTF-8) or parquet, written from its frame into `out` as polars makes it, never gathered in
    memory first (2.7M products: 187 MB of csv, 1.3 GB of json). The bytes are the row writers' (`render`
    of a `Document`) but for two fixes: a text cell holding a CR is quoted in csv, as RFC 4180 wants
    (Python's csv module left it bare, which split the row for every reader, Python's own included), and a
    NaN is null in json (json.dumps wrote NaN, which is not JSON)."""
    from chuanliu_cli.present.documents import EntityDocument, headers

    if fmt == "csv":
        if isinstance(doc, EntityDocument):
            write_entities_csv(out, doc, labels)
        else:
            write_frame_csv(out, doc.flat(), doc.columns, headers(doc, labels))
    elif fmt == "jsonl":
        if isinstance(doc, EntityDocument):
            write_entities_json(out, doc, None, "")
        else:
            write_rows_json(out, doc.json_rows(), None, "")
    elif fmt == "json":
        if isinstance(doc, EntityDocument):
            frame, key = doc.frame, "entities"

            def records(o: IO[bytes], rows: pl.DataFrame, after: str) -> None:
                write_entities_json(o, replace(doc, frame=rows), 2, after)
        else:
            frame, key = doc.json_rows(), doc.rows_key

            def records(o: IO[bytes], rows: pl.DataFrame, after: str) -> None:
                write_rows_json(o, rows, 2, after)

        write_json_document(out, doc.head, key, frame, records)
    elif fmt == "parquet":
        if isinstance(doc, EntityDocument):
            out.write(entities_parquet(doc, labels))
        else:
            out.write(frame_parquet(doc.flat(), doc.columns, doc.types, headers(doc, labels)))
    else:
        raise ValueError(fmt)


def write_json_document(
    out: IO[bytes],
    head: dict[str, Any],
    key: str,
    frame: pl.DataFrame,
    records: Callable[[IO[bytes], pl.DataFrame, str], None],
) -> None:
    """`head` as json.dumps writes it (indent 2) with `frame`'s rows in place of its top-level `key: []`:
    `records` writes some rows as the list's items (at depth 2), each followed by its `after` and a newline
    (every row but the last by a comma: the file is written straight, never gone back over)."""
    text = json.dumps(head, ensure_ascii=False, indent=2, default=str) + "\n"
    if not frame.height:
        out.write(text.encode())
        return
    # at depth 1, unique: text never holds a bare newline
    slot = f"\n  {json.dumps(key, ensure_ascii=False)}: []"
    before, found, after = text.partition(slot)
    if not found or slot in after or after[:1] not in (",", "\n"):  # pragma: no cover - one such key
        raise ValueError(f"the JSON document has no single place for its {key}")
    out.write((before + slot[:-1] + "\n").encode())
    if frame.height > 1:
        records(out, frame.head(frame.height - 1), ",")
    records(out, frame.tail(1), "")
    out.write(("  ]" + after).encode())


def write_entities_csv(out: IO[bytes], doc: EntityDocument, labels: LabelChoice = "en") -> None:
    """The entities' flat rows (`flat_frame`) as csv into a binary stream (`write_frame_csv`)."""
    from chuanliu_cli.present.documents import flat_frame, headers

    write_frame_csv(out, flat_frame(doc, labels), doc.columns, headers(doc, labels))


def write_frame_csv(out: IO[bytes], frame: pl.DataFrame, columns: list[str], header: list[str]) -> None:
    """Flat columns (`columns`, in order) as csv into a binary stream: the header as `write_csv` writes it,
    then polars' writer; text cells formula-safe, empty text written like null (bare, as Python's csv
    module did), floats as repr."""
    import polars as pl

    cells = []
    rewritten = repr_columns(frame)
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype == pl.String:
            cells.append(safe_text(pl.when(col != "").then(col)).alias(name))
        elif name in rewritten:  # (a Float32, or a column holding a value below 1e-4)
            cells.append(float_text(col).alias(name))
        else:
            cells.append(col)  # integers, booleans (true/false), nulls and floats polars writes as repr does
    head = io.StringIO()
    write_csv(head, [], columns, header)
    out.write(head.getvalue().encode())
    frame.select(cells).write_csv(out, include_header=False, line_terminator="\n", null_value="")


def _json_string(expr: pl.Expr) -> pl.Expr:
    """Text as a JSON string, as json.dumps(ensure_ascii=False) writes it; null as null."""
    import polars as pl

    return expr.map_batches(json_strings, return_dtype=pl.String, is_elementwise=True)


def json_strings(values: pl.Series) -> pl.Series:
    """`_json_string` for one column: text without a quote, backslash or control character is only
    quoted; the others go through polars' JSON encoder, which escapes exactly as json.dumps does."""
    import polars as pl

    text = values.cast(pl.String)
    if text.null_count() == text.len():
        return pl.repeat("null", text.len(), dtype=pl.String, eager=True)
    out = ('"' + text + '"').fill_null("null")
    odd = text.str.contains(r'["\\\x00-\x1f]').fill_null(False).arg_true()
    if odd.len():
        frame = pl.DataFrame({"s": text.gather(odd)})
        encoded = frame.select(pl.struct("s").struct.json_encode()).to_series()
        out = out.scatter(odd, encoded.str.strip_prefix('{"s":').str.strip_suffix("}"))
    return out


def _json_array(lists: pl.Series, open_: str, sep: str, close: str) -> pl.Series:
    """Non-empty lists of text as JSON arrays, `open_`, `sep` and `close` giving json.dumps' layout."""
    import polars as pl

    items = lists.list.eval(pl.struct(pl.element().alias("s")).struct.json_encode())
    texts = items.list.eval(pl.element().str.strip_prefix('{"s":').str.strip_suffix("}"))
    return open_ + texts.list.join(sep) + close


def _json_value(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """One column's values as JSON text the way json.dumps writes them; null as null."""
    import polars as pl

    from chuanliu_cli.present.documents import finite

    if dtype == pl.String:
        return _json_string(expr)
    if dtype.is_float():
        text = float_text(finite(expr))
    elif dtype == pl.Boolean:
        text = pl.when(expr).then(pl.lit("true")).when(~expr).then(pl.lit("false"))
    elif dtype == pl.Null:
        text = pl.lit(None, dtype=pl.String)
    else:
        text = expr.cast(pl.String)
    return text.fill_null("null")


def write_entities_json(out: IO[bytes], doc: EntityDocument, indent: int | None, after: str) -> None:
    """Write every entity as JSON (UTF-8), each followed by `after` and a newline: as json.dumps writes
    each record alone (`indent` None: one line, ", " and ": ") or inside the document (`indent` 2: at
    depth 2). The keys and their order are `entity_records`'."""
    import polars as pl

    from chuanliu_cli.present.documents import gate_reasons, per_gate_list

    frame = doc.frame
    open_, sep, close = _layout(indent, "{", "}")
    nested_open, nested_sep, nested_close = _layout(indent, "{", "}", 1)
    list_open, list_sep, list_close = _layout(indent, "[", "]", 1)

    def value(name: str) -> pl.Expr:
        return _json_value(pl.col(name), frame.schema[name])

    def nested(names: tuple[str, ...]) -> list[pl.Expr | str]:
        if not names:
            return ["{}"]
        parts: list[pl.Expr | str] = [nested_open]
        for i, name in enumerate(names):
            parts += [nested_sep if i else "", _key(name), value(name)]
        return [*parts, nested_close]

    def array(reasons: bool) -> pl.Expr:
        def encode(gates: pl.Series) -> pl.Series:
            return _json_array(
                gate_reasons(doc, gates) if reasons else gates, list_open, list_sep, list_close
            )

        return per_gate_list(doc, "[]", encode)

    eligible = pl.when(pl.col("eligible").fill_null(False)).then(pl.lit("true")).otherwise(pl.lit("false"))
    fields: list[tuple[str, list[pl.Expr | str]]] = [
        (doc.key, [value(doc.key)]),
        ("name", [value("name")]),
        *((c, list[pl.Expr | str]([value(c)])) for c in ("group_id", "category") if c in doc.columns),
        ("rank", [value("rank")]),
        ("eligible", [eligible]),
        ("failed_gates", [array(reasons=False)]),
        ("reasons", [array(reasons=True)]),
        ("tier", [value("tier")]),
        ("grant", [value("grant")]),
        ("grant_note", [value("grant_note")]),
        ("scores", nested(doc.scores)),
        ("metrics", nested(doc.metrics)),
    ]
    parts: list[pl.Expr | str] = [open_]
    for i, (name, parts_of) in enumerate(fields):
        parts += [sep if i else "", _key(name), *parts_of]
    _write_records(out, frame, [*parts, close, after])


def write_rows_json(out: IO[bytes], frame: pl.DataFrame, indent: int | None, after: str) -> None:
    """Write every row of a frame of flat columns as a JSON object (UTF-8) of its columns in order, each
    followed by `after` and a newline, laid out as `write_entities_json` lays out an entity."""
    import polars as pl

    open_, sep, close = _layout(indent, "{", "}")
    list_open, list_sep, list_close = _layout(indent, "[", "]", 1)
    parts: list[pl.Expr | str] = [open_]
    for i, (name, dtype) in enumerate(frame.schema.items()):
        if isinstance(dtype, pl.List):  # (of text: a comparison's failing gates and their reasons)
            value = pl.col(name).map_batches(
                lambda lists: _json_lists(lists, list_open, list_sep, list_close),
                return_dtype=pl.String,
                is_elementwise=True,
            )
        else:
            value = _json_value(pl.col(name), dtype)
        parts += [sep if i else "", _key(name), value]
    _write_records(out, frame, [*parts, close, after])


def _json_lists(lists: pl.Series, open_: str, sep: str, close: str) -> pl.Series:
    """Lists of text as json.dumps writes them (`open_`, `sep`, `close`: its layout); empty `[]`, null
    `null`."""
    import polars as pl

    from chuanliu_cli.present.documents import list_texts

    def encode(full: pl.Series) -> pl.Series:
        return _json_array(full, open_, sep, close)

    return list_texts(lists.cast(pl.List(pl.String)), "[]", encode, null="null")


def _layout(indent: int | None, open_: str, close: str, depth: int = 0) -> tuple[str, str, str]:
    """How json.dumps opens, separates and closes an object or array: on one line (`indent` None), or as
    an item of a document's top-level list (at depth 2, its fields at 3; `depth` 1: a value of a field)."""
    if indent is None:
        return open_, ", ", close
    pad = " " * indent
    field, deeper = "\n" + pad * 3, "\n" + pad * 4
    if depth:
        return open_ + deeper, "," + deeper, field + close
    return pad * 2 + open_ + field, "," + field, "\n" + pad * 2 + close


def _key(name: str) -> str:
    return json.dumps(name, ensure_ascii=False) + ": "


def _write_records(out: IO[bytes], frame: pl.DataFrame, parts: list[pl.Expr | str]) -> None:
    """One text per row, the parts concatenated, written a line each straight into `out` (polars' csv
    writer with one unquoted column)."""
    import polars as pl

    record = pl.concat_str(
        [pl.lit(p) if isinstance(p, str) else p for p in parts if not isinstance(p, str) or p]
    ).alias("json")
    for start in range(0, frame.height, _RECORDS):
        frame.slice(start, _RECORDS).select(record).write_csv(
            out, include_header=False, quote_style="never", line_terminator="\n"
        )


#: Rows whose records are made and written at a time (`_write_records`): 2.7M products' json is 1.3 GB.
_RECORDS = 200_000


def entities_parquet(doc: EntityDocument, labels: LabelChoice = "en") -> bytes:
    """The entities' flat rows (`flat_frame`) as parquet (`frame_parquet`)."""
    from chuanliu_cli.present.documents import flat_frame, headers

    return frame_parquet(flat_frame(doc, labels), doc.columns, doc.types, headers(doc, labels))


def frame_parquet(frame: pl.DataFrame, columns: list[str], types: dict[str, Any], header: list[str]) -> bytes:
    """Flat columns as parquet, through the same pyarrow writer and column types as `parquet_bytes`
    (`types`: column → float/int/bool/str, text when not named), under the names `header`."""
    import pyarrow as pa

    arrow_types = _arrow_types()
    table = frame.select(columns).to_arrow()
    schema = pa.schema([(c, arrow_types[types.get(c, "str")]) for c in columns])
    table = table.cast(schema).rename_columns(header)
    # one chunk per column, as pa.array made them: the same pages, hence the same bytes, as parquet_bytes
    with contextlib.suppress(pa.ArrowInvalid):  # (a text column past 2 GB stays in chunks)
        table = table.combine_chunks()
    return _parquet(table)


# Files this process reads (the database, the exports of `--data`, rulesets), by their resolved path, with
# what they are: `-o` never replaces one of them with its output. And the outputs a command was asked to
# write (checked at its start, before anything is read): a file read later that is one of them stops the
# command there, before it scores or records anything.
_PROTECTED: dict[str, str] = {}
_OUTPUTS: dict[str, Path] = {}


def _refuse(path: Path, what: str) -> Exception:
    from chuanliu_cli.errors import UsageError

    return UsageError(
        f"-o {path} is {what}: writing the output there would destroy it", hint="name another file"
    )


def protect_from_output(path: str | Path, what: str) -> None:
    """Refuse, from now on in this process, to write output over `path` (its resolved path): `what` says
    what it is (the database, an export being read, the ruleset). A UsageError at once when an output
    this command will write is that file."""
    resolved = os.path.realpath(path)
    _PROTECTED[resolved] = what
    if resolved in _OUTPUTS:
        raise _refuse(_OUTPUTS[resolved], what)


def declare_output(path: Path) -> None:
    """The command being run will write `path` (checked with check_writable): a file it then reads that is
    `path` stops it at once (protect_from_output), before it scores or records anything."""
    check_writable(path)
    _OUTPUTS[os.path.realpath(path)] = path


def new_command() -> None:
    """Forget the files read and the outputs declared by an earlier command of this process (the CLI runs
    one command a process; tests and notebooks run many)."""
    _PROTECTED.clear()
    _OUTPUTS.clear()


def _written_path(path: Path) -> Path:
    """Where writing `path` lands: the file a symlink names (the link stays a link), else `path`."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _not_a_file(path: Path) -> bool:
    """Whether `path` exists as something other than a regular file (a device such as /dev/null, a pipe
    such as /dev/stdout or a shell's >(...)): output is written into it, never renamed over it."""
    return path.exists() and not path.is_file() and not path.is_dir()


def check_writable(path: Path) -> None:
    """Fail early, with a usage error, when `-o FILE` cannot be written (no directory, a directory, a file
    this command reads)."""
    from chuanliu_cli.errors import UsageError

    if str(path) == "-":  # (the data commands take `-o -` as standard output before this)
        raise UsageError("-o -: this command writes a file", hint="name the file to write")
    what = _PROTECTED.get(os.path.realpath(path))
    if what is not None:
        raise _refuse(path, what)
    if _not_a_file(path):
        return  # (written into, as it is)
    target = _written_path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise UsageError(f"cannot write {path}: directory {directory} does not exist", hint="create it first")
    if target.is_dir():
        raise UsageError(f"cannot write {path}: it is a directory")
    if not os.access(directory, os.W_OK):
        raise UsageError(f"cannot write {path}: directory {directory} is not writable")


def format_from_suffix(path: Path | None) -> str | None:
    """The output format an `-o` file name implies (list.json → json), or None."""
    if path is None:
        return None
    return {
        ".csv": "csv",
        ".json": "json",
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
        ".parquet": "parquet",
        ".xlsx": "xlsx",
        ".txt": "table",
    }.get(path.suffix.lower())


@contextlib.contextmanager
def atomic_write(path: Path, mode: Literal["w", "wb"] = "w") -> Iterator[IO[Any]]:
    """Write `path` through a temp file in the same directory, fsync, then rename: never half-written.

    A symlink's target file is replaced so (the link stays); a device or a pipe (/dev/null, /dev/stdout,
    a shell's >(...)) is written into as it is: renaming a file over it would replace the device."""
    check_writable(path)
    if _not_a_file(path):
        with open(path, "w", encoding="utf-8", newline="") if mode == "w" else open(path, "wb") as stream:
            yield stream
        return
    path = _written_path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    # mkstemp makes 0600 files; keep the mode of the file we replace, else what the umask allows
    try:
        mode_bits = path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode_bits = 0o666 & ~umask
    os.fchmod(fd, mode_bits)
    try:
        f: IO[Any]
        f = os.fdopen(fd, "w", encoding="utf-8", newline="") if mode == "w" else os.fdopen(fd, "wb")
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        with contextlib.suppress(OSError):
            dfd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
