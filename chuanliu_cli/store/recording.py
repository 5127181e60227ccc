"""A run recorded while its output is written: the rows go into the database in a thread, and are committed
only once the caller's block (writing the list) has ended without an error.

`eligible` records its run after writing the list, so that a list that could not be written (a full disk)
is never recorded as published. At platform scale both halves are long (2.7M products: the insert 1.5 s,
their csv 0.9 s) and they use different workers: DuckDB inserts in its own threads without Python's lock
while polars writes the file. So the insert starts before the output and waits for it at the commit. An
error or a signal in the block calls the insert off (its wait for the database's lock, the insert itself
interrupted, or at the latest its commit) and nothing is recorded; the block's error is what is raised.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chuanliu_cli.store.database import Cancelled, open_database
from chuanliu_cli.store.runs import record_run

if TYPE_CHECKING:
    from collections.abc import Iterator
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

    def insert() -> None:
        try:
            with open_database(db_path, "write", wait, memory_limit, cancel=called_off) as handle:
                state["con"] = handle.con
                if called_off.is_set():
                    raise Cancelled("the output was not written")
                state["run_id"] = record_run(
                    handle.con, run, scorecard, command, inputs, started, before_commit
                )
        except BaseException as exc:  # handed to the caller's thread
            state["error"] = exc

    def call_off() -> None:
        called_off.set()
        ended.set()
        con = state.get("con")
        if con is not None:
            with contextlib.suppress(Exception):
                con.interrupt()  # an insert in progress stops; one not yet begun stops at the commit

    thread = threading.Thread(target=insert, name="chuanliu-record")
    thread.start()
    try:
        yield recorded
    except BaseException:
        call_off()
        _wait_for(thread, call_off)
        raise
    ended.set()
    _wait_for(thread, call_off)
    error = state.get("error")
    if error is not None:
        raise error
    recorded.run_id = state["run_id"]


def _wait_for(thread: threading.Thread, call_off: Any) -> None:
    """Join `thread`; a signal meanwhile (Ctrl-C, SIGTERM) calls the insert off, waits for it to stop, and is
    raised then: the process never leaves with a transaction half-done."""
    stopped: BaseException | None = None
    while thread.is_alive():
        try:
            thread.join()
        except BaseException as exc:
            stopped = stopped or exc
            call_off()
    if stopped is not None:
        raise stopped
