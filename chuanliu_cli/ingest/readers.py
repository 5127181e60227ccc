"""Readers turn an export file (CSV, Parquet, XLSX, JSON lines, saved API responses) into batches of text
cells with their line numbers."""

from __future__ import annotations

import codecs
import csv
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chuanliu_cli.arrays import int_array
from chuanliu_cli.errors import DataError
from chuanliu_cli.ingest.formats.base import Batch, FileFormat, FileReader, text_batch

if TYPE_CHECKING:
    import pyarrow.parquet as pq

    from chuanliu_cli.ingest.mapping import Mapping

BATCH_ROWS = 200_000
_SNIFF_BYTES = 1 << 20
_CHUNK_BYTES = 1 << 20
# A single CSV field larger than this is refused: no real export has one, and it bounds memory.
MAX_FIELD_BYTES = 16 << 20


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK_BYTES), b""):
            h.update(chunk)
    return h.hexdigest()


def detect_format(path: Path) -> FileFormat:
    """The format from the file's first bytes (magic numbers), falling back to its extension."""
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "xlsx"  # a legacy .xls or an encrypted workbook: the XLSX reader explains what to do
    suffix = path.suffix.lower()
    if suffix in (".xls", ".htm", ".html"):
        # Some backends write an HTML table, or plain CSV/TSV text, and name it .xls: read what it holds.
        from chuanliu_cli.ingest.formats.html import looks_like_html

        return "html" if looks_like_html(path) else "csv"
    if suffix == ".parquet":
        return "parquet"
    if suffix in (".xlsx", ".xlsm"):
        return "xlsx"
    from chuanliu_cli.ingest.formats.openplatform import looks_like_json, sniff

    # saved open-platform responses are recognised by their shape (an envelope of result and data)
    if looks_like_json(path) and sniff(path) is not None:
        return "openplatform"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return "csv"


def open_file(
    path: Path, encoding: str | None = None, sheet: str | None = None, mapping: Mapping | None = None
) -> list[FileReader]:
    """Open an export file: one reader for CSV/Parquet, one per data sheet for XLSX (or table for HTML).

    Without `sheet`, a workbook's sheets whose header is not an export's (a 汇总 summary before the data)
    are left out when another sheet's header is one, with a note naming them (`mapping`: the header
    aliases, default the shipped ones).
    """
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(
            f"{path}: is a directory, not a file", hint="load a directory as a directory of exports"
        )
    fmt = detect_format(path)
    if fmt == "parquet":
        return [_open_parquet(path)]
    if fmt == "jsonl":
        return [_open_jsonl(path, encoding)]
    if fmt == "openplatform":
        from chuanliu_cli.ingest.formats.openplatform import open_responses

        return [open_responses(path, encoding)]
    if fmt == "csv":
        return [_open_csv(path, encoding)]
    if fmt == "html":
        from chuanliu_cli.ingest.formats.html import open_html

        readers = open_html(path, encoding)
    else:
        from chuanliu_cli.ingest.formats.xlsx import open_xlsx

        readers = open_xlsx(path, sheet)
    return readers if sheet is not None else _data_sheets(path, readers, mapping)


# Sheet names of summaries (they never hold an export's rows, even when a column such as 店铺ID maps).
_SUMMARY_TITLES = ("汇总", "总览", "概览", "统计", "summary", "overview", "total")


def _data_sheets(path: Path, readers: list[FileReader], mapping: Mapping | None) -> list[FileReader]:
    """The readers whose header is an export's, when there are such and others; a note names the others.

    A header is an export's when it has every required column of a table with two or more of them (orders,
    reviews, livestreams), or of shops when the sheet is not named like a summary. When no sheet qualifies
    (e.g. headers known only to a mapping that is not given here) every sheet is kept, as before.
    """
    if len(readers) < 2:
        return readers
    from chuanliu_cli.ingest.discover import complete_tables

    def is_data(r: FileReader) -> bool:
        tables = complete_tables(r.headers, mapping)
        summary = any(w in (r.sheet or "").casefold() for w in _SUMMARY_TITLES)
        return any(t != "shops" for t in tables) or ("shops" in tables and not summary)

    data = [r for r in readers if is_data(r)]
    if not data or len(data) == len(readers):
        return readers
    left = [r for r in readers if r not in data]
    for r in left:
        r.close()
    shown = ", ".join(repr(r.sheet) for r in data)
    skipped = "; ".join(f"{r.sheet!r} ({_short(r.headers)})" for r in left)
    data[0].notes.append(
        f"{path}: read sheet {shown}; left out sheet {skipped}: not an export's header "
        "(name the sheet to read to choose another)"
    )
    return data


def _short(headers: list[str], n: int = 4) -> str:
    return ", ".join(headers[:n]) + (", …" if len(headers) > n else "")


# --- JSON lines (open-platform API dumps) -----------------------------------------------------------------

_JSONL_HEADER_SAMPLE = 1000


def _json_cell(value: object) -> str | None:
    """A JSON value as the text a CSV export would hold (ids stay exact: ints print as digits)."""
    import json

    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e18:
        return str(int(value))
    if isinstance(value, int | float | str):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _open_jsonl(path: Path, encoding: str | None) -> FileReader:
    """One JSON object a line; the columns are the keys of the first objects, in order of appearance."""
    import json

    sample = head_bytes(path)
    enc = encoding or detect_encoding(path, sample)
    headers: list[str] = []
    for n, line in enumerate(decoded_lines(path, enc)):
        if n >= _JSONL_HEADER_SAMPLE:
            break
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):  # (a line nested too deeply is no object either)
            continue
        if isinstance(obj, dict):
            headers.extend(k for k in obj if k not in headers)
    if not headers:
        raise DataError(f"{path}: no JSON object found in the first {_JSONL_HEADER_SAMPLE} lines")
    fr = FileReader(path, "jsonl", headers, "line", encoding=enc)
    fr._open = lambda selected: _jsonl_batches(path, enc, headers, selected)
    return fr


def _jsonl_batches(path: Path, enc: str, headers: list[str], selected: list[int]) -> Iterator[Batch]:
    import json

    rows: list[list[str]] = []
    lines: list[int] = []
    shape: dict[int, str] = {}
    for number, line in enumerate(decoded_lines(path, enc), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            obj = None
            shape[len(rows)] = f"not valid JSON ({exc.msg} at column {exc.colno})"
        except (ValueError, RecursionError) as exc:  # a number of over 4300 digits, nesting too deep
            obj = None
            shape[len(rows)] = (
                "not valid JSON ("
                + ("nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:80])
                + ")"
            )
        if obj is not None and not isinstance(obj, dict):
            shape[len(rows)] = "not a JSON object"
            obj = None
        cells = [_json_cell(obj.get(h)) if obj else None for h in headers]
        rows.append(["" if c is None else c for c in cells])
        lines.append(number)
        if len(rows) >= BATCH_ROWS:
            yield text_batch(rows, lines, selected, shape)
            rows, lines, shape = [], [], {}
    if rows:
        yield text_batch(rows, lines, selected, shape)


# --- CSV -------------------------------------------------------------------------------------------------


def detect_encoding(path: Path, sample: bytes) -> str:
    """UTF-8 (with or without BOM) if the bytes are valid UTF-8, else GB18030 if they are valid GB18030.

    Valid UTF-8 is a strong signal (random GBK text is almost never valid UTF-8), so it is tried first;
    GB18030 is a superset of GBK and GB2312. A UTF-16 byte order mark (Excel's "Unicode text" export) is
    honoured. Anything else is refused with the offending byte offsets. Statistical detection
    (charset-normalizer) is deliberately not used: on short GB18030 exports it guesses cp874, cp949 or
    big5, and a wrong guess would load mangled text, while strict decoding either succeeds exactly or fails.
    """
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    failures: dict[str, int] = {}
    for enc in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(enc)().decode(sample, final=False)
            return enc
        except UnicodeDecodeError as exc:
            failures[enc] = exc.start
    by_line = _line_encoding(sample)
    if by_line is not None:
        return by_line  # parts in each encoding (concatenated exports): read line by line
    at = failures["utf-8"]
    raise DataError(
        f"{path}: byte offset {at}: bytes {sample[at : at + 4]!r} are not UTF-8, and the file is not "
        f"GB18030 either (invalid from byte offset {failures['gb18030']}); not a text export in a "
        "supported encoding",
        hint="is it a binary file? if it is text in another encoding, give the encoding "
        "(encoding='big5', 'utf-16', ...)",
    )


def _line_encoding(sample: bytes) -> str | None:
    """The encoding of the first non-ASCII line when every line of `sample` is UTF-8 or GB18030, else None.

    The last line is left out when the sample may have cut it (a multi-byte character split in two)."""
    lines = sample.split(b"\n")
    if len(sample) >= _SNIFF_BYTES:
        lines.pop()
    first: str | None = None
    for line in lines:
        if line.isascii():
            continue
        for enc in ("utf-8", "gb18030"):
            try:
                line.decode(enc)
            except UnicodeDecodeError:
                continue
            first = first or enc
            break
        else:
            return None
    return first


def decoded_lines(path: Path, encoding: str) -> Iterator[str]:
    """The file's text in one encoding, line by line (keeping line ends), decoding incrementally so that a
    bad byte is reported with its absolute offset."""
    try:
        decoder = codecs.getincrementaldecoder(encoding)()
    except LookupError:
        raise DataError(
            f"unknown encoding {encoding!r}", hint="use utf-8, utf-8-sig, gbk or gb18030"
        ) from None
    offset = 0
    pending = ""
    with path.open("rb") as f:
        while True:
            chunk = f.read(_CHUNK_BYTES)
            buffered = decoder.getstate()[0]  # undecoded bytes from the previous chunk
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                at = offset - len(buffered) + exc.start
                raise _decode_error(path, encoding, exc, at, None) from None
            offset += len(chunk)
            if pending:
                text = pending + text
                pending = ""
            if not chunk:
                if text:
                    yield text
                return
            parts = text.split("\n")
            pending = parts.pop()
            if len(pending) > MAX_FIELD_BYTES:
                raise DataError(f"{path}: a line longer than {MAX_FIELD_BYTES >> 20} MiB; not a CSV export")
            for part in parts:
                yield part + "\n"


_NAMES = {"utf-8": "UTF-8", "gb18030": "GB18030"}


def _mixed_lines(path: Path, notes: list[str] | None = None) -> Iterator[str]:
    """The text of a file whose encoding was detected, each line in its own encoding: UTF-8 when the line is
    valid UTF-8, else GB18030 (the order of `detect_encoding`).

    Concatenated exports may switch part-way (a GB18030 export followed by a UTF-8 one); reading line by
    line reads both parts right where one encoding for the whole file would turn one part into mojibake
    (UTF-8 Chinese is mostly valid GB18030). A byte order mark starting any line (a concatenated UTF-8-BOM
    file) is dropped. Lines are split on the byte \\n, which never occurs inside a UTF-8 or GB18030
    character. When the file holds non-ASCII lines of both encodings, a note naming the line ranges of each
    is appended to `notes` once the last line has been read.
    """
    runs: list[list[Any]] = []  # [encoding, first line, last line]; ASCII lines belong to the run they are in
    number = 0

    def decode(raw: bytes, start: int) -> str:
        """Line `number` (its bytes `raw`, from absolute offset `start`) as text."""
        if raw.startswith(codecs.BOM_UTF8):
            raw, start = raw[3:], start + 3
        if raw.isascii():
            return raw.decode("ascii")
        try:
            text, enc = raw.decode("utf-8"), "utf-8"
        except UnicodeDecodeError as not_utf8:
            try:
                text, enc = raw.decode("gb18030"), "gb18030"
            except UnicodeDecodeError as exc:
                at, switched = start + exc.start, start + not_utf8.start
                raise _decode_error(path, "gb18030", exc, at, switched, number) from None
        if not runs:
            runs.append([enc, 1, number])
        elif runs[-1][0] == enc:
            runs[-1][2] = number
        else:
            runs.append([enc, runs[-1][2] + 1, number])
        return text

    offset = 0  # absolute offset of `pending`
    pending = b""
    with path.open("rb") as f:
        while True:
            chunk = f.read(_CHUNK_BYTES)
            if not chunk:
                if pending:
                    number += 1
                    yield decode(pending, offset)
                break
            data = pending + chunk
            cut = data.rfind(b"\n") + 1
            pos = 0
            whole = _utf8_lines(data, cut)
            if whole is not None:
                # every line of the chunk is UTF-8 (or ASCII) and none starts with a byte order mark: what
                # `decode` gives line by line, without its three tests per line (a third of reading)
                last = next((k for k in range(len(whole) - 1, -1, -1) if not whole[k].isascii()), None)
                if last is not None:
                    if runs and runs[-1][0] == "utf-8":
                        runs[-1][2] = number + last + 1
                    else:
                        runs.append(["utf-8", runs[-1][2] + 1 if runs else 1, number + last + 1])
                for line in whole:
                    number += 1
                    yield line
                pos = cut
            while pos < cut:
                end = data.index(b"\n", pos) + 1
                number += 1
                yield decode(data[pos:end], offset + pos)
                pos = end
            pending = data[cut:]
            offset += cut
            if len(pending) > MAX_FIELD_BYTES:
                raise DataError(f"{path}: a line longer than {MAX_FIELD_BYTES >> 20} MiB; not a CSV export")
    if len(runs) > 1 and notes is not None:
        runs[-1][2] = number
        parts = ", ".join(f"{_span(a, b)} {_NAMES[e]}" for e, a, b in runs)
        notes.append(
            f"{path}: the encoding changes part-way ({parts}); each part was read in its own encoding "
            "(concatenated exports?)"
        )


def _utf8_lines(data: bytes, cut: int) -> list[str] | None:
    """The lines of `data[:cut]` (each with its \\n) when all of it is UTF-8 and no line starts with a byte
    order mark; else None (each line is then decoded alone). Splitting on \\n never cuts a UTF-8
    character, so each line is what decoding it alone gives."""
    region = data[:cut]
    if not region or codecs.BOM_UTF8 in region:
        return None
    try:
        text = region.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = text.split("\n")
    lines.pop()  # (the text ends with \n: nothing after it)
    return [line + "\n" for line in lines]


def _span(first: int, last: int) -> str:
    return f"line {first}" if first == last else f"lines {first}-{last}"


def _decode_error(
    path: Path,
    encoding: str,
    exc: UnicodeDecodeError,
    at: int,
    switched_at: int | None,
    line: int | None = None,
) -> DataError:
    """The error for an undecodable byte at absolute offset `at` (on physical line `line`, when known)."""
    after = (
        f" (the file is not UTF-8 from byte offset {switched_at}, so it was read as {encoding})"
        if switched_at is not None
        else ""
    )
    where = f" (line {line})" if line is not None else ""
    return DataError(
        f"{path}: byte offset {at}: invalid {encoding} byte sequence "
        f"{exc.object[exc.start : exc.start + 4]!r}{after}{where}",
        hint="the file is not text, or not in a supported encoding; if it is in another one, give "
        "the encoding (encoding='big5', ...)",
    )


def _sniff_delimiter(text: str) -> str:
    """The delimiter DuckDB-style sniffing would pick among , tab ; | (most consistent per line)."""
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    if not lines:
        return ","
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=",\t;|").delimiter
    except csv.Error:
        counts = {d: lines[0].count(d) for d in ",\t;|"}
        return max(counts, key=lambda d: counts[d]) if max(counts.values()) else ","


def head_bytes(path: Path) -> bytes:
    """The first MiB of a file, for detecting its encoding and delimiter."""
    try:
        with path.open("rb") as f:
            return f.read(_SNIFF_BYTES)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None


def _open_csv(path: Path, encoding: str | None) -> FileReader:
    sample = head_bytes(path)
    enc = encoding or detect_encoding(path, sample)
    if enc.lower().replace("_", "-") in ("utf-8", "utf8") and sample.startswith(codecs.BOM_UTF8):
        enc = "utf-8-sig"
    try:
        head_text = codecs.getincrementaldecoder(enc)(errors="replace").decode(sample, final=False)
    except LookupError:
        raise DataError(f"unknown encoding {enc!r}", hint="use utf-8, utf-8-sig, gbk or gb18030") from None
    if "\x00" in head_text:
        # In UTF-8 and GB18030 a 0 byte is always the NUL character; in UTF-16 count code units.
        at = sample.find(b"\x00")
        if "16" in enc:
            bom = 2 if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else 0
            at = bom + len(head_text[: head_text.index("\x00")].encode("utf-16-le"))
        raise DataError(
            f"{path}: byte offset {at}: a NUL byte; not a text export", hint="is it a binary file?"
        )
    delimiter = _sniff_delimiter(head_text)
    csv.field_size_limit(MAX_FIELD_BYTES)
    notes: list[str] = []
    # A detected (not a given) UTF-8 or GB18030 is read line by line, each line in its own encoding: a first
    # MiB of ASCII may be followed by GBK names, and concatenated exports may switch encoding part-way.
    mixed = encoding is None and enc in ("utf-8", "utf-8-sig", "gb18030")
    lines = _mixed_lines(path, notes) if mixed else decoded_lines(path, enc)
    reader = csv.reader(lines, delimiter=delimiter, strict=False)
    headers: list[str] | None = None
    header_line = 0
    try:
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            headers = [c.strip().lstrip("\ufeff").strip() for c in row]
            header_line = reader.line_num
            break
    except csv.Error as exc:
        raise DataError(f"{path}: line {reader.line_num}: {exc}") from None
    if headers is None:
        raise DataError(f"{path}: the file is empty (no header row)")
    fr = FileReader(path, "csv", headers, "line", encoding=enc, delimiter=delimiter, notes=notes)
    fr._open = lambda selected: _csv_batches(path, reader, headers, header_line, selected)
    return fr


def _csv_batches(
    path: Path, reader: Iterator[list[str]], headers: list[str], header_line: int, selected: list[int]
) -> Iterator[Batch]:
    width = len(headers)
    norm_header = [_plain(h) for h in headers]
    first_header = norm_header[0]
    counted = hasattr(reader, "line_num")  # (csv.reader counts physical lines; read it per row directly)
    rows: list[list[str]] = []
    lines: list[int] = []
    shape: dict[int, str] = {}
    prev_line = header_line
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise DataError(f"{path}: line {_line_num(reader)}: {exc}") from None
        start_line = prev_line + 1
        prev_line = reader.line_num if counted else 0  # type: ignore[attr-defined]
        if not row or (not row[0].strip() and all(not c.strip() for c in row)):
            continue  # blank rows, trailing ones included
        if (
            len(row) == width
            and first_header in row[0]  # (a cheap test first: the plain cell holds it)
            and _plain(row[0]) == first_header
            and [_plain(c) for c in row] == norm_header
        ):
            continue  # a header repeated mid-file (with its byte order mark or not): concatenated exports
        if len(row) != width:
            # Keep the row so that it is rejected with its line number rather than silently dropped.
            shape[len(rows)] = f"has {len(row)} fields, the header has {width}"
            # a row far wider than the header is kept only as far as it can matter (bounded memory)
            row = row[: width + 1]
        rows.append(row)
        lines.append(start_line)
        if len(rows) >= BATCH_ROWS:
            yield text_batch(rows, lines, selected, shape)
            rows, lines, shape = [], [], {}
    if rows:
        yield text_batch(rows, lines, selected, shape)


def _plain(cell: str) -> str:
    """A header cell without surrounding spaces or a byte order mark."""
    return cell.strip().lstrip("\ufeff").strip()


def _line_num(reader: Iterator[list[str]]) -> int:
    """The csv reader's count of physical lines read so far."""
    return int(getattr(reader, "line_num", 0))


# --- Parquet ---------------------------------------------------------------------------------------------


def _open_parquet(path: Path) -> FileReader:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        headers = list(pf.schema_arrow.names)
    except Exception as exc:  # pyarrow raises many types for a damaged file
        raise DataError(f"{path}: not a readable Parquet file: {str(exc).splitlines()[0]}") from None
    fr = FileReader(
        path, "parquet", headers, "row", total_rows=pf.metadata.num_rows, arrow_schema=pf.schema_arrow
    )
    fr._open = lambda selected: _parquet_batches(path, pf, headers, selected)
    return fr


def _parquet_batches(
    path: Path, pf: pq.ParquetFile, headers: list[str], selected: list[int]
) -> Iterator[Batch]:
    """Record batches of the selected columns, in their stored types; rows are numbered from 1."""
    import pyarrow as pa

    names = [headers[i] for i in selected]
    first = 1
    try:
        for rb in pf.iter_batches(batch_size=BATCH_ROWS * 5, columns=names, use_threads=True):
            n = rb.num_rows
            lines = int_array(range(first, first + n))
            yield Batch({i: rb.column(k) for k, i in enumerate(selected)}, lines)
            first += n
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: damaged Parquet file: {str(exc).splitlines()[0]}") from None
