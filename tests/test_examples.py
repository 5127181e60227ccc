"""The cron example script runs end to end and fails with chuanliu's exit code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

SCRIPT = REPO / "examples" / "monthly-rewards.sh"


def _env(tmp_path: Path, exports: Path) -> dict[str, str]:
    chuanliu = Path(sys.executable).parent / "chuanliu"
    return {
        **os.environ,
        "EXPORTS": str(exports),
        "CHUANLIU_DB": str(tmp_path / "cron.duckdb"),
        "OUT": str(tmp_path / "out"),
        "CHUANLIU": str(chuanliu),
    }


def test_monthly_script_writes_four_files(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    shutil.copytree(REPO / "sample_data", exports / "2023-05")
    done = subprocess.run(
        ["bash", str(SCRIPT), "2023-05"], env=_env(tmp_path, exports), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and "Error" not in done.stderr
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [
        "chuanliu-merchant-2023-05.csv",
        "chuanliu-merchant-2023-05.json",
        "chuanliu-promoter-2023-05.csv",
        "chuanliu-promoter-2023-05.json",
    ]
    assert (
        (tmp_path / "out" / "chuanliu-merchant-2023-05.csv")
        .read_text()
        .startswith("shop_id,name,group_id,category,rank")
    )


def test_monthly_script_stops_on_incomplete_month(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    shutil.copytree(REPO / "sample_data", exports / "2023-06")  # no June data in it: incomplete
    done = subprocess.run(
        ["bash", str(SCRIPT), "2023-06"], env=_env(tmp_path, exports), capture_output=True, text=True
    )
    assert done.returncode == 6, done.stderr
    assert "is incomplete" in done.stderr
    assert not list((tmp_path / "out").iterdir())


def test_monthly_script_stops_on_a_warning_and_writes_nothing(tmp_path: Path) -> None:
    """Exports without the carrier column: no order is a live-room order, so the `active` gate would be
    passed by nobody and the list empty with exit 0; the load's --strict stops the job with exit 7 instead,
    before anything is written to the database or the output folder."""
    import csv

    exports = tmp_path / "exports" / "2023-05"
    shutil.copytree(REPO / "sample_data", exports)
    with (REPO / "sample_data" / "orders.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    drop = rows[0].index("carrier")
    with (exports / "orders.csv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([c for i, c in enumerate(row) if i != drop] for row in rows)
    done = subprocess.run(
        ["bash", str(SCRIPT), "2023-05"],
        env=_env(tmp_path, tmp_path / "exports"),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 7, done.stderr
    assert "in strict mode; nothing was written" in done.stderr
    assert "no column carrier" in done.stderr
    assert not (tmp_path / "cron.duckdb").exists()  # the refused first load left no database
    assert not list((tmp_path / "out").iterdir())
