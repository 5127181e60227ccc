"""Readers turn an export file (CSV, Parquet, XLSX) into batches of text cells with their line numbers."""

from __future__ import annotations

import codecs
import csv
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from chuanliu_cli.errors import DataError
from chuanliu_cli.ingest.formats.base import Batch, FileFormat, FileReader, text_batch

if TYPE_CHECKING:
    import pyarrow.parquet as pq

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
    if suffix == ".parquet":
        return "parquet"
    if suffix in (".xlsx", ".xlsm"):
        return "xlsx"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return "csv"


def open_file(path: Path, encoding: str | None = None, sheet: str | None = None) -> list[FileReader]:
    """Open an export file: one reader for CSV/Parquet, one per sheet for XLSX."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a file", hint="use `load --dir` for a directory")
    fmt = detect_format(path)
    if fmt == "parquet":
        return [_open_parquet(path)]
    if fmt == "xlsx":
        from chuanliu_cli.ingest.formats.xlsx import open_xlsx

        return open_xlsx(path, sheet)
    if fmt == "jsonl":
        return [_open_jsonl(path, encoding)]
    return [_open_csv(path, encoding)]


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

    sample = _head(path)
    enc = encoding or detect_encoding(path, sample)
    headers: list[str] = []
    for n, line in enumerate(_decoded_lines(path, enc)):
        if n >= _JSONL_HEADER_SAMPLE:
            break
        try:
            obj = json.loads(line)
        except ValueError:
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
    for number, line in enumerate(_decoded_lines(path, enc), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            obj = None
            shape[len(rows)] = f"not valid JSON ({exc.msg} at column {exc.colno})"
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
    at = failures["utf-8"]
    raise DataError(
        f"{path}: byte offset {at}: bytes {sample[at : at + 4]!r} are not UTF-8, and the file is not "
        f"GB18030 either (invalid from byte offset {failures['gb18030']}); not a text export in a "
        "supported encoding",
        hint="is it a binary file? if it is text in another encoding, pass --encoding (e.g. big5, utf-16)",
    )


def _decoded_lines(path: Path, encoding: str, fallback: str | None = None) -> Iterator[str]:
    """The file's text, line by line (keeping line ends), decoding incrementally so that a bad byte is
    reported with its absolute offset.

    `fallback` is the encoding to switch to when the file turns out not to be `encoding` after a pure
    ASCII start: detection reads only the first MiB, and an export whose first MiB is ASCII (ids, times,
    amounts) may hold its first GBK name later. ASCII decodes the same in both, so the switch is exact and
    needs no second pass.
    """
    try:
        decoder = codecs.getincrementaldecoder(encoding)()
    except LookupError:
        raise DataError(
            f"unknown encoding {encoding!r}", hint="use utf-8, utf-8-sig, gbk or gb18030"
        ) from None
    offset = 0
    pending = ""
    ascii_so_far = fallback is not None  # every character decoded so far is ASCII
    switched_at: int | None = None
    with path.open("rb") as f:
        while True:
            chunk = f.read(_CHUNK_BYTES)
            buffered = decoder.getstate()[0]  # undecoded bytes from the previous chunk
            data_start = offset - len(buffered)  # absolute offset of buffered + chunk
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                data = buffered + chunk
                if fallback is None or not ascii_so_far or not data[: exc.start].isascii():
                    raise _decode_error(path, encoding, exc, data_start + exc.start, switched_at) from None
                # Everything before the bad byte was ASCII: carry on in the fallback from that chunk.
                switched_at = data_start + exc.start
                encoding, fallback = fallback, None
                decoder = codecs.getincrementaldecoder(encoding)()
                try:
                    text = decoder.decode(data, final=not chunk)
                except UnicodeDecodeError as again:
                    at = data_start + again.start
                    raise _decode_error(path, encoding, again, at, switched_at) from None
            ascii_so_far = ascii_so_far and text.isascii()
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
            for p in parts:
                yield p + "\n"


def _decode_error(
    path: Path, encoding: str, exc: UnicodeDecodeError, at: int, switched_at: int | None
) -> DataError:
    """The error for an undecodable byte at absolute offset `at`."""
    after = (
        f" (the file is not UTF-8 from byte offset {switched_at}, so it was read as {encoding})"
        if switched_at is not None
        else ""
    )
    return DataError(
        f"{path}: byte offset {at}: invalid {encoding} byte sequence "
        f"{exc.object[exc.start : exc.start + 4]!r}{after}",
        hint="the file mixes encodings or is not text; pass --encoding if it is another one",
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


def _head(path: Path) -> bytes:
    """The first MiB of a file, for detecting its encoding and delimiter."""
    try:
        with path.open("rb") as f:
            return f.read(_SNIFF_BYTES)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None


def _open_csv(path: Path, encoding: str | None) -> FileReader:
    sample = _head(path)
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
    # Only a detected (not a --encoding) UTF-8 whose first MiB is ASCII may turn out to be GB18030 later.
    fallback = "gb18030" if encoding is None and enc == "utf-8" and sample.isascii() else None
    reader = csv.reader(_decoded_lines(path, enc, fallback), delimiter=delimiter, strict=False)
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
    fr = FileReader(path, "csv", headers, "line", encoding=enc, delimiter=delimiter)
    fr._open = lambda selected: _csv_batches(path, reader, headers, header_line, selected)
    return fr


def _csv_batches(
    path: Path, reader: Iterator[list[str]], headers: list[str], header_line: int, selected: list[int]
) -> Iterator[Batch]:
    width = len(headers)
    norm_header = [h.strip() for h in headers]
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
        prev_line = _line_num(reader)
        if not row or all(not c.strip() for c in row):
            continue  # blank rows, trailing ones included
        if len(row) == width and [c.strip() for c in row] == norm_header:
            continue  # a header repeated mid-file: concatenated exports
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
            lines = pa.array(range(first, first + n), type=pa.int64())
            yield Batch({i: rb.column(k) for k, i in enumerate(selected)}, lines)
            first += n
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: damaged Parquet file: {str(exc).splitlines()[0]}") from None
