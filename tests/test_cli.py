"""The command line: global options, exit codes, one-line errors, no tracebacks without -v."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chuanliu_cli import __version__
from chuanliu_cli.exit_codes import ExitCode

ORDERS = """
order_id,shop_id,buyer_id,sale_mode,order_time,paid_amount,status
1,ks1,b1,self,2023-05-01 20:00:00,10,completed
2,ks1,b2,self,2023-05-02 20:00:00,20,completed
"""


def test_version(invoke: Callable[..., Any]) -> None:
    result = invoke("--version")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"chuanliu {__version__}"


def test_help_documents_exit_codes(invoke: Callable[..., Any]) -> None:
    result = invoke("-h")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for code in ExitCode:
        assert f"{code.value} {code.name.lower().replace('_', ' ')}" in text


@pytest.mark.parametrize("command", ["load", "status", "sample", "score", "eligible"])
def test_every_command_has_help(invoke: Callable[..., Any], command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_load_and_status(invoke: Callable[..., Any], write: Callable[..., Path], tmp_path: Path) -> None:
    path = write("orders.csv", ORDERS)
    db = str(tmp_path / "c.duckdb")
    result = invoke("--db", db, "load", "orders", str(path))
    assert result.exit_code == 0, result.output
    assert "orders.csv" in result.output and "inserted" in result.output
    again = invoke("--db", db, "load", "orders", str(path))
    assert "Nothing changed" in again.output
    status = invoke("--db", db, "status")
    assert status.exit_code == 0, status.output
    assert "2023-05" in status.output and "✗ partial" in status.output


def test_db_from_environment(
    invoke: Callable[..., Any], write: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHUANLIU_DB", str(tmp_path / "env.duckdb"))
    result = invoke("load", "orders", str(write("orders.csv", ORDERS)))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "env.duckdb").exists()


def test_quiet_prints_nothing_on_success(
    invoke: Callable[..., Any], write: Callable[..., Path], tmp_path: Path
) -> None:
    result = invoke(
        "-q", "--db", str(tmp_path / "q.duckdb"), "load", "orders", str(write("orders.csv", ORDERS))
    )
    assert result.exit_code == 0
    assert result.output == ""


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["load"], ExitCode.USAGE, "give TABLE FILE... or --dir DIR"),
        (["load", "nonsense", "x.csv"], ExitCode.USAGE, "nonsense"),
        (["load", "orders", "missing.csv"], ExitCode.INVALID_DATA, "missing.csv: no such file"),
        (["status"], ExitCode.INVALID_DATA, "does not exist"),
        (["load", "--max-reject-rate", "2", "orders", "x.csv"], ExitCode.USAGE, "max-reject-rate"),
        (
            ["load", "--timezone", "Mars/Base", "orders", "x.csv"],
            ExitCode.USAGE,
            "unknown timezone 'Mars/Base'",
        ),
    ],
)
def test_exit_codes(
    invoke: Callable[..., Any],
    tmp_path: Path,
    args: list[str],
    code: ExitCode,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.csv").write_text("order_id\n1\n")
    result = invoke(*args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_missing_column_is_exit_4_with_file_and_column(
    invoke: Callable[..., Any], write: Callable[..., Path], tmp_path: Path
) -> None:
    path = write("orders.csv", "order_id,shop_id\n1,ks1\n")
    result = invoke("--db", str(tmp_path / "d.duckdb"), "load", "orders", str(path))
    assert result.exit_code == ExitCode.INVALID_DATA
    assert (
        "orders.csv: missing required column buyer_id of orders (found: order_id, shop_id)" in result.output
    )


def test_too_many_rejects_is_exit_4_and_lists_rejects(
    invoke: Callable[..., Any], write: Callable[..., Path], tmp_path: Path
) -> None:
    path = write("orders.csv", ORDERS + "3,ks1,b3,self,2023-05-02 20:00:00,ten,completed\n")
    result = invoke("--db", str(tmp_path / "d.duckdb"), "load", "orders", str(path))
    assert result.exit_code == ExitCode.INVALID_DATA
    assert "nothing was written" in result.output
    assert "orders.csv line 4: column paid_amount: 'ten' is not an amount" in result.output


def test_unexpected_error_is_one_line_exit_1(
    invoke: Callable[..., Any], write: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import chuanliu_cli.ingest.loader as loader

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(loader, "load_files", boom)
    args = ["--db", str(tmp_path / "d.duckdb"), "load", "orders", str(write("orders.csv", ORDERS))]
    result = invoke(*args)
    assert result.exit_code == ExitCode.INTERNAL
    assert result.output.strip().splitlines() == [
        "Error: internal error: RuntimeError: kaboom (a bug; rerun with -v for details)"
    ]
    verbose = invoke("-v", *args)
    assert verbose.exit_code == ExitCode.INTERNAL
    assert "Traceback" in verbose.output


def test_busy_database_is_exit_5(
    invoke: Callable[..., Any], write: Callable[..., Path], tmp_path: Path
) -> None:
    db = str(tmp_path / "busy.duckdb")
    hold = (
        "import sys, time\nfrom chuanliu_cli.store.database import open_database\n"
        "with open_database(sys.argv[1], 'write'):\n    print('held', flush=True)\n    time.sleep(30)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", hold, db], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        result = invoke("--db", db, "load", "--wait", "0", "orders", str(write("orders.csv", ORDERS)))
        assert result.exit_code == ExitCode.DATABASE_BUSY
        assert f"locked by pid {proc.pid}" in result.output
    finally:
        proc.kill()
        proc.wait()


def test_python_dash_m_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "chuanliu_cli", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"chuanliu {__version__}"


def test_help_does_not_import_heavy_modules() -> None:
    code = "import sys\nfrom chuanliu_cli.cli.app import main\nsys.argv=['chuanliu','--help']\ntry:\n    main()\nexcept SystemExit:\n    pass\nprint(sorted(m for m in ('duckdb','polars','pyarrow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_load_warns_when_carrier_is_missing(
    invoke: Callable[..., Any], write: Callable[..., Path], tmp_path: Path
) -> None:
    result = invoke("--db", str(tmp_path / "w.duckdb"), "load", "orders", str(write("orders.csv", ORDERS)))
    assert result.exit_code == 0
    assert "Warning: " in result.stderr and "no column carrier (售卖载体" in result.stderr
