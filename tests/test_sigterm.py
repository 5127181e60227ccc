"""SIGTERM (cron's timeout, `kill`, a container stopping) unwinds like Ctrl-C: exit 143, one line on stderr,
no temp file left beside the output, the file it replaces untouched, a load rolled back."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parent.parent

# Runs the CLI with one function replaced by one that sends the process SIGTERM half-way through its work
# (deterministic: no race with a timer).
_DRIVER = textwrap.dedent(
    """
    import os, signal, sys
    import {module} as target

    real = target.{function}

    def half_way(*args, **kwargs):
        {before}
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    target.{function} = half_way
    from chuanliu_cli.cli.app import main
    sys.argv = ["chuanliu", *sys.argv[1:]]
    main()
    """
)


def _run(
    tmp_path: Path, module: str, function: str, args: list[str], before: str = "pass"
) -> subprocess.CompletedProcess[str]:
    driver = tmp_path / "driver.py"
    driver.write_text(_DRIVER.format(module=module, function=function, before=before), encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(driver), *args], capture_output=True, text=True, cwd=REPO, timeout=120
    )


def test_sigterm_while_writing_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    out = tmp_path / "list.csv"
    out.write_text("the list of last month\n", encoding="utf-8")
    done = _run(
        tmp_path,
        "chuanliu_cli.present.writers",
        "write_entities_csv",
        ["-q", "eligible", "--data", "sample_data", "--month", "2023-05", "-o", str(out)],
        before="args[0].write(b'rank,shop_id\\n1,half')",
    )
    assert done.returncode == 143, done.stderr
    assert done.stderr.strip() == "Error: terminated (SIGTERM): nothing half-written"
    assert out.read_text(encoding="utf-8") == "the list of last month\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["driver.py", "list.csv"]


def test_sigterm_during_a_load_rolls_it_back(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    first = subprocess.run(
        [sys.executable, "-m", "chuanliu_cli", "-q", "--db", str(db), "load", "sample_data/shops.csv"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert first.returncode == 0, first.stderr
    done = _run(
        tmp_path,
        "chuanliu_cli.ingest.loader",
        "_write_rejects",  # (after every file's rows are in, before COMMIT)
        ["-q", "--db", str(db), "load", "--dir", "sample_data"],
    )
    assert done.returncode == 143, done.stderr
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM orders").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM loads").fetchone() == (1,)  # the shops' load alone
    finally:
        con.close()


def test_sigterm_during_a_duckdb_query_is_said_as_the_signal(tmp_path: Path) -> None:
    # DuckDB, running a query in the main thread when the signal comes, stops it and raises its own
    # RuntimeError("Query interrupted") in place of the signal's exception (seen on the platform database
    # with `timeout -s TERM 1`). Whether it stops at once depends on the machine's load (a busy machine
    # runs the query out first), so the driver raises what DuckDB raises, deterministically: still exit
    # 143 and the signal's line, never "internal error".
    driver = tmp_path / "driver.py"
    driver.write_text(
        textwrap.dedent(
            """
            import os, signal, sys, time
            from chuanliu_cli.engines.duckdb import DuckDBEngine

            def interrupted_query(self, sql, order_by=None):
                try:
                    os.kill(os.getpid(), signal.SIGTERM)
                    time.sleep(10)  # the handler raises here
                except KeyboardInterrupt:
                    raise RuntimeError("Query interrupted") from None
                raise AssertionError("the signal was not handled")

            DuckDBEngine.query = interrupted_query
            from chuanliu_cli.cli.app import main
            sys.argv = ["chuanliu", *sys.argv[1:]]
            main()
            """
        ),
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, str(driver), "-q", "eligible", "--data", "sample_data", "--month", "2023-05"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 143, done.stderr
    assert done.stderr.strip() == "Error: terminated (SIGTERM): nothing half-written"


@pytest.mark.parametrize("source", ["database", "data"])
def test_sigterm_stops_a_long_query_on_a_busy_machine(tmp_path: Path, source: str) -> None:
    # On a busy machine DuckDB does not notice the signal itself (the main thread waits for its workers):
    # the signal's watcher interrupts the query. A query of minutes is stopped within seconds while
    # another process keeps both cores busy: on a database file, and on `--data`'s in-memory database.
    from chuanliu_cli.api import Session

    if source == "database":
        db = str(tmp_path / "c.duckdb")
        Session(db=db).load(directory=REPO / "sample_data")
        reads = ["--db", db]
    else:
        reads = []
    driver = tmp_path / "driver.py"
    driver.write_text(
        textwrap.dedent(
            """
            import os, subprocess, sys
            from chuanliu_cli.engines.duckdb import DuckDBEngine

            def long_query(self, sql, order_by=None):
                subprocess.Popen(["sh", "-c", f"sleep 0.5; kill -TERM {os.getpid()}"])
                return self.con.execute("SELECT sum(x) FROM range(100000000000) AS t(x)").fetchall()

            DuckDBEngine.query = long_query
            from chuanliu_cli.cli.app import main
            sys.argv = ["chuanliu", *sys.argv[1:]]
            main()
            """
        ),
        encoding="utf-8",
    )
    busy = (
        "import duckdb; duckdb.connect().execute('SELECT sum(x) FROM range(100000000000) AS t(x)').fetchall()"
    )
    hog = subprocess.Popen([sys.executable, "-c", busy])
    try:
        time.sleep(0.5)
        begun = time.monotonic()
        done = subprocess.run(
            [sys.executable, str(driver), "-q", *reads, "eligible", "--month", "2023-05", "--no-record"]
            + (["--data", "sample_data"] if source == "data" else []),
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
        )
        took = time.monotonic() - begun
    finally:
        hog.kill()
        hog.wait()
    assert done.returncode == 143, done.stderr
    assert done.stderr.strip() == "Error: terminated (SIGTERM): nothing half-written"
    assert took < 20, f"the query ran {took:.0f} s after the signal"
