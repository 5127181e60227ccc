"""present/bulktable.py: a table of many rows, line for line as Rich draws it."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table
from rich.text import Text

from chuanliu_cli.present import bulktable
from chuanliu_cli.present.bulktable import bulk_lines, print_table

# ASCII, CJK (two cells), the ellipsis, a tick, spaces, and what Rich measures or wraps otherwise
LETTERS = "abcXYZ019-.,和语数码家电旗舰店…✓✗ "
ODD = "\t\n\u3000\x07"


def _make(heads: Sequence[str], right: Sequence[bool], title: str | None) -> Table:
    table = Table(title=title, title_justify="left")
    for head, is_right in zip(heads, right, strict=True):
        table.add_column(head, justify="right" if is_right else "left")
    return table


def _rich(
    console_width: int, heads: Sequence[str], right: Sequence[bool], title: str | None, rows: list[list[str]]
) -> str:
    console = Console(file=io.StringIO(), width=console_width, color_system=None, highlight=False)
    table = _make(heads, right, title)
    for row in rows:
        table.add_row(*(Text(c) for c in row))
    console.print(table)
    return console.file.getvalue()  # type: ignore[attr-defined]


def _bulk_in_chunks(*table: object) -> str:
    """_bulk, drawing three rows at a time (so that rows of several lines and rows Rich draws fall on
    either side of a chunk's edge)."""
    with patch.object(bulktable, "_CHUNK", 3):
        return _bulk(*table)  # type: ignore[arg-type]


def _bulk(
    console_width: int, heads: Sequence[str], right: Sequence[bool], title: str | None, rows: list[list[str]]
) -> str:
    out = io.StringIO()
    console = Console(file=out, width=console_width, color_system=None, highlight=False)
    print_table(console, lambda: _make(heads, right, title), _columns(rows, len(heads)), bulk=0)
    return out.getvalue()


def _columns(rows: list[list[str]], width: int) -> list[list[str]]:
    return [[row[j] for row in rows] for j in range(width)]


cells = st.text(alphabet=LETTERS, max_size=30)
odd_cells = st.text(alphabet=LETTERS + ODD, max_size=12)


@st.composite
def tables(
    draw: st.DrawFn, odd: bool = False
) -> tuple[int, list[str], list[bool], str | None, list[list[str]]]:
    columns = draw(st.integers(min_value=1, max_value=7))
    heads = draw(
        st.lists(st.text(alphabet=LETTERS, min_size=1, max_size=20), min_size=columns, max_size=columns)
    )
    right = draw(st.lists(st.booleans(), min_size=columns, max_size=columns))
    title = draw(st.one_of(st.none(), st.text(alphabet=LETTERS, min_size=1, max_size=40)))
    cell = st.one_of(cells, odd_cells) if odd else cells
    rows = draw(st.lists(st.lists(cell, min_size=columns, max_size=columns), min_size=1, max_size=25))
    width = draw(st.integers(min_value=20, max_value=200))
    return width, heads, right, title, rows


@settings(max_examples=400, deadline=None)
@given(tables())
def test_the_lines_are_riches_for_any_table(
    table: tuple[int, list[str], list[bool], str | None, list[list[str]]],
) -> None:
    """Every generated table (narrow consoles that squeeze the columns, CJK cut with an ellipsis, words
    wrapped at spaces): the bulk lines are Rich's, byte for byte; and they are drawn here whenever every
    column is two cells wide or more (narrower, Rich draws)."""
    drawn = _rich(*table)
    assert _bulk(*table) == drawn
    assert _bulk_in_chunks(*table) == drawn
    width, heads, right, title, rows = table
    bottom = drawn.splitlines()[-1]
    runs = bottom[1:-1].replace("┴", " ").split(" ")
    console = Console(file=io.StringIO(), width=width, color_system=None, highlight=False)
    made = bulk_lines(console, lambda: _make(heads, right, title), _columns(rows, len(heads)))
    assert (made is not None) == all(len(run) >= 4 for run in runs)


@settings(max_examples=200, deadline=None)
@given(tables(odd=True))
def test_cells_rich_measures_otherwise_are_left_to_rich(
    table: tuple[int, list[str], list[bool], str | None, list[list[str]]],
) -> None:
    """Tabs, line breaks, ideographic spaces and control characters: Rich lays those rows out itself."""
    drawn = _rich(*table)
    assert _bulk(*table) == drawn
    assert _bulk_in_chunks(*table) == drawn


def test_a_large_table_is_drawn_from_a_few_rows_laid_out_by_rich() -> None:
    """5,000 rows: the same text as Rich's, and Rich measured and drew only the rows that set the widths."""
    rows = [
        [
            str(i),
            f"ks{i:07d}",
            "和语数码家电旗舰店" * (i % 3),
            f"{i * 1.5:,.2f}",
            "✓" if i % 2 else "✗ G1, G2",
        ]
        for i in range(5000)
    ]
    rows[1234][2] = "a name with spaces that Rich wraps onto more lines than one, in a narrow column"
    heads, right = ["rank", "shop_id", "name", "total", "eligible"], [True, False, False, True, False]
    made: list[int] = []

    def make() -> Table:
        made.append(1)
        return _make(heads, right, "merchants · 2023-05")

    console = Console(file=io.StringIO(), width=80, color_system=None, highlight=False)
    lines = bulk_lines(console, make, _columns(rows, len(heads)))
    assert lines is not None
    assert "\n".join(lines) + "\n" == _rich(80, heads, right, "merchants · 2023-05", rows)
    assert len(made) <= 6  # the layout, the frame, the rule, the wrapped row, the justification


def test_a_console_that_records_is_left_to_rich() -> None:
    console = Console(file=io.StringIO(), width=80, record=True, color_system=None)
    assert bulk_lines(console, lambda: _make(["a"], [False], None), [["x"] * 10]) is None


def test_score_and_eligible_tables_are_the_same_drawn_in_bulk(
    invoke: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The sample's tables as the commands draw them (CJK names, ineligible reasons that wrap, a file's
    160 columns and a pipe's 140): every row drawn in bulk gives Rich's bytes."""
    repo = Path(__file__).resolve().parent.parent
    commands = [
        ["score", "--month", "2023-05", "--data", str(repo / "sample_data"), "--format", "table"],
        ["eligible", "--month", "2023-05", "--data", str(repo / "sample_data"), "--all", "--format", "table"],
        ["score", "--month", "2023-05", "--scorecard", "promoter", "--data", str(repo / "sample_data")],
    ]
    for n, args in enumerate(commands):
        drawn = {}
        for threshold in (10**9, 0):
            monkeypatch.setattr(bulktable, "BULK_ROWS", threshold)
            out = tmp_path / f"t{n}-{threshold}.txt"
            result = invoke(*args, "-o", str(out))
            assert result.exit_code == 0, result.output
            drawn[threshold] = out.read_text(encoding="utf-8")
            piped = invoke(*args, "--format", "table")
            assert piped.exit_code == 0, piped.output
            drawn[-threshold - 1] = piped.stdout
        assert drawn[0] == drawn[10**9] and drawn[-1] == drawn[-(10**9) - 1]
        assert "┃" in drawn[0] and len(drawn[0].splitlines()) > 40


def test_a_closed_pipe_ends_a_bulk_table_quietly_with_exit_0(tmp_path: Path) -> None:
    """`score --format table | head`, every row drawn here (BULK_ROWS 0) into a pipe already closed (the
    first write of the table fails): exit 0, no error."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    script = (
        "import os, sys\n"
        "read, write = os.pipe()\n"
        "os.close(read)\n"
        "os.dup2(write, 1)\n"
        "from chuanliu_cli.present import bulktable\n"
        "bulktable.BULK_ROWS = 0\n"
        "drawn = bulktable.bulk_lines\n"
        "def counted(*args):\n"
        "    sys.stderr.write('bulk\\n')\n"
        "    return drawn(*args)\n"
        "bulktable.bulk_lines = counted\n"
        "from chuanliu_cli.cli.app import main\n"
        f"sys.argv = ['chuanliu', 'score', '--month', '2023-05', '--data', {str(repo / 'sample_data')!r}, "
        "'--format', 'table']\n"
        "main()\n"
    )
    (tmp_path / "run.py").write_text(script, encoding="utf-8")
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(repo)}
    done = subprocess.run(
        [sys.executable, str(tmp_path / "run.py")], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["bulk"]  # drawn here, and nothing said about the pipe


def test_a_styled_console_gets_riches_escape_codes() -> None:
    """On a colour terminal the title and header carry Rich's styles: the bulk lines keep them as drawn."""
    rows = [
        [str(i), f"ks{i:07d}", "和语数码家电旗舰店" * (i % 3), "✓" if i % 2 else "✗ G1, G2"]
        for i in range(300)
    ]
    heads, right = ["rank", "shop_id", "name", "eligible"], [True, False, False, False]

    def console() -> Console:
        return Console(file=io.StringIO(), width=60, force_terminal=True, color_system="truecolor")

    rich = console()
    table = _make(heads, right, "merchants")
    for row in rows:
        table.add_row(*(Text(c) for c in row))
    rich.print(table)
    bulk = console()
    print_table(bulk, lambda: _make(heads, right, "merchants"), _columns(rows, len(heads)), bulk=0)
    drawn = rich.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b[" in drawn and bulk.file.getvalue() == drawn  # type: ignore[attr-defined]
    made = bulk_lines(console(), lambda: _make(heads, right, "merchants"), _columns(rows, len(heads)))
    assert made is not None  # drawn in bulk, not left to Rich


@pytest.mark.parametrize(
    "change",
    ["show_lines", "row_styles", "leading", "caption", "no_wrap", "fold", "max_width", "padding", "box"],
)
def test_a_table_not_laid_out_as_assumed_is_left_to_rich(change: str) -> None:
    """Rows between lines, striped rows, a caption, columns that do not wrap or fold or have a maximum
    width, other padding: bulk_lines declines (Rich draws it, as the property tests cannot cover every
    setting)."""
    from rich import box
    from rich.table import Column

    def make() -> Table:
        table = Table(title="t", title_justify="left")
        table.add_column("aa")
        table.add_column("bb", justify="right")
        if change in ("show_lines", "caption"):
            setattr(table, change, True if change == "show_lines" else "a caption")
        elif change == "row_styles":
            table.row_styles = ["dim", ""]
        elif change == "leading":
            table.leading = 1
        elif change == "padding":
            table.padding = (0, 2)
        elif change == "box":
            table.box = box.SIMPLE
        else:
            column: Column = table.columns[0]
            if change == "no_wrap":
                column.no_wrap = True
            elif change == "fold":
                column.overflow = "fold"
            else:
                column.max_width = 5
        return table

    console = Console(file=io.StringIO(), width=80, color_system=None)
    columns = [["x y z"] * 5, ["123"] * 5]
    assert bulk_lines(console, make, columns) is None
    assert bulk_lines(console, lambda: _make(["aa", "bb"], [False, True], "t"), columns) is not None


def test_a_recorded_runs_table_is_the_same_drawn_in_bulk(
    invoke: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`runs --id N`, every entity of a recorded run: drawn in bulk, Rich's bytes."""
    repo = Path(__file__).resolve().parent.parent
    db = str(tmp_path / "runs.duckdb")
    assert invoke("-q", "--db", db, "load", "--dir", str(repo / "sample_data")).exit_code == 0
    recorded = invoke(
        "-q", "--db", db, "eligible", "--month", "2023-05", "--format", "csv", "-o", str(tmp_path / "l.csv")
    )
    assert recorded.exit_code == 0, recorded.output
    drawn, made = {}, []
    original = bulktable.bulk_lines

    def spied(*args: Any) -> Any:
        made.append(original(*args))
        return made[-1]

    monkeypatch.setattr(bulktable, "bulk_lines", spied)
    for threshold in (10**9, 0):
        monkeypatch.setattr(bulktable, "BULK_ROWS", threshold)
        result = invoke("--db", db, "runs", "--id", "1")
        assert result.exit_code == 0, result.output
        drawn[threshold] = result.stdout
    assert drawn[0] == drawn[10**9] and "ks700055" in drawn[0]
    assert len(made) == 1 and made[0] is not None  # the second was drawn in bulk
