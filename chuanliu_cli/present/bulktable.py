"""A table of many rows drawn as Rich draws it, without Rich drawing every row (issue #21).

Rich takes about half a millisecond a row: `score --scorecard promoter --format table` into a pipe took 98 s
for 187,120 promoters, `score` of 494,051 shops into a file 7 minutes. Rich stays the one drawer of
tables: it lays out the columns, the title, the header and the borders, wraps every cell too wide for its
column (Text.wrap) and draws every row holding a cell this module does not measure as Rich does (a tab,
a line break, a control character, other spaces than U+0020, a trailing space). This module only pads a
cell that fits its column to the column's width (to the left or the right), cuts one word too long for it
with an ellipsis, and puts the row together between the borders Rich drew, with Rich's own cell-width
functions; a column at a time.

The column widths Rich chooses depend only on each column's largest minimum and largest maximum cell
width (Table._measure_column), so Rich lays out a small table of the rows holding those (and of the rows
it draws itself); the rest is drawn to the widths Rich chose. tests/test_bulktable.py checks the lines
against Rich's own drawing of the whole table, over generated tables (CJK, long words, spaces, narrow
consoles, tabs and line breaks) and the platform's lists were compared byte for byte.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console, JustifyMethod
    from rich.table import Table

#: Tables of more rows than this are drawn here; smaller ones by Rich alone.
BULK_ROWS = 2000
#: Rows drawn (and written) at a time.
_CHUNK = 10_000
#: A cell Rich may measure or wrap otherwise than this module does: whitespace other than a space, a
#: control character, a trailing space. Its row is drawn by Rich.
_ODD = re.compile(r"[^\S ]|[\x00-\x1f\x7f-\x9f]| $")


def print_table(
    console: Console, make: Callable[[], Table], columns: Sequence[Sequence[str]], bulk: int | None = None
) -> None:
    """Print a table made by `make()` (its columns, no rows) holding `columns` (each column's text cells,
    row by row) as `console.print` prints it: by Rich alone up to `bulk` rows (default BULK_ROWS), else
    the lines of `bulk_lines`."""
    height = len(columns[0]) if columns else 0
    lines = bulk_lines(console, make, columns) if height > (BULK_ROWS if bulk is None else bulk) else None
    if lines is None:
        console.print(_filled(make, _rows(columns, range(height))))
        return
    out, chunk = console.file, []
    for line in lines:
        chunk.append(line)
        if len(chunk) == _CHUNK:
            out.write("\n".join(chunk) + "\n")
            chunk.clear()
    if chunk:
        out.write("\n".join(chunk) + "\n")
    out.flush()


def _rows(columns: Sequence[Sequence[str]], which: Iterable[int]) -> list[list[str]]:
    return [[column[i] for column in columns] for i in which]


def _filled(make: Callable[[], Table], rows: Sequence[Sequence[str]]) -> Table:
    from rich.text import Text

    table = make()
    for row in rows:
        table.add_row(*(Text(c) for c in row))
    return table


def _render(console: Console, table: Table) -> list[str]:
    with console.capture() as captured:
        console.print(table)
    return captured.get().split("\n")[:-1]


def _longest_word(text: str) -> int:
    """A one-line cell's minimum width as Rich measures Text: its longest word."""
    from rich.cells import cell_len

    return max((cell_len(word) for word in text.split()), default=cell_len(text))


def bulk_lines(
    console: Console, make: Callable[[], Table], columns: Sequence[Sequence[str]]
) -> Iterator[str] | None:
    """The lines `console.print` gives for the table of `columns`, drawn as they are read (a few thousand
    rows at a time), or None where this module cannot tell them (a console that records or styles the
    body, columns narrower than two cells): Rich then draws."""
    from rich.cells import cell_len, set_cell_size
    from rich.text import Text

    height = len(columns[0]) if columns else 0
    shape = make()  # (its settings and columns, asked once)
    if console.record or not height or not _plain(shape):
        return None
    # (an ASCII cell is as wide as it is long; its control characters make it odd, drawn by Rich)
    sizes = [[len(t) if t.isascii() else cell_len(t) for t in column] for column in columns]
    odd: set[int] = set()  # the rows Rich draws itself
    for column in columns:
        if any(map(_ODD.search, column)):
            odd.update(i for i, cell in enumerate(column) if _ODD.search(cell))
    # The rows Rich lays out: per column the widest cell (its largest maximum) and the cell of the largest
    # minimum: the widest without a space, or the one with the longest word (Text.__rich_measure__); and
    # the odd rows, which Rich measures itself.
    laid: dict[int, None] = {}
    kept = [i for i in range(height) if i not in odd]
    for column, size in zip(columns, sizes, strict=True):
        whole = [i for i in kept if " " not in column[i]]
        spaced = [i for i in kept if " " in column[i]]
        for group in (kept, whole):
            if group:
                laid[max(group, key=size.__getitem__)] = None
        if spaced:  # (measured once per distinct text: a column of gate lists holds few)
            distinct = {column[i]: i for i in spaced}
            words = {text: _longest_word(text) for text in distinct}
            laid[distinct[max(words, key=words.__getitem__)]] = None
    laid.update(dict.fromkeys(sorted(odd)))
    laid_out = _render(console, _filled(make, _rows(columns, sorted(laid))))
    widths = _widths(laid_out[-1] if laid_out else "", len(columns))
    if widths is None or min(widths) < 2:
        return None

    def fixed(body: Sequence[Sequence[str]], show_lines: bool = False) -> list[str]:
        table = _filled(make, body)
        table.show_lines = show_lines
        for column, width in zip(table.columns, widths, strict=True):
            column.width = width
        return _render(console, table)

    blank = [""] * len(columns)
    frame = fixed([blank])
    if frame[-1] != laid_out[-1] or any("\x1b" in line for line in frame[-2:]):
        return None
    head, empty, bottom = frame[:-2], frame[-2], frame[-1]
    edges = _edges(empty, widths)
    if edges is None:
        return None
    justify: list[JustifyMethod] = [c.justify for c in shape.columns]

    @functools.cache
    def wrapped(text: str, width: int, how: JustifyMethod) -> list[str]:
        """A cell too wide for its column, as Rich draws it: one word cut with `…`, else wrapped at its
        spaces by Rich's own Text.wrap, each line made the column's width (once per distinct text)."""
        if " " not in text:
            return [set_cell_size(text, width - 1) + "…"]
        return [
            set_cell_size(line.plain, width)
            for line in Text(text).wrap(console, width, justify=how, overflow="ellipsis")
        ]

    ruled = _rows_drawn_by_rich(fixed, sorted(odd), columns, len(head), empty)
    if ruled is None:
        return None
    line = edges[0] + "".join(" {} " + edge.replace("{", "{{").replace("}", "}}") for edge in edges[1:])
    blanks = [" " * width for width in widths]

    def drawn(start: int, stop: int) -> Iterator[str]:
        """The lines of rows start..stop: each column's cells padded, then each row put together."""
        cells: list[list[str]] = []  # per column, each row's first line
        more: dict[int, dict[int, list[str]]] = {}  # row → column → its lines, for rows of several lines
        for j, (column, size) in enumerate(zip(columns, sizes, strict=True)):
            width, right = widths[j], justify[j] == "right"
            padded = [
                (" " * (width - n) + text if right else text + " " * (width - n)) if n <= width else ""
                for text, n in zip(column[start:stop], size[start:stop], strict=True)
            ]
            for k, n in enumerate(size[start:stop]):
                if n > width and start + k not in odd:
                    lines = wrapped(column[start + k], width, justify[j])
                    padded[k] = lines[0]
                    if len(lines) > 1:
                        more.setdefault(start + k, {})[j] = lines
            cells.append(padded)
        for i, row in enumerate(zip(*cells, strict=True), start):
            if i in odd:
                yield from ruled[i]
            elif i in more:
                several = more[i]
                for k in range(max(len(lines) for lines in several.values())):
                    yield line.format(
                        *(
                            (several[j][k] if k < len(several[j]) else blanks[j])
                            if j in several
                            else (row[j] if k == 0 else blanks[j])
                            for j in range(len(columns))
                        )
                    )
            else:
                yield line.format(*row)

    def every_line() -> Iterator[str]:
        yield from head
        for start in range(0, height, _CHUNK):
            yield from drawn(start, min(start + _CHUNK, height))
        yield bottom

    return every_line()


def _rows_drawn_by_rich(
    fixed: Callable[..., list[str]], which: list[int], columns: Sequence[Sequence[str]], head: int, empty: str
) -> dict[int, list[str]] | None:
    """The lines of the rows `which`, drawn by Rich in one table of the widths chosen (`fixed`), told
    apart by the rule Rich draws between rows with show_lines; None if they cannot be told apart."""
    if not which:
        return {}
    blank = [""] * len(columns)
    ruled = fixed([blank, blank], show_lines=True)
    if ruled[head] != empty:
        return None
    rule = ruled[head + 1]
    groups: list[list[str]] = [[]]
    for line in fixed(_rows(columns, which), show_lines=True)[head:-1]:
        if line == rule:
            groups.append([])
        else:
            groups[-1].append(line)
    if len(groups) != len(which) or not all(groups):
        return None
    return dict(zip(which, groups, strict=True))


def _plain(table: Table) -> bool:
    """Whether `table` is laid out as this module assumes: Rich's defaults for what shapes a body row
    (the default box, padding of one cell either side, no row styles, leading or lines between rows, no
    caption, footer or expansion; columns that wrap with an ellipsis, top-aligned, unstyled, sized by
    their cells). Anything else is drawn by Rich alone."""
    from rich import box

    defaults = (
        table.box is box.HEAVY_HEAD
        and table.padding == (0, 1, 0, 1)
        and table.pad_edge
        and table.show_edge
        and not (table.show_lines or table.show_footer or table.expand or table.collapse_padding)
        and not (table.row_styles or table.leading or table.caption or table.highlight)
        and table.style in ("", "none")
        and table.width is None
        and table.min_width is None
    )
    return defaults and all(
        c.overflow == "ellipsis"
        and c.vertical == "top"
        and not (c.no_wrap or c.style or c.highlight or c.ratio)
        and c.width is None
        and c.min_width is None
        and c.max_width is None
        for c in table.columns
    )


def _widths(bottom: str, columns: int) -> list[int] | None:
    """The columns' content widths from the table's bottom border (edge, runs of one character split by
    junctions, edge; each run is a column and its padding of one cell on either side)."""
    if len(bottom) < 3 or "\x1b" in bottom:
        return None
    line = bottom[1:-1]
    fill = line[0] if line else ""
    runs = [len(run) for run in re.split(f"[^{re.escape(fill)}]", line)] if fill else []
    if len(runs) != columns or any(run < 2 for run in runs):
        return None
    return [run - 2 for run in runs]


def _edges(empty: str, widths: list[int]) -> list[str] | None:
    """The left edge, each column's right separator and the right edge of a body row, from a row of empty
    cells (every character one cell wide); None when the row is not laid out as expected."""
    edges = [empty[0]] if empty else []
    at = 1
    for width in widths:
        if empty[at : at + width + 2] != " " * (width + 2):
            return None
        at += width + 2
        if at >= len(empty):
            return None
        edges.append(empty[at])
        at += 1
    return edges if at == len(empty) else None
