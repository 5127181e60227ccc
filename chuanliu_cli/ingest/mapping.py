"""Header aliases, value maps and amount scales: the shipped map of schema.py extended by `--mapping FILE`."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from chuanliu_cli.errors import DataError
from chuanliu_cli.schema import SECONDS_ALIASES, TABLES, Table

Unit = str  # the unit of a column's bare numbers in one file: "seconds" (minutes when none is given)


def normalize_header(text: str) -> str:
    """Headers compare case-insensitively, ignoring surrounding spaces and full-width/half-width brackets."""
    text = text.strip().strip("\ufeff").strip().lower()
    return text.replace("（", "(").replace("）", ")")


def normalize_value(text: str) -> str:
    """Enumerated values compare case-insensitively, ignoring surrounding spaces."""
    return text.strip().lower()


@dataclass(frozen=True)
class TableMapping:
    """For one canonical table: header → column, per-column value maps and amount scales."""

    table: Table
    aliases: dict[str, list[str]]  # canonical column -> accepted headers, in priority order
    values: dict[str, dict[str, str]]  # canonical column -> normalized raw value -> canonical value
    scale: dict[str, float] = field(default_factory=dict)
    # canonical column -> normalized header -> unit of bare numbers under that header (直播时长(秒): seconds)
    unit_headers: dict[str, dict[str, Unit]] = field(default_factory=dict)
    # of one file: the unit of each column whose header named one (set by `for_headers`, empty otherwise)
    units: dict[str, Unit] = field(default_factory=dict)
    # canonical column -> the canonical value of a row whose file has no such column or an empty cell
    # (`defaults: {carrier: live}` for the open platform's orders, which do not say where they were sold)
    defaults: dict[str, str] = field(default_factory=dict)

    def for_headers(self, headers: list[str]) -> TableMapping:
        """This mapping for one file with `headers`: carrying the unit its headers give to bare numbers.

        A duration under `直播时长(秒)` or `duration_seconds` is in seconds; under any other header, minutes.
        The mapping itself is returned when no header names a unit (most files).
        """
        found = self.resolve(headers)
        units = {
            col: unit
            for col in self.unit_headers
            if col in found and (unit := self.unit_of(col, headers[found[col]])) is not None
        }
        return self.with_units(units)

    def unit_of(self, column: str, header: str) -> Unit | None:
        """The unit `header` gives to the bare numbers of `column`, None when it names none."""
        return self.unit_headers.get(column, {}).get(normalize_header(header))

    def with_units(self, units: dict[str, Unit]) -> TableMapping:
        """This mapping with the units of one file's columns (itself when they are those it has)."""
        return self if units == self.units else replace(self, units=dict(units))

    def resolve(self, headers: list[str]) -> dict[str, int]:
        """Map canonical column → index of the file column that provides it (first alias in priority wins)."""
        index: dict[str, int] = {}
        for i, h in enumerate(headers):
            index.setdefault(normalize_header(h), i)
        found: dict[str, int] = {}
        for col, names in self.aliases.items():
            for name in names:
                at = index.get(normalize_header(name))
                if at is not None:
                    found[col] = at
                    break
        return found

    def collisions(self, headers: list[str]) -> dict[str, list[str]]:
        """Canonical columns that more than one header of the file maps to (header texts, in file order)."""
        out: dict[str, list[str]] = {}
        for col, names in self.aliases.items():
            wanted = {normalize_header(n) for n in names}
            hits = [h for h in headers if normalize_header(h) in wanted]
            if len(hits) > 1:
                out[col] = hits
        return out

    def closest_alias(self, column: str, headers: list[str]) -> str | None:
        """The file's header closest to an alias of `column`: the 'did you mean' of a missing column."""
        wanted = {normalize_header(a): a for a in self.aliases.get(column, [])}
        best: tuple[float, str] | None = None
        for h in headers:
            for norm in wanted:
                ratio = difflib.SequenceMatcher(None, normalize_header(h), norm).ratio()
                if ratio >= 0.6 and (best is None or ratio > best[0]):
                    best = (ratio, h)
        return best[1] if best else None


def collision_notes(tm: TableMapping, headers: list[str], name: str) -> list[str]:
    """Headers of one file (`name`) that map to the same column: refused when that column is the key or a
    header comes twice (DataError: each row must have one value), else said in a note (the mapping's
    priority decides which is read). For `load` and the Spark engine alike."""
    notes = []
    for col, hits in tm.collisions(headers).items():
        same = len({normalize_header(h) for h in hits}) < len(hits)
        if same or col == tm.table.key:
            raise DataError(
                f"{name}: column {col} appears more than once ({', '.join(hits)})",
                hint="remove or rename the extra column so that each row has one value",
            )
        notes.append(f"{name}: {' and '.join(hits)} all map to {col}; using {hits[0]}")
    return notes


@dataclass(frozen=True)
class Mapping:
    """The mapping for every table."""

    tables: dict[str, TableMapping]

    def for_table(self, name: str) -> TableMapping:
        """The mapping of table `name`."""
        return self.tables[name]


def default_mapping() -> Mapping:
    """The shipped map: canonical names, the aliases and the value maps of schema.py."""
    tables = {}
    for name, table in TABLES.items():
        aliases = {c.name: [c.name, *c.aliases] for c in table.columns if not c.derived}
        values = {
            c.name: {normalize_value(k): v for k, v in c.values.items()} for c in table.columns if c.values
        }
        units = {
            col: {normalize_header(h): "seconds" for h in headers} for col, headers in SECONDS_ALIASES.items()
        }
        tables[name] = TableMapping(
            table, aliases, values, unit_headers={c: units[c] for c in units if c in aliases}
        )
    return Mapping(tables)


_SCALE_OK = re.compile(r"^[0-9.eE+-]+$")


def load_mapping(path: Path | None) -> Mapping:
    """The shipped map extended by a YAML file `{table: {column: [alias, ...]}, values: {...}, scale: {...},
    defaults: {...}}`.

    `values:` is `{table: {column: {raw: canonical}}}` (or `{column: {raw: canonical}}` applied to every
    table with that column), `scale:` is `{column: factor}` or `{table: {column: factor}}`, and `defaults:`
    is `{column: value}` or `{table: {column: value}}`: the value of an optional text or enumerated column
    for rows that have none (a raw value is mapped like a cell's, and must be one the column accepts).
    """
    mapping = default_mapping()
    if path is None:
        return mapping
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"cannot read mapping file {path}: {exc.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a valid YAML mapping file: {str(exc).splitlines()[0]}") from None
    if doc is None:
        return mapping
    if not isinstance(doc, dict):
        raise DataError(f"{path}: a mapping file is a YAML mapping of table names")
    for key, body in doc.items():
        if key in ("values", "scale", "defaults"):
            _apply_nested(mapping, path, key, body)
        elif key in mapping.tables:
            _apply_aliases(mapping.tables[key], path, body)
        else:
            raise DataError(
                f"{path}: unknown table {key!r} in mapping file",
                hint=f"tables are {', '.join(TABLES)}, plus `values:`, `scale:` and `defaults:`",
            )
    return mapping


def _check_column(tm: TableMapping, path: Path, column: Any) -> str:
    names = [c.name for c in tm.table.columns if not c.derived]
    if column not in names:
        close = difflib.get_close_matches(str(column), names, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"columns are {', '.join(names)}"
        raise DataError(f"{path}: table {tm.table.name} has no column {column!r}", hint=hint)
    return str(column)


def _apply_aliases(tm: TableMapping, path: Path, body: Any) -> None:
    if not isinstance(body, dict):
        raise DataError(f"{path}: `{tm.table.name}:` must map canonical columns to lists of aliases")
    for column, aliases in body.items():
        col = _check_column(tm, path, column)
        if isinstance(aliases, str):
            aliases = [aliases]
        if not isinstance(aliases, list) or not all(isinstance(a, str | int) for a in aliases):
            raise DataError(f"{path}: aliases of {tm.table.name}.{col} must be a list of header names")
        # User aliases come first: a mapping file says what this export means.
        tm.aliases[col][:0] = [str(a) for a in aliases]


def _apply_nested(mapping: Mapping, path: Path, kind: str, body: Any) -> None:
    if not isinstance(body, dict):
        raise DataError(f"{path}: `{kind}:` must be a mapping")
    for key, inner in body.items():
        if key in mapping.tables and isinstance(inner, dict):
            targets = [(mapping.tables[key], inner)]
        else:
            targets = [(tm, {key: inner}) for tm in mapping.tables.values() if key in tm.table.names] or [
                (mapping.tables["orders"], {key: inner})
            ]
        for tm, cols in targets:
            for column, spec in cols.items():
                col = _check_column(tm, path, column)
                if kind == "scale":
                    if isinstance(spec, bool) or not isinstance(spec, int | float) or spec <= 0:
                        raise DataError(f"{path}: scale of {col} must be a positive number, not {spec!r}")
                    tm.scale[col] = float(spec)
                elif kind == "defaults":
                    tm.defaults[col] = _default_value(tm, path, col, spec)
                else:
                    if not isinstance(spec, dict):
                        raise DataError(f"{path}: values of {col} must map raw values to canonical ones")
                    allowed = set(tm.table.column(col).values.values())
                    vm = tm.values.setdefault(col, {})
                    for raw, canon in spec.items():
                        if allowed and str(canon) not in allowed:
                            raise DataError(
                                f"{path}: {col} value {raw!r} maps to {canon!r}, which is not one of "
                                + ", ".join(sorted(allowed))
                            )
                        vm[normalize_value(str(raw))] = str(canon)


def _default_value(tm: TableMapping, path: Path, col: str, spec: Any) -> str:
    """The canonical value of `defaults: {col: spec}`: an optional text or enumerated column only."""
    column = tm.table.column(col)
    if column.required or column.type not in ("text", "enum"):
        raise DataError(
            f"{path}: defaults: {tm.table.name}.{col} cannot have a default",
            hint="defaults are for optional text and enumerated columns (e.g. carrier: live)",
        )
    if isinstance(spec, bool) or not isinstance(spec, str | int) or str(spec).strip() == "":
        raise DataError(f"{path}: defaults: {col} must be a value, not {spec!r}")
    if column.type == "text":
        return str(spec).strip()
    allowed = set(column.values.values())
    value = tm.values.get(col, {}).get(normalize_value(str(spec)), str(spec).strip())
    if value not in allowed:
        raise DataError(
            f"{path}: defaults: {col} value {spec!r} is not one of {', '.join(sorted(allowed))}",
            hint=f"e.g. defaults: {{{col}: {sorted(allowed)[0]}}}",
        )
    return value
