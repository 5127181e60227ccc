"""A cache of what `--data DIR` loads: the in-memory database of a folder of exports, kept as a DuckDB file.

Every command on `--data DIR` validates and converts the whole folder again (the sample's 22,000 rows: 0.4 s
of a 1 s command). When the same files were loaded before by this build of chuanliu, the tables that load
wrote, and the warnings it gave, are copied from the cache instead.

An entry is keyed (rules/cache.key: this build's fingerprint first) by DuckDB's version, the load's options,
and each file's table, path as given, size and the sha256 of its bytes: an edited, replaced or touched-up
file, another folder spelling or another build never meets an old entry. Anything wrong with an entry (a
damaged or foreign file, a table that does not fit) means the folder is loaded as before: the cache can make
`--data` faster, never give it other rows or other warnings. Folders larger than MAX_INPUT_BYTES are not
kept (their load dwarfs the fixed cost, and a copy would double their disk use); at most KEEP entries are
kept, the least recently written removed first. The directory is the ruleset cache's (`CHUANLIU_CACHE_DIR`;
`off` turns both off).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from chuanliu_cli.rules import cache
from chuanliu_cli.sqltext import ident, literal

if TYPE_CHECKING:
    from collections.abc import Sequence

    import duckdb

#: Folders whose files add up to more than this are loaded every time (64 MiB: about 500,000 orders as CSV).
MAX_INPUT_BYTES = 64 * 2**20
#: Entries kept; writing one more removes the oldest.
KEEP = 8
#: The table of an entry that holds the load's warnings (neither is a table of the schema).
_WARNINGS = "chuanliu_cached_warnings"
#: The table of an entry that holds each sequence's last value as the load left it.
_SEQUENCES = "chuanliu_cached_sequences"
_PREFIX = "data-"
_SUFFIX = ".duckdb"


def entry_key(items: Sequence[tuple[str, Path]], options: object) -> str | None:
    """The entry of loading `items` (table, path) with `options` (LoadOptions), or None when the cache is
    off, the files add up to more than MAX_INPUT_BYTES or one cannot be read."""
    import duckdb

    if cache.directory() is None:
        return None
    parts: list[str] = [duckdb.__version__, repr(options)]
    total = 0
    try:
        for table, path in items:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                total += size
                if total > MAX_INPUT_BYTES:
                    return None
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            parts += [table, str(path), str(size), digest]
    except OSError:
        return None
    return cache.key("data", *parts)


def _path(entry: str) -> Path | None:
    where = cache.directory()
    return None if where is None else where / f"{_PREFIX}{entry}{_SUFFIX}"


def _tables(con: duckdb.DuckDBPyConnection, database: str) -> list[str]:
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main' "
        "AND NOT temporary ORDER BY table_name",
        [database],
    ).fetchall()
    return [str(r[0]) for r in rows]


def _sequences(con: duckdb.DuckDBPyConnection, database: str) -> dict[str, int | None]:
    rows = con.execute(
        "SELECT sequence_name, last_value FROM duckdb_sequences() "
        "WHERE database_name = ? AND schema_name = 'main'",
        [database],
    ).fetchall()
    return {str(name): (None if last is None else int(last)) for name, last in rows}


def restore(con: duckdb.DuckDBPyConnection, entry: str) -> list[str] | None:
    """Copy the entry's tables into `con` (a fresh, migrated, empty in-memory database) and return the
    load's warnings; None when there is no usable entry (then `con` is as it was, or must be discarded:
    the caller starts again from a fresh database)."""
    path = _path(entry)
    if path is None:
        return None
    try:
        info = path.stat()
    except OSError:
        return None
    if info.st_uid != os.geteuid():
        return None  # not ours to trust
    here = str(con.execute("SELECT current_database()").fetchone()[0])  # type: ignore[index]
    name = "chuanliu_cached"
    try:
        con.execute(f"ATTACH {literal(str(path))} AS {name} (READ_ONLY)")
    except Exception:  # a damaged or foreign file is a miss
        return None
    try:
        cached, wanted = _tables(con, name), _tables(con, here)
        if sorted(t for t in cached if t not in (_WARNINGS, _SEQUENCES)) != wanted:
            return None  # (another schema: the fingerprint should have told; never copy half of it)
        con.execute("BEGIN TRANSACTION")
        try:
            for table in wanted:  # (a new database has rows too: its schema version)
                con.execute(f"DELETE FROM {ident(table)}")
                con.execute(f"INSERT INTO {ident(table)} BY NAME SELECT * FROM {name}.main.{ident(table)}")
            for seq, last in con.execute(f"SELECT name, last FROM {name}.main.{_SEQUENCES}").fetchall():
                if last is not None:  # the next id as the load left it (a sequence starts at 1)
                    con.execute(f"SELECT max(nextval({literal(seq)})) FROM range({int(last)})")
            rows = con.execute(f"SELECT text FROM {name}.main.{_WARNINGS} ORDER BY n").fetchall()
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return [str(r[0]) for r in rows]
    except Exception:
        return None
    finally:
        with contextlib.suppress(Exception):
            con.execute(f"DETACH {name}")


def store(con: duckdb.DuckDBPyConnection, entry: str, warnings: Sequence[str]) -> None:
    """Keep `con`'s tables (a `--data` load just committed) and its warnings under `entry`; a cache that
    cannot be written is left alone."""
    path = _path(entry)
    if path is None:
        return
    here = str(con.execute("SELECT current_database()").fetchone()[0])  # type: ignore[index]
    name = "chuanliu_storing"
    fd, tmp = tempfile.mkstemp(prefix=f".{_PREFIX}", suffix=_SUFFIX, dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # (DuckDB creates the file itself: an empty one is not a database)
    attached = False
    try:
        con.execute(f"ATTACH {literal(tmp)} AS {name}")
        attached = True
        for table in _tables(con, here):
            con.execute(f"CREATE TABLE {name}.main.{ident(table)} AS SELECT * FROM {ident(table)}")
        con.execute(f"CREATE TABLE {name}.main.{_SEQUENCES} (name VARCHAR, last BIGINT)")
        for seq, last in _sequences(con, here).items():
            con.execute(f"INSERT INTO {name}.main.{_SEQUENCES} VALUES (?, ?)", [seq, last])
        con.execute(f"CREATE TABLE {name}.main.{_WARNINGS} (n INTEGER, text VARCHAR)")
        if warnings:
            values = ", ".join(f"({i}, {literal(w)})" for i, w in enumerate(warnings))
            con.execute(f"INSERT INTO {name}.main.{_WARNINGS} VALUES {values}")
        con.execute(f"DETACH {name}")
        attached = False
        if Path(tmp + ".wal").exists():
            raise OSError("left a log")
        os.replace(tmp, path)
    except Exception:
        if attached:
            with contextlib.suppress(Exception):
                con.execute(f"DETACH {name}")
        for leftover in (tmp, tmp + ".wal"):
            with contextlib.suppress(OSError):
                os.unlink(leftover)
        return
    _evict(path.parent)


def _evict(where: Path) -> None:
    """Remove all but the KEEP newest entries."""
    try:
        found = [(p.stat().st_mtime_ns, p) for p in where.glob(f"{_PREFIX}*{_SUFFIX}")]
    except OSError:
        return
    for _, old in sorted(found, reverse=True)[KEEP:]:
        with contextlib.suppress(OSError):
            old.unlink()
