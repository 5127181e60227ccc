"""HTML tables named .xls: what several merchant backends download as an "Excel" export.

Read with the standard library's html.parser: every `<table>` whose first non-blank row has two or more
cells is one reader (like a workbook's sheets), its first non-blank row the header; cells are their text
(entities decoded, surrounding spaces dropped), kept verbatim otherwise, so ids keep every digit. Such files
are small (a backend renders them whole), so a table is parsed in memory.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

from chuanliu_cli.errors import DataError
from chuanliu_cli.ingest.formats.base import Batch, FileReader, text_batch

# Markers of an HTML document among the first bytes (lower-cased, after a byte order mark and spaces).
_HTML_STARTS = (b"<!doctype html", b"<html", b"<table", b"<meta", b"<head", b"<body", b"<style", b"<!--")
_SNIFF = 4096


def looks_like_html(path: Path) -> bool:
    """Whether the file starts like an HTML document (a table saved as .xls), not CSV text."""
    try:
        with path.open("rb") as f:
            head = f.read(_SNIFF)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    head = head.removeprefix(codecs.BOM_UTF8).lstrip().lower()
    if head.startswith(b"<?xml"):
        return b"<html" in head or b"<table" in head
    return head.startswith(_HTML_STARTS) and (b"<table" in head or b"<html" in head)


class _Tables(HTMLParser):
    """Collects the rows of every table: a list of tables, each a list of rows of cell texts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self._stack: list[list[list[str]]] = []  # nested tables: the innermost is being filled
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._span = 1

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._stack.append([])
        elif tag == "tr" and self._stack:
            self._end_row()
            self._row = []
        elif tag in ("td", "th") and self._stack:
            self._end_cell()
            if self._row is None:
                self._row = []
            self._cell = []
            span = dict(attrs).get("colspan")
            # a merged cell spans columns: the columns after it are empty, as in a spreadsheet
            self._span = int(span) if span and span.isdigit() and 1 < int(span) <= 100 else 1
        elif tag == "br" and self._cell is not None:
            self._cell.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self._end_cell()
        elif tag == "tr":
            self._end_row()
        elif tag == "table" and self._stack:
            self._end_row()
            self.tables.append(self._stack.pop())

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def _end_cell(self) -> None:
        if self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._row.extend([""] * (self._span - 1))
        self._cell = None

    def _end_row(self) -> None:
        self._end_cell()
        if self._row is not None and self._stack:
            self._stack[-1].append(self._row)
        self._row = None

    def close(self) -> None:
        super().close()
        while self._stack:
            self._end_row()
            self.tables.append(self._stack.pop())


def open_html(path: Path, encoding: str | None) -> list[FileReader]:
    """One reader per table with a header row (its first non-blank row, two cells or more)."""
    from chuanliu_cli.ingest.readers import detect_encoding

    raw = path.read_bytes()
    enc = encoding or detect_encoding(path, raw)
    try:
        text = raw.decode(enc)
    except (UnicodeDecodeError, LookupError) as exc:
        raise DataError(f"{path}: cannot read the HTML as {enc}: {exc}") from None
    parser = _Tables()
    parser.feed(text.lstrip("\ufeff"))
    parser.close()
    found = []
    for rows in parser.tables:
        numbered = [(n, r) for n, r in enumerate(rows, start=1) if any(c for c in r)]
        if not numbered or sum(1 for c in numbered[0][1] if c) < 2:
            continue
        found.append(numbered)
    if not found:
        raise DataError(
            f"{path}: an HTML file (named .xls) without a table with a header row",
            hint="export the data as CSV or XLSX",
        )
    readers = []
    for k, numbered in enumerate(found, start=1):
        headers = [c.lstrip("\ufeff").strip() for c in numbered[0][1]]
        while headers and not headers[-1]:
            headers.pop()
        name = f"table {k}" if len(found) > 1 else None
        fr = FileReader(path, "html", headers, "row", encoding=enc, sheet=name)
        fr._open = _opener(headers, numbered[1:])
        readers.append(fr)
    return readers


def _opener(headers: list[str], rows: list[tuple[int, list[str]]]) -> _Batches:
    return _Batches(headers, rows)


class _Batches:
    """The FileReader callback of one table (a class so that each reader binds its own rows)."""

    def __init__(self, headers: list[str], rows: list[tuple[int, list[str]]]) -> None:
        self.headers = headers
        self.rows = rows

    def __call__(self, selected: list[int]) -> Iterator[Batch]:
        width = len(self.headers)
        texts: list[list[str]] = []
        lines: list[int] = []
        shape: dict[int, str] = {}
        for number, row in self.rows:
            cells = list(row)
            while len(cells) > width and not cells[-1]:
                cells.pop()
            if [c.lstrip("\ufeff").strip() for c in cells] == self.headers:
                continue  # a header repeated in the table
            if len(cells) > width:
                shape[len(texts)] = f"has {len(cells)} cells, the header has {width}"
            texts.append(cells[: width + 1])
            lines.append(number)
        if texts:
            yield text_batch(texts, lines, selected, shape)
