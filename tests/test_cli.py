"""The command line: global options, exit codes, one-line errors, no tracebacks without -v."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chuanliu_cli import __version__
from chuanliu_cli.api import write_sample
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
    assert "2023-05" in status.output and "✗ needs livestreams from" in status.output
    doc = json.loads(invoke("--db", db, "status", "--format", "json").stdout)
    assert doc["incomplete_months"] == ["2023-05"]
    assert doc["month_notes"]["2023-05"] == (
        "needs livestreams from 2023-05-01 (the period); no data; "
        "needs orders from 2023-03-03 (90-day windows); data from 2023-05-01; "
        "needs reviews from 2023-03-03 (90-day windows); no data; orders has no data on or after 2023-05-31 "
        "(its data ends 2023-05-02 20:00)"
    )


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
    # -q hides the summary and progress, never warnings (here: columns the export lacks)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith("Warning: ") for line in lines), result.stderr


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
    args = ["--db", str(tmp_path / "d.duckdb"), "load", "orders", str(path)]
    result = invoke(*args, "--max-reject-rows", "0")
    assert result.exit_code == ExitCode.INVALID_DATA
    assert "nothing was written" in result.output
    assert "orders.csv line 4: column paid_amount: 'ten' is not an amount" in result.output
    # the library's parameter names become the options of `load`
    assert "(33.3% > --max-reject-rate 1.0% and 1 > --max-reject-rows 0)" in result.output
    assert "raise a reject limit (--max-reject-rate or --max-reject-rows)" in result.output
    # one bad row of three is within the default row limit (10): the good rows load
    assert invoke(*args).exit_code == 0


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


def _modules_after(*commands: list[str], modules: tuple[str, ...]) -> tuple[list[str], str]:
    """Which of `modules` one Python process imported while running the chuanliu `commands` in turn (each
    must succeed), and what they printed on standard output."""
    code = "import json, sys\nfrom chuanliu_cli.cli.app import main\n"
    for args in commands:
        code += (
            f"sys.argv = ['chuanliu', '-q', *{args!r}]\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        )
    code += f"print(json.dumps(sorted(m for m in {modules!r} if m in sys.modules)), file=sys.stderr)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    found: list[str] = json.loads(done.stderr.strip().splitlines()[-1])
    return found, done.stdout


def test_scoring_recording_and_a_served_explanation_import_neither_pyarrow_nor_sqlglot(
    invoke: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scoring and recording reach DuckDB and polars through the Arrow C stream (chuanliu_cli/arrays.py),
    and a served explanation reads its SQL from the rules cache: once the cache is warm (a first process
    ran the same commands), neither imports pyarrow or sqlglot (0.18 s and 0.1 s of every such command)."""
    monkeypatch.setenv("CHUANLIU_CACHE_DIR", str(tmp_path / "cache"))  # (the subprocesses inherit it)
    db = str(tmp_path / "s.duckdb")
    repo = Path(__file__).resolve().parent.parent
    result = invoke("-q", "--db", db, "load", "--dir", str(repo / "sample_data"))
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    eligible = ["eligible", "--month", "2023-05", "--format", "csv", "-o", str(tmp_path / "list.csv")]
    explain = ["explain", "ks700041", "--month", "2023-05"]

    def imported(*commands: list[str]) -> list[str]:
        """What one process that runs `commands` in turn imported of pyarrow and sqlglot."""
        return _modules_after(*(["--db", db, *args] for args in commands), modules=("pyarrow", "sqlglot"))[0]

    assert "pyarrow" not in imported(eligible, explain)  # (this first process fills the cache)
    assert imported(eligible) == []  # scored and recorded again
    assert imported(explain) == []  # served from that run


def test_text_exports_load_without_pyarrow_or_sqlglot_once_the_cache_is_warm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Text files are loaded as polars columns (ingest/formats/base.Batch), and the conversion queries, the
    sessions' duration warning and the brushing marks' queries are text kept in the rules cache
    (ingest/conversion.py, store/brushing.py): once a first process filled the cache, `eligible --data` on
    CSV exports (one of them with a rejected row) and `load --dir` of them import neither pyarrow nor
    sqlglot (0.15 s and 0.1 s of the sample's 1.2 s), and give the same list."""
    monkeypatch.setenv("CHUANLIU_CACHE_DIR", str(tmp_path / "cache"))  # (the subprocesses inherit it)
    repo = Path(__file__).resolve().parent.parent
    exports = tmp_path / "exports"
    shutil.copytree(repo / "sample_data", exports)
    orders = exports / "orders.csv"
    orders.write_text(orders.read_text(encoding="utf-8") + "not,a,valid,order\n", encoding="utf-8")

    eligible = ["eligible", "--data", str(exports), "--month", "2023-05", "--format", "csv"]
    first, cold = _modules_after(eligible, modules=("pyarrow", "sqlglot"))
    assert "sqlglot" in first  # (the cold cache: the queries were rendered)
    load = ["--db", str(tmp_path / "c.duckdb"), "load", "--dir", str(exports)]
    warm_modules, warm = _modules_after(eligible, load, modules=("pyarrow", "sqlglot"))
    assert warm_modules == []
    assert warm == cold and warm.count("\n") > 10
    import duckdb

    con = duckdb.connect(str(tmp_path / "c.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM rejected_rows").fetchone() == (1,)
    assert con.execute("SELECT count(*) FROM orders").fetchone() == (14640,)


def test_loading_exports_does_not_import_pandas(tmp_path: Path) -> None:
    """pyarrow's `array()` and DuckDB's scan of a pyarrow table import pandas when it is installed (the
    impact extra brings it: 0.25-0.5 s); loading builds and registers its arrays without them
    (chuanliu_cli/arrays.py). A load of CSV exports with a reject, and of the open platform's cps list."""
    import importlib.util

    assert importlib.util.find_spec("pandas") is not None  # (else this test would prove nothing)
    repo = Path(__file__).resolve().parent.parent
    exports = tmp_path / "exports"
    shutil.copytree(repo / "sample_data", exports)
    orders = exports / "orders.csv"
    orders.write_text(orders.read_text(encoding="utf-8") + "not,a,valid,order\n", encoding="utf-8")
    api = tmp_path / "api"
    write_sample(api, merchants=60, months=1, end="2023-05", fmt="api")
    commands = [
        [
            "eligible",
            "--data",
            str(repo / "sample_data"),
            "--month",
            "2023-05",
            "--format",
            "csv",
            "-o",
            str(tmp_path / "l.csv"),
        ],
        ["--db", str(tmp_path / "c.duckdb"), "load", "--dir", str(exports)],
        ["--db", str(tmp_path / "a.duckdb"), "load", "--dir", str(api)],
    ]
    for args in commands:
        assert _modules_after(args, modules=("pandas",))[0] == [], args


def test_dash_output_is_standard_output(
    invoke: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`-o -` writes the data commands' output to standard output (it wrote a file named `-`); a command
    that writes only files refuses it."""
    repo = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(tmp_path)
    data = ["--month", "2023-05", "--data", str(repo / "sample_data")]
    result = invoke("eligible", *data, "--format", "csv", "-o", "-")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("shop_id,name,") and not (tmp_path / "-").exists()
    report = invoke("report", *data, "-o", "-")
    assert report.exit_code == 2 and "-o -: this command writes a file" in report.output
    assert not (tmp_path / "-").exists()


def test_load_warns_when_carrier_is_missing(
    invoke: Callable[..., Any], write: Callable[..., Path], tmp_path: Path
) -> None:
    result = invoke("--db", str(tmp_path / "w.duckdb"), "load", "orders", str(write("orders.csv", ORDERS)))
    assert result.exit_code == 0
    assert "Warning: " in result.stderr and "no column carrier (售卖载体" in result.stderr


def test_on_duplicate_and_allow_regress_options(
    invoke: Callable[..., Any], write: Callable[..., Path], tmp_path: Path
) -> None:
    db = str(tmp_path / "o.duckdb")
    repeated = write("orders.csv", ORDERS + "1,ks1,b1,self,2023-05-01 20:00:00,10,shipped\n")
    refused = invoke("--db", db, "load", "orders", str(repeated), "--on-duplicate", "error")
    assert refused.exit_code == ExitCode.INVALID_DATA, refused.output
    assert "order_id 1: lines 2 and 4 differ in status" in refused.output
    assert "(--on-duplicate last|first)" in refused.output
    bad = invoke("--db", db, "load", "orders", str(repeated), "--on-duplicate", "middle")
    assert bad.exit_code == ExitCode.USAGE
    assert invoke("--db", db, "load", "orders", str(repeated), "--on-duplicate", "first").exit_code == 0
    # the stored order 1 is `completed` (the first occurrence); `shipped` would move it backwards
    older = write("older.csv", ORDERS.replace("10,completed", "10,shipped"))
    kept = invoke("--db", db, "load", "orders", str(older))
    assert kept.exit_code == 0, kept.output
    assert "1 update(s) would move rows backwards" in kept.stderr
    assert "order_id 1 status completed → shipped" in kept.stderr
    assert "the stored rows were kept (--allow-regress applies the file's)" in kept.stderr
    applied = invoke("--db", db, "load", "orders", str(older), "--allow-regress")
    assert applied.exit_code == 0 and "were applied as allowed" in applied.stderr
    status = invoke("--db", db, "status", "--format", "table")
    assert status.exit_code == 0 and "regressed" in status.output


def test_library_wording_becomes_flags_in_load_messages(
    invoke: Callable[..., Any], write: Callable[..., Path], tmp_path: Path
) -> None:
    db = str(tmp_path / "t.duckdb")
    path = write("orders.csv", ORDERS)
    assert invoke("--db", db, "load", "orders", str(path)).exit_code == 0
    other = invoke("--db", db, "load", "orders", str(path), "--timezone", "UTC")
    assert other.exit_code == ExitCode.USAGE
    assert "Hint: load with --timezone Asia/Shanghai, or use another --db" in other.output
    missing = invoke("--db", db, "load", "orders", str(write("o.csv", "order_id,shop_id\n1,s\n")))
    assert "add yours with --mapping" in missing.output
