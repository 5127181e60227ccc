"""Output: formula-safe CSV cells, atomic writes, and the one emit path every data command shares."""

from __future__ import annotations

import csv as _csv
import io as _io
import json as _json
import shutil as _shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chuanliu_cli.present.writers import atomic_write, safe_cell, write_csv
from tests.conftest import REPO


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


# --- one emit path: every command that writes data follows the same rules -------------------------------

#: A shop name a spreadsheet would run as a formula.
HOSTILE = '=HYPERLINK("http://x","y")'
DATA_COMMANDS = {
    "score": ["score", "--month", "2023-05", "--no-record"],
    "eligible": ["eligible", "--month", "2023-05", "--no-record", "--all"],
    "explain": ["explain", "ks700001", "--month", "2023-05"],
    "compare": ["compare", "--month", "2023-05", "--against-month", "2023-04", "--all"],
    "runs": ["runs", "--id", "1"],
    "status": ["status"],
}


@pytest.fixture(scope="module")
def output_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The sample data, shop ks700001 renamed to a formula, loaded and scored once (run 1)."""
    from typer.testing import CliRunner

    from chuanliu_cli.cli.app import app

    tmp = tmp_path_factory.mktemp("emit")
    data = tmp / "data"
    _shutil.copytree(REPO / "sample_data", data)
    shops = (data / "shops.csv").read_text(encoding="utf-8")
    (data / "shops.csv").write_text(
        shops.replace("云源珠宝文玩旗舰店", HOSTILE.replace('"', '""').join('""'))
    )
    db = str(tmp / "emit.duckdb")
    runner = CliRunner()
    for args in (["load", "--dir", str(data)], ["eligible", "--month", "2023-05", "--format", "csv"]):
        result = runner.invoke(app, ["-q", "--db", db, *args])
        assert result.exit_code == 0, result.output
    return db


def _run(invoke: Callable[..., Any], db: str, command: str, *extra: str) -> Any:
    return invoke("--db", db, *DATA_COMMANDS[command], *extra)


@pytest.mark.parametrize("command", DATA_COMMANDS)
@pytest.mark.parametrize("suffix", ["csv", "json", "jsonl", "parquet", "xlsx", "txt"])
def test_format_follows_the_output_suffix_and_the_write_is_atomic(
    invoke: Callable[..., Any], output_db: str, tmp_path: Path, command: str, suffix: str
) -> None:
    out = tmp_path / f"result.{suffix}"
    result = _run(invoke, output_db, command, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temp file left behind
    data = out.read_bytes()
    if suffix == "parquet":
        import pyarrow.parquet as pq

        assert data[:4] == b"PAR1"
        assert pq.read_table(out).num_columns > 0
    elif suffix == "xlsx":
        import openpyxl

        assert data[:2] == b"PK"
        assert openpyxl.load_workbook(out, read_only=True).sheetnames == ["data", "about"]
    elif suffix == "json":
        assert isinstance(_json.loads(data), dict)
    elif suffix == "jsonl":
        assert all(isinstance(_json.loads(line), dict) for line in data.decode().splitlines())
    elif suffix == "csv":
        rows = list(_csv.reader(_io.StringIO(data.decode())))
        assert len(rows) > 1 and len({len(r) for r in rows}) == 1
    else:
        assert not data.startswith((b"{", b"PAR1"))  # a rendered table


@pytest.mark.parametrize("command", DATA_COMMANDS)
def test_a_format_the_suffix_contradicts_is_refused(
    invoke: Callable[..., Any], output_db: str, tmp_path: Path, command: str
) -> None:
    out = tmp_path / "result.csv"
    result = _run(invoke, output_db, command, "--format", "json", "-o", str(out))
    assert result.exit_code == 2, result.output
    assert "--format json disagrees with -o" in result.output and "says csv" in result.output
    assert not out.exists()


@pytest.mark.parametrize("command", DATA_COMMANDS)
def test_format_option_decides_for_an_unknown_suffix(
    invoke: Callable[..., Any], output_db: str, tmp_path: Path, command: str
) -> None:
    out = tmp_path / "result.out"
    result = _run(invoke, output_db, command, "--format", "json", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert isinstance(_json.loads(out.read_text(encoding="utf-8")), dict)


@pytest.mark.parametrize("command", DATA_COMMANDS)
def test_parquet_goes_to_a_pipe(invoke: Callable[..., Any], output_db: str, command: str) -> None:
    result = _run(invoke, output_db, command, "--format", "parquet")
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes[:4] == b"PAR1"


@pytest.mark.parametrize("command", DATA_COMMANDS)
def test_parquet_is_refused_on_a_terminal(
    invoke: Callable[..., Any], output_db: str, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # Rich: stdout is a terminal
    result = _run(invoke, output_db, command, "--format", "parquet")
    assert result.exit_code == 2, result.output
    assert "parquet is binary: write it to a file with -o FILE" in result.output


@pytest.mark.parametrize("command", DATA_COMMANDS)
def test_unwritable_output_is_refused_before_any_work(
    invoke: Callable[..., Any], output_db: str, tmp_path: Path, command: str
) -> None:
    result = _run(invoke, output_db, command, "-o", str(tmp_path / "missing" / "out.csv"))
    assert result.exit_code == 2, result.output
    assert "directory" in result.output and "does not exist" in result.output


@pytest.mark.parametrize("command", ["score", "eligible", "compare", "runs"])
def test_csv_output_is_formula_safe(invoke: Callable[..., Any], output_db: str, command: str) -> None:
    result = _run(invoke, output_db, command, "--format", "csv")
    assert result.exit_code == 0, result.output
    cells = [c for row in _csv.reader(_io.StringIO(result.stdout)) for c in row]
    assert "'" + HOSTILE in cells
    assert HOSTILE not in cells


@pytest.mark.parametrize("command", DATA_COMMANDS)
def test_jsonl_and_json_hold_the_same_records(
    invoke: Callable[..., Any], output_db: str, command: str
) -> None:
    as_json = _json.loads(_run(invoke, output_db, command, "--format", "json").stdout)
    lines = [
        _json.loads(x) for x in _run(invoke, output_db, command, "--format", "jsonl").stdout.splitlines()
    ]
    expected = {
        "score": lambda d: d["entities"],
        "eligible": lambda d: d["entities"],
        "explain": lambda d: [d],
        "compare": lambda d: d["entities"],
        "runs": lambda d: d["results"],
        "status": lambda d: d["tables"],
    }[command](as_json)
    assert lines == expected
