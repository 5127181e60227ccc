"""A run recorded while its output is written (store/recording.py, Session.recording): committed only once
the block that writes the output ends well; an error in it, at any point of the insert, records nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from chuanliu_cli.api import Session
from chuanliu_cli.errors import BusyError
from chuanliu_cli.store import recording as recording_module
from chuanliu_cli.store.database import database_lock

REPO = Path(__file__).resolve().parent.parent
MAY = "2023-05"


class WriteFailed(Exception):
    """The output could not be written (what the block raises)."""


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("recording") / "r.duckdb")
    Session(db=path).load(directory=REPO / "sample_data")
    return path


@pytest.fixture
def db(loaded: str, tmp_path: Path) -> str:
    path = str(tmp_path / "r.duckdb")
    shutil.copy(loaded, path)
    return path


def _counts(db: str) -> tuple[int, int]:
    con = duckdb.connect(db, read_only=True)
    try:
        runs = con.execute("SELECT count(*) FROM runs").fetchall()[0][0]
        rows = con.execute("SELECT count(*) FROM run_results").fetchall()[0][0]
        return int(runs), int(rows)
    finally:
        con.close()


def _pending(db: str) -> tuple[Session, Any]:
    session = Session(db=db)
    scored = session.eligible(MAY, record_later=True)
    assert scored.pending is not None and scored.run_id is None
    return session, scored


def _eligible_with(tmp_path: Path, db: str, out: Path, patch: str) -> subprocess.CompletedProcess[str]:
    """`chuanliu -q --db DB eligible --month 2023-05 -o OUT` in a process where `patch` ran first."""
    driver = tmp_path / "driver.py"
    driver.write_text(
        "import os, signal, sys, time\nimport duckdb\n"
        + textwrap.dedent(patch)
        + "from chuanliu_cli.cli.app import main\nsys.argv = ['chuanliu', *sys.argv[1:]]\nmain()\n",
        encoding="utf-8",
    )
    return subprocess.run(
        [sys.executable, str(driver), "-q", "--db", db, "eligible", "--month", MAY, "-o", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def _no_recording_thread() -> bool:
    return not any(t.name == "chuanliu-record" for t in threading.enumerate())


def test_the_run_is_committed_when_the_block_ends_well(db: str) -> None:
    session, scored = _pending(db)
    written = []
    with session.recording(scored) as run:
        written.append("the list")  # the output, written while the rows go in
    assert run.result.run_id == 1 and run.result.pending is None
    assert _counts(db) == (1, scored.result.frame.height)
    assert session.record(scored).run_id == 2, "record() is the same, with nothing to write"
    assert _no_recording_thread()


def test_an_error_in_the_block_records_nothing_and_is_what_is_raised(db: str) -> None:
    session, scored = _pending(db)
    with pytest.raises(WriteFailed), session.recording(scored) as run:
        raise WriteFailed("disk full")
    assert run.result.run_id is None
    assert _counts(db) == (0, 0)
    assert _no_recording_thread()


def test_an_error_after_every_row_is_in_rolls_them_back(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # the block fails only once the insert waits for it at the commit: the rows are in, uncommitted
    at_commit = threading.Event()
    real = recording_module.record_run

    def observed(*args: Any) -> int:
        *rest, before_commit = args

        def waiting() -> None:
            at_commit.set()
            before_commit()

        return real(*rest, waiting)

    monkeypatch.setattr(recording_module, "record_run", observed)
    session, scored = _pending(db)
    with pytest.raises(WriteFailed), session.recording(scored):
        assert at_commit.wait(60), "the insert reached its commit while the block ran"
        raise WriteFailed("disk full")
    assert _counts(db) == (0, 0)
    assert _no_recording_thread()


def test_an_error_while_the_insert_waits_for_the_lock_calls_it_off(db: str) -> None:
    session, scored = _pending(db)
    session.wait = 60.0
    begun = time.monotonic()
    with database_lock(db, "write", 0.0):  # another writer holds the database
        with pytest.raises(WriteFailed), session.recording(scored):
            raise WriteFailed("disk full")
        # called off at once, not after its 60 s wait (the lock is still held here)
        assert _no_recording_thread()
    assert time.monotonic() - begun < 30
    assert _counts(db) == (0, 0)


def test_a_busy_database_is_said_after_the_output_is_written(db: str) -> None:
    session, scored = _pending(db)
    session.wait = 0.0
    written = []
    with (
        database_lock(db, "write", 0.0),
        pytest.raises(BusyError, match="is busy"),
        session.recording(scored),
    ):
        written.append("the list")
    assert written == ["the list"]
    assert _counts(db) == (0, 0)
    assert _no_recording_thread()


def test_sigterm_while_writing_the_list_records_no_run(tmp_path: Path, db: str) -> None:
    # the run's rows go in while the list is written: a list stopped half-way is not recorded as published
    out = tmp_path / "list.csv"
    out.write_text("the list of last month\n", encoding="utf-8")
    done = _eligible_with(
        tmp_path,
        db,
        out,
        """
        import chuanliu_cli.present.writers as target
        real = target.write_entities_csv
        def half_way(*args, **kwargs):
            args[0].write(b"rank,shop_id\\n1,half")
            os.kill(os.getpid(), signal.SIGTERM)
            return real(*args, **kwargs)
        target.write_entities_csv = half_way
        """,
    )
    assert done.returncode == 143, done.stderr
    assert done.stderr.strip() == "Error: terminated (SIGTERM): nothing half-written"
    assert out.read_text(encoding="utf-8") == "the list of last month\n"
    assert _counts(db) == (0, 0)


def test_the_cli_records_the_run_of_the_list_it_wrote(tmp_path: Path, db: str) -> None:
    out = tmp_path / "list.csv"
    done = subprocess.run(
        [sys.executable, "-m", "chuanliu_cli", "--db", db, "eligible", "--month", MAY, "-o", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Recorded as run 1" in done.stderr
    listed = out.read_text(encoding="utf-8").splitlines()
    runs, rows = _counts(db)
    assert runs == 1 and rows >= len(listed) - 1 > 0


def test_a_signal_while_waiting_calls_the_insert_off_and_waits_on() -> None:
    # (Thread.join on Python 3.11, interrupted by a signal, marks the thread stopped while it runs: the
    # interpreter then exits under a thread inside DuckDB, which aborts the process)
    class Finishing:
        """The insert's `finished` event: the first wait is interrupted, the third finds it set."""

        def __init__(self) -> None:
            self.waits = 0

        def is_set(self) -> bool:
            return self.waits >= 3

        def wait(self, timeout: float) -> bool:
            self.waits += 1
            if self.waits == 1:
                raise KeyboardInterrupt
            return self.is_set()

    calls: list[str] = []
    finishing = Finishing()
    with pytest.raises(KeyboardInterrupt):
        recording_module._wait_for(finishing, lambda: calls.append("off"))  # type: ignore[arg-type]
    assert calls == ["off"] and finishing.waits == 3, "called off, then waited until the insert was done"


def test_sigterm_while_the_insert_runs_ends_cleanly(tmp_path: Path, db: str) -> None:
    # the list is written, the signal comes while the run's rows are going in: exit 143, nothing
    # recorded, no abort of the process
    out = tmp_path / "list.csv"
    done = _eligible_with(
        tmp_path,
        db,
        out,
        """
        import chuanliu_cli.store.recording as target
        real = target.record_run
        def signalled(*args, **kwargs):
            time.sleep(0.3)  # the list is written meanwhile; the main thread waits for this one
            os.kill(os.getpid(), signal.SIGTERM)
            return real(*args, **kwargs)
        target.record_run = signalled
        """,
    )
    assert done.returncode == 143, done.stderr
    assert done.stderr.strip() == "Error: terminated (SIGTERM): nothing half-written"
    assert out.read_text(encoding="utf-8").startswith("shop_id,name,")
    assert _counts(db) == (0, 0)


def test_a_recording_that_fails_says_the_list_was_written(tmp_path: Path, db: str) -> None:
    # a full disk while the rows go in: the machine's, not a bug; the list is out, the run is not
    out = tmp_path / "list.csv"
    done = _eligible_with(
        tmp_path,
        db,
        out,
        """
        import chuanliu_cli.store.recording as target
        def full(*args, **kwargs):
            raise duckdb.IOException("IO Error: Could not write file: No space left on device")
        target.record_run = full
        """,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        f"Error: cannot record the run in {db}: IO Error: Could not write file: No space left on device",
        f"  the output was written to {out}; this run was not recorded",
        "Hint: free space or permissions there, then run the command again to record it",
    ]
    assert out.read_text(encoding="utf-8").startswith("shop_id,name,")
    assert _counts(db) == (0, 0)
