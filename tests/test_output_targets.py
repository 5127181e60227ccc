"""Where `-o` writes: never over the database or an export being read, into devices and pipes as they are,
through symlinks to their file; a full disk is said as such; a command that fails records no run."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from chuanliu_cli.exit_codes import ExitCode
from tests.conftest import REPO

MONTH = ["--month", "2023-05"]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from typer.testing import CliRunner

    from chuanliu_cli.cli.app import app

    db = tmp_path_factory.mktemp("db") / "c.duckdb"
    result = CliRunner().invoke(app, ["--db", str(db), "-q", "load", "--dir", str(REPO / "sample_data")])
    assert result.exit_code == 0, result.output
    return db


def _runs(db: Path) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute("SELECT count(*) FROM runs").fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


def test_the_database_is_never_the_output(invoke: Callable[..., Any], loaded: Path, tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    db.write_bytes(loaded.read_bytes())
    before = db.read_bytes()
    result = invoke("--db", str(db), "eligible", *MONTH, "-o", str(db))
    assert result.exit_code == int(ExitCode.USAGE), result.output
    assert f"-o {db} is the database {db}: writing the output there would destroy it" in result.output
    assert db.read_bytes() == before and _runs(db) == 0


def test_an_export_being_read_is_never_the_output(invoke: Callable[..., Any], tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for f in (REPO / "sample_data").iterdir():
        (data / f.name).write_bytes(f.read_bytes())
    orders = (data / "orders.csv").read_bytes()
    result = invoke("eligible", *MONTH, "--data", str(data), "-o", str(data / "orders.csv"))
    assert result.exit_code == int(ExitCode.USAGE), result.output
    assert "is the export" in result.output and (data / "orders.csv").read_bytes() == orders
    # another name in the same folder is fine
    assert invoke("eligible", *MONTH, "--data", str(data), "-o", str(data / "list.csv")).exit_code == 0


def test_a_device_is_written_into_not_replaced(invoke: Callable[..., Any], tmp_path: Path) -> None:
    """`-o /dev/null` (as root) renamed a file over the device; a pipe (mkfifo) is written into too."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    import threading

    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    result = invoke(
        "eligible", *MONTH, "--data", str(REPO / "sample_data"), "--format", "csv", "-o", str(fifo)
    )
    reader.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still the pipe
    assert got and got[0].startswith(b"shop_id,name,") and got[0].count(b"\n") == 50
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    null = Path(os.devnull)
    kind = null.stat().st_mode
    result = invoke(
        "eligible", *MONTH, "--data", str(REPO / "sample_data"), "--format", "csv", "-o", os.devnull
    )
    assert result.exit_code == 0, result.output
    assert null.stat().st_mode == kind and stat.S_ISCHR(kind)


def test_a_symlink_writes_its_file_and_stays_a_link(invoke: Callable[..., Any], tmp_path: Path) -> None:
    target, link = tmp_path / "target.csv", tmp_path / "link.csv"
    target.write_text("old\n", encoding="utf-8")
    link.symlink_to(target)
    result = invoke("eligible", *MONTH, "--data", str(REPO / "sample_data"), "-o", str(link))
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and target.read_text(encoding="utf-8").startswith("shop_id,name,")


def test_a_full_disk_is_said_not_called_a_bug(invoke: Callable[..., Any]) -> None:
    if not Path("/dev/full").exists():  # pragma: no cover - every Linux has it
        pytest.fail("/dev/full is missing")
    result = invoke(
        "eligible", *MONTH, "--data", str(REPO / "sample_data"), "--format", "csv", "-o", "/dev/full"
    )
    assert result.exit_code == int(ExitCode.INTERNAL)
    assert "Error: cannot write" in result.output and "No space left on device" in result.output
    assert "a bug" not in result.output


@pytest.mark.parametrize("command", ["eligible", "score"])
def test_an_unknown_id_records_no_run(
    invoke: Callable[..., Any], loaded: Path, tmp_path: Path, command: str
) -> None:
    """`eligible --id nosuch` exits 4; the run it scored is not recorded (budget and history read recorded
    runs as the published lists)."""
    db = tmp_path / "c.duckdb"
    db.write_bytes(loaded.read_bytes())
    result = invoke("--db", str(db), command, "--month", "2023-03", "--id", "nosuch", "--format", "csv")
    assert result.exit_code == int(ExitCode.INVALID_DATA), result.output
    assert _runs(db) == 0
    ok = invoke("--db", str(db), command, "--month", "2023-03", "--id", "ks700001", "--format", "csv")
    assert ok.exit_code == 0, ok.output
    assert _runs(db) == 1


def _utc_ruleset(tmp_path: Path) -> Path:
    text = (REPO / "rules" / "chuanliu.yaml").read_text(encoding="utf-8")
    assert "\ntimezone: Asia/Shanghai\n" in text
    path = tmp_path / "utc.yaml"
    path.write_text(text.replace("\ntimezone: Asia/Shanghai\n", "\ntimezone: UTC\n"), encoding="utf-8")
    return path


def test_the_rulesets_timezone_reads_a_directory(invoke: Callable[..., Any], tmp_path: Path) -> None:
    """`timezone: UTC` in the ruleset: a directory's aware times are read in UTC (SPEC §2), so the first
    order, 2023-03-01T00:02:04+08:00, is 2023-02-28 16:02:04; with Asia/Shanghai it stays 00:02:04."""
    import csv
    import json

    data = tmp_path / "aware"
    data.mkdir()
    for f in (REPO / "sample_data").iterdir():
        (data / f.name).write_bytes(f.read_bytes())
    with (data / "orders.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    at = rows[0].index("order_time")
    for row in rows[1:]:
        row[at] = row[at].replace(" ", "T") + "+08:00"
    with (data / "orders.csv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    args = ["eligible", "--month", "2023-05", "--data", str(data), "--format", "json"]
    shanghai = json.loads(invoke(*args).stdout)
    utc = invoke(*args, "--rules", str(_utc_ruleset(tmp_path)))
    assert utc.exit_code == 0, utc.output
    doc = json.loads(utc.stdout)
    assert not any("timezone" in w for w in doc["warnings"])
    assert shanghai["data_window"]["orders"]["min"] == "2023-03-01 00:02:04"
    assert doc["data_window"]["orders"]["min"] == "2023-02-28 16:02:04"


def test_a_database_in_another_timezone_is_warned(
    invoke: Callable[..., Any], loaded: Path, tmp_path: Path
) -> None:
    rules = _utc_ruleset(tmp_path)
    db = tmp_path / "c.duckdb"
    db.write_bytes(loaded.read_bytes())
    result = invoke(
        "--db", str(db), "eligible", *MONTH, "--rules", str(rules), "--no-record", "--format", "csv"
    )
    assert result.exit_code == 0, result.output
    assert (
        "Warning: the ruleset chuanliu-2023 is in timezone UTC, but the data's times were read in Asia/Shanghai"
        in result.stderr
    )
    strict = invoke("--db", str(db), "eligible", *MONTH, "--rules", str(rules), "--strict", "--format", "csv")
    assert strict.exit_code == int(ExitCode.STRICT_WARNING)
    plain = invoke("--db", str(db), "eligible", *MONTH, "--no-record", "--format", "csv")
    assert "timezone" not in plain.stderr


@pytest.mark.parametrize("command", ["eligible", "score"])
def test_a_list_that_cannot_be_written_is_not_recorded(
    invoke: Callable[..., Any], loaded: Path, tmp_path: Path, command: str
) -> None:
    """The run is recorded once its output is written: a full disk (exit 1) records nothing, so `budget`
    and `history` never read a list nobody received as the published one."""
    db = tmp_path / "c.duckdb"
    db.write_bytes(loaded.read_bytes())
    full = invoke("--db", str(db), command, *MONTH, "--format", "csv", "-o", "/dev/full")
    assert full.exit_code == int(ExitCode.INTERNAL) and "No space left on device" in full.output
    assert _runs(db) == 0
    out = tmp_path / "list.csv"
    ok = invoke("--db", str(db), command, *MONTH, "-o", str(out))
    assert ok.exit_code == 0, ok.output
    assert out.exists() and _runs(db) == 1 and "Recorded as run 1" in ok.stderr
