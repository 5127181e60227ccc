"""A cache of the work that depends only on a ruleset file's bytes and on this code: the parsed ruleset, its
schema check, the scorecards a result needs and the compiled metric queries.

Every entry is keyed by the sha256 of (the code's fingerprint, the file's bytes, the path it was read as, and
the question asked), so an edited ruleset, another path or another build of chuanliu never meets an old
entry. Any problem with the cache (no home directory, a read-only disk, a damaged or foreign file) means the
work is done as before: the cache can make a command faster, never give it another answer.

The directory is `$CHUANLIU_CACHE_DIR`, else `$XDG_CACHE_HOME/chuanliu`, else `~/.cache/chuanliu`;
`CHUANLIU_CACHE_DIR=off` turns the cache off. Entries are pickles, so the directory must be this user's own
and writable by nobody else, or it is not used (as pip does with its cache).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import pickle
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: Entries are at most this large (a ruleset is at most 1 MB of YAML; its model is a few times that).
_MAX_ENTRY_BYTES = 16 * 1024 * 1024


@functools.cache
def directory() -> Path | None:
    """The cache directory, created private to this user; None when the cache is off or unusable."""
    configured = os.environ.get("CHUANLIU_CACHE_DIR")
    if configured is not None and configured.strip().lower() in {"", "off", "0", "no", "false"}:
        return None
    if configured:
        path = Path(configured)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "chuanliu"
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.stat()
    except (OSError, RuntimeError):  # RuntimeError: no home directory
        return None
    if info.st_uid != os.geteuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return None  # another user could plant entries: not ours to trust
    return path


@functools.cache
def code_fingerprint() -> str:
    """What identifies this build of chuanliu: its version and every module's path, size and mtime."""
    from chuanliu_cli import __version__

    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256(__version__.encode())
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith((".py", ".yaml", ".j2")):
                with contextlib.suppress(OSError):
                    st = os.stat(os.path.join(dirpath, name))
                    digest.update(f"{dirpath}/{name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def key(*parts: str | bytes) -> str:
    """The entry key of `parts` (the file's bytes, its path, the question) for this build."""
    digest = hashlib.sha256(code_fingerprint().encode())
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def model_digest(value: Any) -> str:
    """A digest of an in-memory model (a Ruleset, perhaps built or changed in code rather than read from a
    file): the sha256 of its repr, which for the frozen dataclasses of rules/model.py spells out every
    field that matters. Equal digests mean equal content; a changed model gets another."""
    return hashlib.sha256(repr(value).encode("utf-8")).hexdigest()


def trusted(info: os.stat_result) -> bool:
    """Whether an entry, as `os.lstat` or `os.fstat` of a file opened without following links sees it, is
    one to read: a regular file of this user's (never a link, never another user's). The one check of
    every entry of the cache directory (this module's pickles, store/datacache.py's databases)."""
    return stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid()


def get(kind: str, entry: str) -> Any | None:
    """The value stored under (kind, entry), or None (missing, unreadable, damaged, not ours)."""
    where = directory()
    if where is None:
        return None
    path = where / f"{kind}-{entry}.pickle"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not trusted(info) or info.st_size > _MAX_ENTRY_BYTES:
            return None
        with os.fdopen(fd, "rb") as f:
            fd = -1
            stored_kind, stored_entry, value = pickle.load(f)
        return value if (stored_kind, stored_entry) == (kind, entry) else None
    except Exception:  # a damaged entry is a miss
        return None
    finally:
        if fd >= 0:
            os.close(fd)


def put(kind: str, entry: str, value: Any) -> None:
    """Store `value` under (kind, entry), atomically; a cache that cannot be written is left alone."""
    where = directory()
    if where is None:
        return
    try:
        data = pickle.dumps((kind, entry, value), protocol=pickle.HIGHEST_PROTOCOL)
        if len(data) > _MAX_ENTRY_BYTES:
            return
        fd, tmp = tempfile.mkstemp(prefix=f".{kind}-", suffix=".tmp", dir=where)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, where / f"{kind}-{entry}.pickle")
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except (OSError, pickle.PicklingError, TypeError, AttributeError, RecursionError):
        return


def remembered(kind: str, question: str | tuple[str, ...], compute: Callable[[], T]) -> T:
    """`compute()` for `question` (an expression's text, or parts such as a model digest, a scorecard and
    a period), from the cache when this build computed it before: what depends only on the question need
    not import sqlglot to parse or compile it again. A None result is never stored."""
    entry = key(kind, *((question,) if isinstance(question, str) else question))
    found = get(kind, entry)
    if found is not None:
        return found
    value = compute()
    put(kind, entry, value)
    return value
