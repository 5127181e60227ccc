"""Hostile input files (SPEC §7): exit 4 or rejected rows with a one-line reason, no traceback, bounded memory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

HOSTILE = Path(__file__).resolve().parent / "data" / "hostile"
HEADER = "order_id,shop_id,buyer_id,sale_mode,order_time,paid_amount,status\n"
#: Control characters that must never reach a terminal from a file's content (tab and newline excepted).
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x9b]")
#: Peak memory allowed to a load of a huge hostile file.
MEMORY_BOUND_MB = 768
MiB = 1 << 20


def data_rows(db: Path) -> int:
    """Rows in the data tables and `loads` (0 when nothing was written)."""
    if not db.exists():
        return 0
    con = duckdb.connect(str(db), read_only=True)
    try:
        return sum(
            con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
            for t in ("orders", "reviews", "livestreams", "shops", "loads", "rejected_rows")
        )
    finally:
        con.close()


def check_messages(stderr: str, path: Path, exit_code: int, expected: str) -> None:
    """Exit 4 (or 0), one-line messages naming the file and matching `expected`, no traceback or control chars."""
    assert exit_code in (0, 4), f"exit {exit_code}: {stderr}"
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    assert not CONTROL.search(stderr), f"control characters from the file reach the terminal: {stderr!r}"
    lines = stderr.splitlines()
    assert lines, "no message at all"
    # Each message is one line: a reason never spills onto a line of its own.
    strays = [ln for ln in lines if not ln.startswith(("Error: ", "Warning: ", "Hint: ", "  "))]
    assert not strays, f"message lines that continue a reason: {strays}"
    if exit_code == 4:
        assert lines[0].startswith("Error: ") and str(path) in lines[0], lines[0]
    for detail in (ln for ln in lines if ln.startswith("  ")):
        # Each listed reject names the file and the line (or sheet row), then the column and value.
        assert re.match(rf"  {re.escape(str(path))}(\[[^\]]+\])? (line|row) \d+: ", detail), detail
    assert re.search(expected, stderr), f"{expected!r} not in {stderr}"


@dataclass(frozen=True)
class Case:
    file: str
    expected: str  # a regex the messages must match
    table: str = "orders"


CASES: list[Any] = [
    Case("empty.csv", r"the file is empty"),
    Case("whitespace_only.csv", r"the file is empty"),
    Case("bom_only.csv", r"the file is empty"),
    Case("only_header.csv", r"no (data )?rows"),
    Case("blank_rows_only.csv", r"no (data )?rows"),
    Case("garbage.csv", r"byte offset \d+: .*not UTF-8"),
    Case("nul_bytes.csv", r"byte offset \d+: a NUL byte"),
    Case("utf16le_no_bom.csv", r"byte offset \d+: a NUL byte"),
    Case("mixed_utf8_then_gbk.csv", r"encoding changes part-way \(lines 1-2 UTF-8, line 3 GB18030\)"),
    Case("mixed_gbk_then_utf8.csv", r"encoding changes part-way \(lines 1-2 GB18030, line 3 UTF-8\)"),
    Case("truncated_gb18030.csv", r"byte offset \d+: invalid gb18030"),
    Case("unterminated_quote.csv", r"line 2: has 6 fields, the header has 7"),
    Case("newline_in_value.csv", r"line 2: column status: unknown value"),
    Case("ansi_escape_in_value.csv", r"line 2: column status: unknown value"),
    Case("duplicate_headers.csv", r"order_id.*(twice|duplicate|more than once)"),
    Case("duplicate_alias_headers.csv", r"order_id.*(订单号|twice|duplicate|more than once)"),
    Case("missing_required_column.csv", r"missing required column paid_amount"),
    Case("json_named_csv.csv", r"missing required column order_id"),
    Case("wrong_field_counts.csv", r"line 2: has 6 fields, the header has 7"),
    Case("negative_amounts.csv", r"line 2: column paid_amount: '-5' is below the minimum 0"),
    Case("huge_amounts.csv", r"line 2: column paid_amount: '1e308' is not an amount"),
    Case("huge_refund_amount.csv", r"line 2: column refund_amount: '10000000000000000' is out of range"),
    Case("huge_negative_amount.csv", r"line 2: column paid_amount: '-100000000000000000' is out of range"),
    Case("huge_amount_in_wan.csv", r"line 2: column paid_amount: '9+万' is (not an amount|out of range)"),
    Case("dates_year_9999.csv", r"line 2: column order_time: '9999-12-31 23:59:59' is outside 2000-2099"),
    Case("dates_before_1970.csv", r"line 2: column order_time: '1969-12-31 23:59:59' is outside 2000-2099"),
    Case("impossible_dates.csv", r"line 2: column order_time: '2023-02-30 10:00:00' is not a timestamp"),
    Case("bad_utc_offset.csv", r"line 2: column order_time: '2023-05-01T10:00:00\+99:99'"),
    Case("sql_in_values.csv", r"line 2: column status: unknown value 'completed'\); DROP TABLE orders; --'"),
    Case("reviews_bad_scores.csv", r"line 2: column quality_score: '0' is below the minimum 1", "reviews"),
    Case("livestreams_bad.csv", r"line 2: column end_time: .* is before start_time", "livestreams"),
    Case("formulas_and_merged_cells.xlsx", r"\[orders\] row 2: column paid_amount: empty"),
    Case("legacy_ole_or_encrypted.xlsx", r"encrypted workbook or a legacy \.xls"),
    Case("html_table_named_xlsx.xlsx", r"not a readable XLSX workbook"),
    Case("truncated.xlsx", r"not a readable XLSX workbook"),
    Case("zip_without_workbook.xlsx", r"no xl/workbook\.xml"),
    Case("billion_laughs.xlsx", r"damaged sheet"),
    Case("external_entity.xlsx", r"damaged sheet"),
    Case("truncated.parquet", r"not a readable Parquet file"),
    Case("damaged_pages.parquet", r"damaged_pages.parquet: damaged Parquet file: .*(ZSTD|[Dd]ecompress)"),
    Case("garbage_after_magic.parquet", r"not a readable Parquet file"),
    Case("far_dates.parquet", r"row 1: column order_time: '9999-12-31' is outside 2000-2099"),
    Case("double_amounts.parquet", r"row 1: column paid_amount: 'nan'"),
    Case("double_times.parquet", r"row 1: column order_time: "),
    Case("decimal38_amounts.parquet", r"row 1: column paid_amount: "),
    Case("struct_amounts.parquet", r"column paid_amount"),
    Case("duration_times.parquet", r"column order_time holds INTERVAL values"),
]


def test_corpus_is_complete() -> None:
    files = {p.name for p in HOSTILE.iterdir() if p.suffix != ".py"}
    listed = {case.file for case in (c.values[0] if not isinstance(c, Case) else c for c in CASES)}
    assert files == listed
    assert len(files) >= 30


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.file)
def test_hostile_file(case: Case, tmp_path: Path, cli: Callable[..., Any]) -> None:
    db = tmp_path / "db.duckdb"
    path = HOSTILE / case.file
    result = cli("--db", str(db), "load", case.table, str(path))
    check_messages(result.stderr, path, result.exit_code, case.expected)
    if result.exit_code == 4:
        assert data_rows(db) == 0, "a refused load wrote something"


def test_sql_in_values_stays_data(tmp_path: Path, cli: Callable[..., Any]) -> None:
    db = tmp_path / "db.duckdb"
    result = cli(
        "--db", str(db), "load", "orders", str(HOSTILE / "sql_in_values.csv"), "--max-reject-rate", "1"
    )
    assert result.exit_code == 0, result.output
    con = duckdb.connect(str(db), read_only=True)
    try:
        raw = con.execute("SELECT raw FROM rejected_rows ORDER BY line").fetchall()
        assert "DROP TABLE orders" in raw[0][0] and "DELETE FROM loads" in raw[1][0]
        assert con.execute("SELECT count(*) FROM loads").fetchall() == [(1,)]
    finally:
        con.close()


def test_external_entity_is_never_resolved(tmp_path: Path, cli: Callable[..., Any]) -> None:
    db = tmp_path / "db.duckdb"
    result = cli("--db", str(db), "load", "orders", str(HOSTILE / "external_entity.xlsx"))
    assert result.exit_code == 4
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else "\0"
    assert hostname not in result.output


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_device_files(device: str, tmp_path: Path, cli: Callable[..., Any]) -> None:
    assert Path(device).exists(), f"{device} is part of every Linux machine this runs on"
    result = cli("--db", str(tmp_path / "db.duckdb"), "load", "orders", device)
    check_messages(result.stderr, Path(device), result.exit_code, r".")
    assert result.exit_code == 4


def test_directory_and_missing_file(tmp_path: Path, cli: Callable[..., Any]) -> None:
    for path in (tmp_path, tmp_path / "nope.csv"):
        result = cli("--db", str(tmp_path / "db.duckdb"), "load", "orders", str(path))
        check_messages(result.stderr, path, result.exit_code, r"directory|no such file")
        assert result.exit_code == 4


# --- big files made on the fly, loaded in a child process whose peak memory is measured ------------------


def run_measured(args: list[str]) -> tuple[int, str, int]:
    """Run `chuanliu ARGS` in a child; (exit code, stderr, peak RSS in MiB) of that child alone."""
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("CHUANLIU_DB", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "chuanliu_cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stderr is not None
    stderr = proc.stderr.read().decode("utf-8", "replace")
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, stderr, usage.ru_maxrss // 1024


def write_big(path: Path, head: str, body: bytes, repeat: int, tail: str) -> Path:
    with path.open("wb") as f:
        f.write(head.encode())
        for _ in range(repeat):
            f.write(body)
        f.write(tail.encode())
    return path


def test_200mb_single_line(tmp_path: Path) -> None:
    path = write_big(
        tmp_path / "line.csv", HEADER + "1,ks1,b1,self,2023-05-01 10:00:00,", b"9" * MiB, 200, ",completed\n"
    )
    code, stderr, peak = run_measured(["--db", str(tmp_path / "db.duckdb"), "load", "orders", str(path)])
    check_messages(stderr, path, code, r"a line longer than \d+ MiB")
    assert code == 4
    assert peak < MEMORY_BOUND_MB, f"peak RSS {peak} MiB"


def test_40mb_quoted_field_over_many_lines(tmp_path: Path) -> None:
    lines = (b"x" * 99 + b"\n") * (MiB // 100)
    path = write_big(
        tmp_path / "quoted.csv", HEADER + '1,ks1,b1,self,2023-05-01 10:00:00,"', lines, 40, '",x\n'
    )
    code, stderr, peak = run_measured(["--db", str(tmp_path / "db.duckdb"), "load", "orders", str(path)])
    check_messages(stderr, path, code, r"line \d+: field larger than field limit")
    assert code == 4
    assert peak < MEMORY_BOUND_MB, f"peak RSS {peak} MiB"


def test_10000_columns(tmp_path: Path, cli: Callable[..., Any]) -> None:
    names = [f"c{i}" for i in range(10_000)]
    missing = tmp_path / "wide_no_keys.csv"
    missing.write_text(",".join(names) + "\n" + ",".join(["1"] * 10_000) + "\n")
    result = cli("--db", str(tmp_path / "a.duckdb"), "load", "orders", str(missing))
    check_messages(result.stderr, missing, result.exit_code, r"missing required column order_id")
    assert len(result.stderr.splitlines()[0]) < 1000  # the header list is cut, not 10,000 names long
    # The same width with the required columns at the end: the extra columns are ignored.
    wide = tmp_path / "wide.csv"
    row = ",".join(["x"] * 10_000)
    wide.write_text(
        ",".join(names)
        + ","
        + HEADER
        + "".join(f"{row},{i},ks1,b1,self,2023-05-01 10:00:00,1,paid\n" for i in range(50))
    )
    code, stderr, peak = run_measured(["--db", str(tmp_path / "b.duckdb"), "-q", "load", "orders", str(wide)])
    assert code == 0, stderr
    assert peak < MEMORY_BOUND_MB, f"peak RSS {peak} MiB"


def test_zip_bomb_named_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "orders.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as f:
            chunk = b"<row>" + b"\0" * (MiB - 5)
            for _ in range(300):
                f.write(chunk)
    assert path.stat().st_size < 2 * MiB
    code, stderr, peak = run_measured(["--db", str(tmp_path / "db.duckdb"), "load", "orders", str(path)])
    check_messages(stderr, path, code, r"zip bomb|would inflate")
    assert code == 4
    assert peak < MEMORY_BOUND_MB, f"peak RSS {peak} MiB"


def bad_rows_parquet(path: Path, rows: int, bad: bool = True) -> Path:
    """Orders whose every row is rejected (an unknown status), or the same rows all valid."""
    status = "'lost-' || i" if bad else "'paid'"
    con = duckdb.connect()
    try:
        con.execute(
            f"""COPY (SELECT 'o' || i AS order_id, 'ks1' AS shop_id, 'b1' AS buyer_id, 'self' AS sale_mode,
                  '2023-05-01 10:00:00' AS order_time, '1' AS paid_amount, {status} AS status
                FROM range({rows}) t(i)) TO '{path}' (FORMAT PARQUET)"""
        )
    finally:
        con.close()
    return path


def test_file_of_bad_rows_is_refused_about_as_fast_as_good_rows_load(
    tmp_path: Path, cli: Callable[..., Any]
) -> None:
    import time

    rows = 2000
    good = bad_rows_parquet(tmp_path / "good.parquet", rows, bad=False)
    bad = bad_rows_parquet(tmp_path / "bad.parquet", rows)
    # the best of three of each: the suite runs on two workers, and one slow moment is not a regression
    good_times, bad_times = [], []
    for i in range(3):
        started = time.monotonic()
        result = cli("--db", str(tmp_path / f"good{i}.duckdb"), "-q", "load", "orders", str(good))
        good_times.append(time.monotonic() - started)
        assert result.exit_code == 0, result.output
        started = time.monotonic()
        result = cli("--db", str(tmp_path / f"bad{i}.duckdb"), "load", "orders", str(bad))
        bad_times.append(time.monotonic() - started)
        check_messages(result.stderr, bad, result.exit_code, rf"{rows} of {rows} rows rejected")
        assert result.exit_code == 4
    good_seconds, bad_seconds = min(good_times), min(bad_times)
    # Refusing a row may cost a little more than loading it, not a millisecond more.
    per_row = (bad_seconds - good_seconds) / rows
    assert per_row < 0.00015, f"bad rows {bad_seconds:.2f} s, the same rows valid {good_seconds:.2f} s"


@pytest.mark.slow
def test_200k_bad_rows_bounded(tmp_path: Path) -> None:
    import time

    path = bad_rows_parquet(tmp_path / "bad.parquet", 200_000)
    started = time.monotonic()
    code, stderr, peak = run_measured(["--db", str(tmp_path / "db.duckdb"), "load", "orders", str(path)])
    check_messages(stderr, path, code, r"200000 of 200000 rows rejected")
    assert code == 4
    assert time.monotonic() - started < 20
    assert peak < MEMORY_BOUND_MB, f"peak RSS {peak} MiB"


@pytest.mark.slow
def test_200mb_of_very_wide_rows(tmp_path: Path) -> None:
    row = b"1,ks1,b1,self,2023-05-01 10:00:00,1,completed" + b"," * (10 * MiB) + b"\n"
    path = write_big(tmp_path / "wide_rows.csv", HEADER, row, 20, "")
    code, stderr, peak = run_measured(["--db", str(tmp_path / "db.duckdb"), "load", "orders", str(path)])
    check_messages(stderr, path, code, r"has \d+ fields, the header has 7")
    assert code == 4
    assert peak < MEMORY_BOUND_MB, f"peak RSS {peak} MiB"
