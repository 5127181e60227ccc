"""A run recorded while its output is written: the rows go into the database in a thread, and are committed
only once the caller's block (writing the list) has ended without an error.

`eligible` records its run after writing the list, so that a list that could not be written (a full disk)
is never recorded as published. At platform scale both halves are long (2.7M products: the insert 1.5 s,
their csv 0.9 s) and they use different workers: DuckDB inserts in its own threads without Python's lock
while polars writes the file. So the insert starts before the output and waits for it at the commit. An
error or a signal in the block calls the insert off (its wait for the database's lock, or at its commit)
and nothing is recorded; the block's error is what is raised.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chuanliu_cli.errors import ChuanliuError, first_line
from chuanliu_cli.store.database import Cancelled, open_database
from chuanliu_cli.store.runs import record_run

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from datetime import datetime

    from chuanliu_cli.scoring.pipeline import RunResult
    from chuanliu_cli.store.runs import Inputs


@dataclass
class Recorded:
    """The run id of a recording, set once its block has ended and the run is committed."""

    run_id: int | None = None


@contextlib.contextmanager
def recording(
    db_path: str,
    wait: float,
    memory_limit: str | None,
    run: RunResult,
    scorecard: str,
    command: str,
    inputs: Inputs,
    started: datetime,
) -> Iterator[Recorded]:
    """Record `run`'s `scorecard` (store/runs.record_run) while the block runs; commit when it ends well."""
    recorded = Recorded()
    ended = threading.Event()  # the block is over: commit, unless called off
    called_off = threading.Event()
    state: dict[str, Any] = {}

    def before_commit() -> None:
        ended.wait()
        if called_off.is_set():
            raise Cancelled("the output was not written")

    finished = threading.Event()  # the thread is done with the database (set last, whatever happened)

    def insert() -> None:
        import duckdb

        try:
            with open_database(db_path, "write", wait, memory_limit, cancel=called_off) as handle:
                if called_off.is_set():
                    raise Cancelled("the output was not written")
                state["run_id"] = record_run(
                    handle.con, run, scorecard, command, inputs, started, before_commit
                )
        except duckdb.Error as exc:  # (a full disk, a read-only file: the machine's, not a bug)
            state["error"] = ChuanliuError(
                f"cannot record the run in {db_path}: {first_line(exc)}",
                hint="free space or permissions there, then run the command again to record it",
            )
        except BaseException as exc:  # handed to the caller's thread
            state["error"] = exc
        finally:
            finished.set()

    def call_off() -> None:
        # The wait for the lock stops at once; an insert in progress finishes (at most the insert's time:
        # 1.5 s at 2.7M rows) and is rolled back at its commit. It is not interrupted: DuckDB's interrupt
        # from this thread could meet the commit or the connection closing in the other.
        called_off.set()
        ended.set()

    thread = threading.Thread(target=insert, name="chuanliu-record")
    thread.start()
    try:
        yield recorded
    except BaseException:
        call_off()
        raise
    finally:
        ended.set()  # (the block's end: commit, unless called off above)
        _wait_for(finished, call_off)
        thread.join()
    error = state.get("error")
    if error is not None:
        raise error
    recorded.run_id = state["run_id"]


def _wait_for(finished: threading.Event, call_off: Callable[[], None]) -> None:
    """Wait until the insert's thread is done with the database; a signal meanwhile (Ctrl-C, SIGTERM) calls
    the insert off, waits on, and is raised then: the process never leaves with the thread inside DuckDB.
    (Not Thread.join: on Python 3.11 a signal that interrupts join() marks the thread stopped while it
    still runs; the interpreter then exits under it and DuckDB aborts the process: measured, exit 134.)"""
    stopped: BaseException | None = None
    while not finished.is_set():
        try:
            finished.wait(0.1)
        except BaseException as exc:
            stopped = stopped or exc
            call_off()
    if stopped is not None:
        raise stopped
