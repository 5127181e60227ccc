"""Which export files a directory holds, and which table each one feeds.

One set of rules for every engine (the DuckDB loader and the Spark engine call the same functions):

- hidden and system files (`.x`, `_SUCCESS`, Office's `~$x.xlsx` lock files) are skipped;
- a file needs a supported extension (`SUPPORTED_SUFFIXES`, any case);
- its name names the table when it contains a table word anywhere, in any case (`TABLE_WORDS`): an English
  word counts only as a whole word (not preceded or followed by an ASCII letter, a camelCase step counting as
  a boundary: `2023_orders`, `Livestreams_May`, `myOrders` match, `recorder` does not), a Chinese word
  anywhere (`2023-05订单`); the longest word wins where words overlap (`livestreams` over `live`);
- when the name names no table, or several, the header decides: the table whose required columns it provides
  most (ties broken by providing all of them); a tie or no column at all skips the file, saying why;
- saved responses of the open platform (ingest.formats.openplatform) are recognised by their shape before
  the name is read: the method decides the table (an unknown method skips the file, saying why; an error
  response raises DataError).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from chuanliu_cli.errors import DataError
from chuanliu_cli.schema import TABLES

if TYPE_CHECKING:
    from chuanliu_cli.ingest.mapping import Mapping

#: The extensions `discover` reads (compared case-insensitively); a file's content decides its format.
SUPPORTED_SUFFIXES = (
    ".csv",
    ".tsv",
    ".txt",
    ".xls",
    ".xlsx",
    ".xlsm",
    ".parquet",
    ".json",
    ".jsonl",
    ".ndjson",
)


def _words() -> tuple[tuple[str, str], ...]:
    """(word, table) for every table word, longest first: schema.py's file words, and the singular of each
    English plural (`orders` → `order`, `lives` → `live`, `comments` → `comment`)."""
    pairs: dict[str, str] = {}
    for table in TABLES.values():
        for word in table.file_prefixes:
            pairs.setdefault(word.lower(), table.name)
            if word.isascii() and word.endswith("s"):
                pairs.setdefault(word[:-1].lower(), table.name)
    return tuple(sorted(pairs.items(), key=lambda p: (-len(p[0]), p[0])))


#: (word, table), longest first.
TABLE_WORDS = _words()


#: The reason given for hidden and system files.
HIDDEN = "hidden or system file"


@dataclass(frozen=True)
class DiscoveredFile:
    """One entry of a directory: the table it is loaded into (None: skipped), and how that was decided."""

    path: Path
    table: str | None
    why: str


def _is_ascii_letter(ch: str) -> bool:
    return ch.isascii() and ch.isalpha()


def _whole_word(name: str, start: int, end: int) -> bool:
    """Whether name[start:end] is a word of its own: no ASCII letter touches it, unless a camelCase step."""
    before = name[start - 1] if start > 0 else ""
    after = name[end] if end < len(name) else ""
    left = not _is_ascii_letter(before) or (before.islower() and name[start].isupper())
    right = not _is_ascii_letter(after) or (name[end - 1].islower() and after.isupper())
    return left and right


def tables_in_name(name: str) -> list[tuple[str, str]]:
    """The (table, word) pairs a file name names, in order of appearance (the extension is ignored)."""
    stem = name[: -len(Path(name).suffix)] if Path(name).suffix else name
    lower = stem.lower()
    taken = [False] * len(stem)
    hits: list[tuple[int, str, str]] = []
    for word, table in TABLE_WORDS:
        start = lower.find(word)
        while start >= 0:
            end = start + len(word)
            free = not any(taken[start:end])
            if free and (not word.isascii() or _whole_word(stem, start, end)):
                hits.append((start, table, stem[start:end]))
                for i in range(start, end):
                    taken[i] = True
            start = lower.find(word, start + 1)
    return [(table, word) for _, table, word in sorted(hits)]


def table_for_file(path: Path) -> str | None:
    """The table a file's name names (`2023-05订单.csv`, `Livestreams_May.CSV`, …), or None when it names
    none or several."""
    tables = {t for t, _ in tables_in_name(path.name)}
    return tables.pop() if len(tables) == 1 else None


#: Why a folder inside a directory of exports is not read.
FOLDER = "a folder (folders are not searched)"


def skip_reason(name: str, is_dir: bool = False) -> str | None:
    """Why a directory entry is never an export (hidden, a folder, an unsupported extension), or None."""
    if name.startswith((".", "_", "~$")):
        return HIDDEN
    if is_dir:
        return FOLDER
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        what = f"extension {Path(name).suffix}" if suffix else "no extension"
        return f"not an export: {what} (supported: {' '.join(SUPPORTED_SUFFIXES)})"
    return None


def _required(table: str) -> list[tuple[str, ...]]:
    """The required columns of a table as alternatives (one of each tuple is enough), as the loader checks."""
    out: list[tuple[str, ...]] = [
        (c.name,) for c in TABLES[table].columns if c.required and c.name != "sale_mode"
    ]
    if table == "livestreams":
        out.append(("end_time", "duration_minutes"))
    return out


def table_for_header(
    headers: list[str], mapping: Mapping | None = None, candidates: Iterable[str] | None = None
) -> tuple[str | None, str]:
    """The table a header row fits among `candidates` (default: every table), and why.

    The table whose required columns the header provides most wins; between equals, the one whose required
    columns are all there. A tie, or a header providing no required column of any table, gives None.
    """
    from chuanliu_cli.ingest.mapping import default_mapping

    mapping = mapping or default_mapping()
    scores: list[tuple[int, bool, str, int]] = []
    for table in candidates or TABLES:
        found = mapping.for_table(table).resolve(headers)
        required = _required(table)
        have = sum(1 for alts in required if any(a in found for a in alts))
        scores.append((have, have == len(required), table, len(required)))
    scores.sort(key=lambda s: (-s[0], not s[1]))
    if not scores or scores[0][0] == 0:
        return None, "its header has no required column of any table"
    best = scores[0]
    rivals = [s[2] for s in scores[1:] if s[:2] == best[:2]]
    if rivals:
        tied = " and ".join([best[2], *rivals])
        return None, f"its header fits {tied} equally ({best[0]} required column(s) each)"
    return best[2], f"header: {best[0]} of {best[3]} required {best[2]} columns"


def complete_tables(headers: list[str], mapping: Mapping | None = None) -> list[str]:
    """The tables whose required columns a header row all provides."""
    from chuanliu_cli.ingest.mapping import default_mapping

    mapping = mapping or default_mapping()
    out = []
    for table in TABLES:
        found = mapping.for_table(table).resolve(headers)
        if all(any(a in found for a in alts) for alts in _required(table)):
            out.append(table)
    return out


HeaderReader = Callable[[Path], list[str]]


def classify(
    path: Path, header: HeaderReader | None, mapping: Mapping | None = None, is_dir: bool = False
) -> DiscoveredFile:
    """Decide one entry of a directory: skipped (why), or the table it feeds and how that was decided.

    `header` reads a file's header row (None: the name alone decides); a file whose header cannot be read
    is skipped with the reason.
    """
    reason = skip_reason(path.name, is_dir)
    if reason is not None:
        return DiscoveredFile(path, None, reason)
    return infer(path, header, mapping)


def infer(path: Path, header: HeaderReader | None, mapping: Mapping | None = None) -> DiscoveredFile:
    """The table of one file by its shape when it holds API responses, else by its name, else by its header
    (see the module docstring)."""
    shaped = response_file(path)
    if shaped is not None:
        return shaped
    named = tables_in_name(path.name)
    tables = list(dict.fromkeys(t for t, _ in named))
    if len(tables) == 1:
        return DiscoveredFile(path, tables[0], f"name: {', '.join(dict.fromkeys(w for _, w in named))}")
    says = f"its name names {' and '.join(tables)}" if tables else "its name names no table"
    if header is None:
        return DiscoveredFile(path, None, f"no table recognised: {says}")
    try:
        headers = header(path)
    except DataError as exc:
        return DiscoveredFile(path, None, f"{says}, and its header cannot be read: {exc.message}")
    table, why = table_for_header(headers, mapping, tables or None)
    if table is None:
        return DiscoveredFile(path, None, f"no table recognised: {says} and {why}")
    return DiscoveredFile(path, table, f"{why} ({says})")


def response_file(path: Path, encoding: str | None = None) -> DiscoveredFile | None:
    """A local file of saved open-platform responses as a directory entry (its method's table, or skipped
    when the method is unknown); None for any other file. An error response raises DataError."""
    from chuanliu_cli.ingest.formats.openplatform import looks_like_json, sniff

    if not path.is_file() or not looks_like_json(path):
        return None
    found = sniff(path, encoding)
    if found is None:
        return None
    if found.method is None:
        return DiscoveredFile(path, None, found.why)
    return DiscoveredFile(path, found.method.table, found.why)


def read_header(encoding: str | None = None) -> HeaderReader:
    """A HeaderReader opening local files with the loader's readers (the first data sheet of a workbook)."""

    def read(path: Path) -> list[str]:
        from chuanliu_cli.ingest.readers import open_file

        readers = open_file(path, encoding)
        try:
            return readers[0].headers
        finally:
            for r in readers:
                r.close()

    return read


def discover_files(
    directory: Path, mapping: Mapping | None = None, encoding: str | None = None
) -> list[DiscoveredFile]:
    """Every entry of a directory, in name order, with the table it feeds or why it is skipped."""
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory")
    header = read_header(encoding)
    return [classify(p, header, mapping, p.is_dir()) for p in sorted(directory.iterdir())]


def load_order(found: Iterable[DiscoveredFile]) -> list[tuple[str, Path]]:
    """The (table, path) pairs to load, in table order then by path."""
    order = list(TABLES)
    items = [(f.table, f.path) for f in found if f.table is not None]
    return sorted(items, key=lambda tp: (order.index(tp[0]), str(tp[1])))


def discover(
    directory: Path, mapping: Mapping | None = None, encoding: str | None = None
) -> list[tuple[str, Path]]:
    """The export files of a directory as (table, path) in load order; DataError when there is none."""
    return discover_with_warnings(directory, mapping, encoding)[0]


def discover_with_warnings(
    directory: Path, mapping: Mapping | None = None, encoding: str | None = None
) -> tuple[list[tuple[str, Path]], list[str]]:
    """`discover`, and a warning for each file it leaves unread (`unread_warnings`): what reads a
    directory without showing its files (`--data`) says them."""
    found = discover_files(directory, mapping, encoding)
    items = load_order(found)
    if not items:
        raise no_exports(directory, found)
    return items, unread_warnings(directory, found)


def unread_warnings(directory: Path | str, found: Iterable[DiscoveredFile]) -> list[str]:
    """A warning for each file of a directory with an export's extension that is not read: one whose table
    was not recognised may be an export (an agency's `export_0501.csv`) whose rows would be missing from
    every figure. A folder holding exports (one per month, 2023-05/orders.csv) is named with them: folders
    are not searched. Hidden and system files, other folders and files of other extensions (a
    mapping.yaml, a 说明.pdf), which no command reads as an export, are not named."""
    out = []
    for f in found:
        if f.table is None and skip_reason(f.path.name) is None:
            out.append(
                f"{directory}/{f.path.name}: not read: {f.why}; put a table word in its name (orders, "
                "reviews, livestreams, shops, or 订单, 评价, 直播, 店铺) or move it out of the folder"
            )
        elif f.table is None and f.why == FOLDER and (inside := _exports_in(f.path)):
            shown = ", ".join(inside[:3]) + (f" and {len(inside) - 3} more" if len(inside) > 3 else "")
            out.append(
                f"{directory}/{f.path.name}/: not read: a folder holding {shown}; only the files directly in "
                "the folder are read: read that folder instead, or move its files up"
            )
    return out


def _exports_in(folder: Path) -> list[str]:
    """The names of the files directly in `folder` that a directory of exports would read (a table word in
    the name, an export's extension), sorted; none when it cannot be listed."""
    try:
        names = sorted(p.name for p in folder.iterdir() if not p.is_dir())
    except OSError:
        return []
    return [n for n in names if skip_reason(n) is None and table_for_file(Path(n)) is not None]


def no_exports(directory: Path | str, found: list[DiscoveredFile]) -> DataError:
    """The error for a directory without a recognised export, listing why each entry was skipped."""
    return DataError(
        f"{directory}: no export files found",
        hint="put a table word in the names: orders, reviews, livestreams, shops (or 订单, 评价, 直播, 店铺)",
        details=[f"{f.path.name}: {f.why}" for f in found],
    )
