"""Writers: a `Document` (present/documents.py) as csv, json, jsonl or parquet; safe CSV; atomic files."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from chuanliu_cli.present.documents import Document

Format = Literal["table", "csv", "json", "jsonl", "parquet"]
DataFormat = Literal["csv", "json", "jsonl", "parquet"]
#: Formats that are bytes, not text: refused on a terminal, fine in a pipe or a file.
BINARY_FORMATS = frozenset({"parquet"})

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


def write_csv(stream: IO[str], rows: list[dict[str, Any]], columns: list[str]) -> None:
    """CSV with a header row; every cell formula-safe."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow([safe_cell(c) for c in columns])
    for row in rows:
        writer.writerow([safe_cell(row.get(c)) for c in columns])


def render(fmt: DataFormat, doc: Document) -> str | bytes:
    """One result as csv, json or jsonl text, or parquet bytes: the one writer of every command's data."""
    if fmt == "json":
        return json.dumps(doc.document, ensure_ascii=False, indent=2, default=str) + "\n"
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in doc.records)
    if fmt == "csv":
        buf = io.StringIO()
        write_csv(buf, doc.rows, doc.columns)
        return buf.getvalue()
    if fmt == "parquet":
        return parquet_bytes(doc)
    raise ValueError(fmt)


def parquet_bytes(doc: Document) -> bytes:
    """Parquet of the flat rows: the document's column types where it fixes them (stable across runs),
    else what pyarrow infers."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow_types = {"float": pa.float64(), "int": pa.int64(), "bool": pa.bool_(), "str": pa.string()}
    if not doc.types:
        table = pa.Table.from_pylist(doc.rows)
    else:
        arrays = []
        for c in doc.columns:
            values = [r.get(c) for r in doc.rows]
            kind = doc.types.get(c)
            if kind == "str":
                values = [None if v is None else str(v) for v in values]
            arrays.append(pa.array(values, arrow_types[kind] if kind else None))
        table = pa.Table.from_arrays(arrays, names=doc.columns)
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf, compression="zstd")
    return bytes(buf.getvalue().to_pybytes())


def check_writable(path: Path) -> None:
    """Fail early, with a usage error, when `-o FILE` cannot be written (no directory, a directory)."""
    from chuanliu_cli.errors import UsageError

    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise UsageError(f"cannot write {path}: directory {directory} does not exist", hint="create it first")
    if path.is_dir():
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
        ".txt": "table",
    }.get(path.suffix.lower())


@contextlib.contextmanager
def atomic_write(path: Path, mode: Literal["w", "wb"] = "w") -> Iterator[IO[Any]]:
    """Write `path` through a temp file in the same directory, fsync, then rename: never half-written."""
    directory = path.parent if str(path.parent) else Path(".")
    check_writable(path)
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
