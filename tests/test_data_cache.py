"""The cache of `--data DIR`'s load (store/datacache.py): a hit gives the database and the warnings a load of
the same files gives; any change of a file, or anything odd about an entry, is a miss and the files load."""

from __future__ import annotations

import os
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from chuanliu_cli.api import Session
from chuanliu_cli.ingest.discover import discover_with_warnings
from chuanliu_cli.ingest.loader import LoadOptions, load_files, load_warnings
from chuanliu_cli.rules import cache
from chuanliu_cli.store import datacache
from chuanliu_cli.store.database import memory_database

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "sample_data"
BAD_ROW = "bad1,ks700001,b1,,,self,live,not a time,1,1,completed,,,\n"


@pytest.fixture
def where(private_cache: Path) -> Path:
    return private_cache


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """The sample data with one order that is rejected (so that the load warns)."""
    folder = tmp_path / "data"
    shutil.copytree(DATA, folder)
    with (folder / "orders.csv").open("a", encoding="utf-8") as f:
        f.write(BAD_ROW)
    return folder


def _entries(where: Path) -> list[Path]:
    return sorted(where.glob("data-*.duckdb"))


def _snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, object]:
    """Every table's rows (sorted, the load's times left out: they say when it ran) and every sequence's
    next value."""
    out: dict[str, object] = {}
    tables = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'memory' ORDER BY table_name"
    ).fetchall()
    for (table,) in tables:
        columns = [
            str(r[0])
            for r in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = 'memory' AND table_name = ?",
                [table],
            ).fetchall()
            if str(r[0]) not in {"loaded_at", "started_at", "finished_at"}
        ]
        quoted = ", ".join(f'"{c}"' for c in columns)
        rows = con.execute(f'SELECT {quoted} FROM "{table}"')
        out[table] = sorted(rows.fetchall(), key=repr)
    for name, last in con.execute("SELECT sequence_name, last_value FROM duckdb_sequences()").fetchall():
        out[f"sequence {name}"] = last
    return out


def _fresh(folder: Path) -> tuple[dict[str, object], list[str]]:
    db = memory_database()
    items, _ = discover_with_warnings(folder)
    warnings = load_warnings(load_files(db, items, LoadOptions()))
    return _snapshot(db.con), warnings


def test_a_restored_load_is_the_load(where: Path, data: Path) -> None:
    expected, warned = _fresh(data)
    assert any("row(s) rejected" in w for w in warned) and expected["orders"]
    items, _ = discover_with_warnings(data)
    entry = datacache.entry_key(items, LoadOptions())
    assert entry is not None
    db = memory_database()
    assert datacache.restore(memory_database(schema=False).con, entry) is None  # nothing kept yet
    datacache.store(db.con, entry, ["w1", "w2"])  # (an empty database: what matters is what comes back)
    again = memory_database(schema=False)
    assert datacache.restore(again.con, entry) == ["w1", "w2"]

    loaded = memory_database()
    load_files(loaded, items, LoadOptions())
    datacache.store(loaded.con, entry, warned)
    assert len(_entries(where)) == 1
    restored = memory_database(schema=False)
    assert datacache.restore(restored.con, entry) == warned
    assert _snapshot(restored.con) == expected
    constraints = "SELECT count(*) FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'"
    assert (
        restored.con.execute(constraints).fetchone() == memory_database().con.execute(constraints).fetchone()
    )
    # the next load id is the one a fresh load leaves
    assert restored.con.execute("SELECT nextval('load_id_seq')").fetchone() == (len(items) + 1,)


def test_a_session_on_the_same_folder_gives_the_same_list_and_warnings(where: Path, data: Path) -> None:
    with Session(data=data) as s:
        first = s.eligible("2023-05", record=False)
    assert len(_entries(where)) == 1
    with Session(data=data) as s:
        again = s.eligible("2023-05", record=False)
    assert again.warnings == first.warnings
    assert any("row(s) rejected" in w for w in again.warnings)
    assert again.frame.equals(first.frame)
    assert len(_entries(where)) == 1


def _paid(data: Path, order_id: str) -> object:
    with Session(data=data) as s, s._source() as con:
        return con.execute("SELECT paid_amount FROM orders WHERE order_id = ?", [order_id]).fetchone()


def test_a_changed_file_is_loaded_again_even_with_its_size_and_time(where: Path, data: Path) -> None:
    orders = data / "orders.csv"
    header, first, rest = orders.read_text(encoding="utf-8").split("\n", 2)
    cells = first.split(",")
    assert _paid(data, cells[0]) == (Decimal(cells[9]),)
    info = orders.stat()
    # the first order's paid amount, its first digit changed: the same size, the same mtime
    cells[9] = ("9" if cells[9][0] != "9" else "8") + cells[9][1:]
    orders.write_text("\n".join([header, ",".join(cells), rest]), encoding="utf-8")
    os.utime(orders, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert orders.stat().st_size == info.st_size
    assert _paid(data, cells[0]) == (Decimal(cells[9]),)
    assert len(_entries(where)) == 2  # another entry: the file's bytes are part of the key
    assert _paid(data, cells[0]) == (Decimal(cells[9]),)  # (from the cache now)


def test_a_damaged_or_foreign_entry_is_a_miss(where: Path, data: Path) -> None:
    with Session(data=data) as s:
        first = s.eligible("2023-05", record=False)
    (entry,) = _entries(where)
    entry.write_bytes(b"not a database" * 100)
    with Session(data=data) as s:
        again = s.eligible("2023-05", record=False)
    assert again.frame.equals(first.frame) and again.warnings == first.warnings


@pytest.mark.parametrize(
    "change",
    [
        "DROP TABLE shops",
        "ALTER TABLE orders DROP COLUMN carrier",
        "UPDATE chuanliu_meta SET value = '1' WHERE key = 'schema_version'",
    ],
)
def test_an_entry_of_another_schema_is_never_used(where: Path, data: Path, change: str) -> None:
    items, _ = discover_with_warnings(data)
    entry = datacache.entry_key(items, LoadOptions())
    assert entry is not None
    db = memory_database()
    load_files(db, items, LoadOptions())
    datacache.store(db.con, entry, [])
    (path,) = _entries(where)
    con = duckdb.connect(str(path))
    con.execute(change)
    con.close()
    assert datacache.restore(memory_database(schema=False).con, entry) is None
    with Session(data=data) as s:  # the folder loads instead, as without the cache
        assert s.eligible("2023-05", record=False).frame.height > 0


def test_no_entry_when_the_cache_is_off_or_the_folder_is_large(
    where: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items, _ = discover_with_warnings(data)
    monkeypatch.setattr(datacache, "MAX_INPUT_BYTES", sum(p.stat().st_size for _, p in items) - 1)
    assert datacache.entry_key(items, LoadOptions()) is None
    with Session(data=data) as s:
        s.eligible("2023-05", record=False)
    assert _entries(where) == []
    monkeypatch.undo()
    monkeypatch.setenv("CHUANLIU_CACHE_DIR", "off")
    cache.directory.cache_clear()
    assert datacache.entry_key(items, LoadOptions()) is None


def test_the_options_and_the_paths_are_part_of_the_key(where: Path, data: Path) -> None:
    items, _ = discover_with_warnings(data)
    keys = {
        datacache.entry_key(items, LoadOptions()),
        datacache.entry_key(items, LoadOptions(timezone="UTC")),
        datacache.entry_key([(t, Path(os.path.relpath(p))) for t, p in items], LoadOptions()),
    }
    assert None not in keys and len(keys) == 3


def test_only_the_newest_entries_are_kept(where: Path, data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datacache, "KEEP", 2)
    db = memory_database()
    for i in range(4):
        datacache.store(db.con, f"{i:064x}", [])
        os.utime(where / f"data-{i:064x}.duckdb", ns=(i * 10**9, i * 10**9))
    datacache.store(db.con, f"{9:064x}", [])
    assert [p.name for p in _entries(where)] == [f"data-{3:064x}.duckdb", f"data-{9:064x}.duckdb"]


def test_an_entry_that_is_a_link_is_a_miss(where: Path, data: Path) -> None:
    """rules/cache.trusted, the one check of every entry: a link is never read, even to a good entry."""
    items, _ = discover_with_warnings(data)
    key = datacache.entry_key(items, LoadOptions())
    assert key is not None
    db = memory_database()
    warnings = load_warnings(load_files(db, items, LoadOptions()))
    datacache.store(db.con, key, warnings)
    (entry,) = _entries(where)
    real = entry.with_name("elsewhere.duckdb")
    entry.rename(real)
    entry.symlink_to(real)
    assert datacache.has(key)
    assert datacache.restore(memory_database(schema=False).con, key) is None
    entry.unlink()
    real.rename(entry)
    assert datacache.restore(memory_database(schema=False).con, key) == warnings  # the file itself is good
