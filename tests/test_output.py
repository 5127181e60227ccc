"""Output files: formula-safe CSV cells and atomic writes that never leave a half-written file."""

from __future__ import annotations

from pathlib import Path

import pytest

from chuanliu_cli.present.writers import atomic_write, safe_cell, write_csv


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3+cmd", "'-2+3+cmd"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\tTAB", "'\tTAB"),
        ("\rCR", "'\rCR"),
        ("-5", "-5"),
        ("+3.5", "+3.5"),
        ("普通店铺", "普通店铺"),
        (-5, "-5"),
        (1.25, "1.25"),
        (None, ""),
        (True, "true"),
    ],
)
def test_safe_cell(value: object, expected: str) -> None:
    assert safe_cell(value) == expected


def test_csv_rows_are_formula_safe(tmp_path: Path) -> None:
    import csv
    import io

    buf = io.StringIO()
    write_csv(buf, [{"name": "=1+1", "grant": -3}], ["name", "grant"])
    assert list(csv.reader(io.StringIO(buf.getvalue()))) == [["name", "grant"], ["'=1+1", "-3"]]


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old complete content\n")
    with atomic_write(target) as f:
        f.write("new")
        assert target.read_text() == "old complete content\n"  # not visible until the rename
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_atomic_write_failure_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("{}")
    with pytest.raises(RuntimeError), atomic_write(target) as f:
        f.write("partial")
        raise RuntimeError("interrupted")
    assert target.read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
