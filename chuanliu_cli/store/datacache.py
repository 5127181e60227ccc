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
#: The table of an entry that holds the load's warnings and the columns of every table as stored (not a
#: table of the schema: dropped once read).
_ABOUT = "chuanliu_cached_about"
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


def has(entry: str) -> bool:
    """Whether an entry is kept under `entry` (restore may still find it unusable)."""
    path = _path(entry)
    return path is not None and path.is_file()


def _columns(con: duckdb.DuckDBPyConnection, database: str) -> list[str]:
    """`table.column type` of every column of the database's tables, in order."""
    rows = con.execute(
        "SELECT table_name || '.' || column_name || ' ' || data_type FROM duckdb_columns() "
        "WHERE database_name = ? AND schema_name = 'main' AND table_name <> ? "
        "ORDER BY table_name, column_index",
        [database, _ABOUT],
    ).fetchall()
    return [str(r[0]) for r in rows]


def restore(con: duckdb.DuckDBPyConnection, entry: str) -> list[str] | None:
    """Copy the entry's database (schema, rows, sequences) into `con`, a fresh in-memory connection with
    nothing in it, and return the load's warnings; None when there is no usable entry: the caller then
    closes `con` (it may hold part of a copy) and loads the files into a new database."""
    from chuanliu_cli.store.database import SCHEMA_VERSION, schema_version

    path = _path(entry)
    if path is None:
        return None
    try:
        info = path.lstat()
    except OSError:
        return None
    if not cache.trusted(info):
        return None  # a link, or not ours: not to be trusted
    here = str(con.execute("SELECT current_database()").fetchone()[0])  # type: ignore[index]
    name = "chuanliu_cached"
    try:
        con.execute(f"ATTACH {literal(str(path))} AS {name} (READ_ONLY)")
    except Exception:  # a damaged or foreign file is a miss
        return None
    try:
        con.execute(f"COPY FROM DATABASE {name} TO {ident(here)}")
        about = con.execute(f"SELECT kind, text FROM {_ABOUT} ORDER BY kind, n").fetchall()
        con.execute(f"DROP TABLE {_ABOUT}")
        if schema_version(con) != SCHEMA_VERSION or [t for k, t in about if k == "column"] != _columns(
            con, here
        ):
            return None  # (another schema: the build's fingerprint should have told; never half of one)
        return [str(t) for k, t in about if k == "warning"]
    except Exception:
        return None
    finally:
        with contextlib.suppress(Exception):
            con.execute(f"DETACH {name}")


def store(con: duckdb.DuckDBPyConnection, entry: str, warnings: Sequence[str]) -> None:
    """Keep `con`'s database (a `--data` load just committed: schema, rows and sequences) and the load's
    warnings under `entry`; a cache that cannot be written is left alone."""
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
        con.execute(f"COPY FROM DATABASE {ident(here)} TO {name}")
        about = [("warning", w) for w in warnings] + [("column", c) for c in _columns(con, here)]
        con.execute(f"CREATE TABLE {name}.main.{_ABOUT} (kind VARCHAR, n INTEGER, text VARCHAR)")
        values = ", ".join(f"({literal(k)}, {i}, {literal(t)})" for i, (k, t) in enumerate(about))
        con.execute(f"INSERT INTO {name}.main.{_ABOUT} VALUES {values}")
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
