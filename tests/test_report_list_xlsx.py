"""`report --list-out list.xlsx`: the full list beside the report as a workbook, the same cells as the csv."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import openpyxl

REPO = Path(__file__).resolve().parent.parent


def test_report_list_out_writes_a_workbook_with_the_csv_rows(
    tmp_path: Path, cli: Callable[..., object]
) -> None:
    args = [
        "report",
        "--data",
        str(REPO / "sample_data"),
        "--month",
        "2023-05",
        "-o",
        str(tmp_path / "r.html"),
    ]
    assert cli(*args, "--list-out", str(tmp_path / "list.xlsx")).exit_code == 0  # type: ignore[attr-defined]
    assert cli(*args, "--list-out", str(tmp_path / "list.csv")).exit_code == 0  # type: ignore[attr-defined]
    sheet = openpyxl.load_workbook(tmp_path / "list.xlsx", read_only=True)["data"]
    cells = [["" if v is None else v for v in row] for row in sheet.iter_rows(values_only=True)]
    with open(tmp_path / "list.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert len(cells) == len(rows) and cells[0] == rows[0]
    key = rows[0].index("shop_id")
    assert [r[key] for r in cells[1:]] == [r[key] for r in rows[1:]]
