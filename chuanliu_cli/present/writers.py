"""Machine-readable results: the documented JSON shape of SPEC §6, flat rows for csv/parquet, atomic files."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from chuanliu_cli.scoring.pipeline import RunResult, ScorecardResult

Format = Literal["table", "csv", "json", "jsonl", "parquet"]

#: CSV cells starting with one of these are prefixed with ' so spreadsheets do not run them as formulas.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _clean(value: Any) -> Any:
    """JSON-safe scalars: NaN/inf become null."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


def entity_records(res: ScorecardResult, include_ineligible: bool = True) -> list[dict[str, Any]]:
    """One dict per entity in the §6 JSON shape, in rank order (ineligible entities last)."""
    sc = res.scorecard
    metric_names = [m.name for m in sc.metrics]
    score_names = [s.name for s in sc.scores]
    reasons = {g.id: g.reason for g in sc.gates}
    records = []
    for row in res.frame.iter_rows(named=True):
        if not include_ineligible and not row["eligible"]:
            continue
        records.append(
            {
                sc.key: row[sc.key],
                "name": row["name"],
                "rank": row["rank"],
                "eligible": bool(row["eligible"]),
                "failed_gates": list(row["failed_gates"] or []),
                "reasons": [reasons[g] for g in row["failed_gates"] or []],
                "tier": row["tier"],
                "grant": row["grant"],
                "grant_note": row["grant_note"],
                "scores": {n: _clean(row[n]) for n in score_names},
                "metrics": {n: _clean(row[n]) for n in metric_names},
            }
        )
    return records


def run_document(run: RunResult, scorecard: str, include_ineligible: bool = True) -> dict[str, Any]:
    """The whole JSON document of `score`/`eligible` (SPEC §6), stable key order."""
    res = run.scorecards[scorecard]
    rs = run.ruleset
    return {
        "ruleset": {"name": rs.name, "sha256": rs.sha256},
        "scorecard": scorecard,
        "period": {
            "start": run.period.start.isoformat(),
            "end": run.period.end.isoformat(),
            "label": run.period.label,
            "complete": run.complete,
            "incomplete_tables": list(run.incomplete_tables),
        },
        "data_window": {
            t: {"min": _iso(lo), "max": _iso(hi)} for t, (lo, hi) in sorted(run.data_window.items())
        },
        "assumptions": rs.assumptions,
        "entities": entity_records(res, include_ineligible),
        "totals": res.totals(),
    }


def _iso(value: Any) -> str | None:
    return value.isoformat(sep=" ") if value is not None else None


def flat_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entities with `scores.*` and `metrics.*` flattened into columns named after them."""
    rows = []
    for rec in records:
        row = {k: v for k, v in rec.items() if k not in ("scores", "metrics", "failed_gates", "reasons")}
        row["failed_gates"] = ";".join(rec["failed_gates"])
        row["reasons"] = "; ".join(rec["reasons"])
        row.update(rec["scores"])
        row.update(rec["metrics"])
        rows.append(row)
    return rows


def safe_cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas: text starting with = + - @ tab or CR gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    text = str(value)
    if text.startswith(_FORMULA_START):
        with contextlib.suppress(ValueError):
            float(text)
            return text  # numbers excepted: -5 stays -5
        return "'" + text
    return text


def write_csv(stream: IO[str], rows: list[dict[str, Any]], columns: list[str]) -> None:
    """CSV with a header row; every cell formula-safe."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow([safe_cell(c) for c in columns])
    for row in rows:
        writer.writerow([safe_cell(row.get(c)) for c in columns])


def columns_of(res: ScorecardResult) -> list[str]:
    """Flat column order: key, name, rank, eligible, failed_gates, reasons, tier, grant, scores, metrics."""
    sc = res.scorecard
    return [
        sc.key,
        "name",
        "rank",
        "eligible",
        "failed_gates",
        "reasons",
        "tier",
        "grant",
        "grant_note",
        *(s.name for s in sc.scores),
        *(m.name for m in sc.metrics),
    ]


def render_text(fmt: Format, doc: dict[str, Any], columns: list[str]) -> str:
    """csv, json or jsonl text of a result document."""
    if fmt == "json":
        return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
    if fmt == "jsonl":
        return "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in doc["entities"])
    if fmt == "csv":
        buf = io.StringIO()
        write_csv(buf, flat_rows(doc["entities"]), columns)
        return buf.getvalue()
    raise ValueError(fmt)


def parquet_bytes(doc: dict[str, Any], columns: list[str], res: ScorecardResult) -> bytes:
    """Parquet of the flat rows with explicit column types (stable across runs)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sc = res.scorecard
    floats = {s.name for s in sc.scores} | {m.name for m in sc.metrics}
    ints = {"rank", "grant"}
    rows = flat_rows(doc["entities"])
    arrays = []
    for c in columns:
        values = [r.get(c) for r in rows]
        if c in floats:
            arrays.append(pa.array(values, pa.float64()))
        elif c in ints:
            arrays.append(pa.array(values, pa.int64()))
        elif c == "eligible":
            arrays.append(pa.array(values, pa.bool_()))
        else:
            arrays.append(pa.array([None if v is None else str(v) for v in values], pa.string()))
    table = pa.Table.from_arrays(arrays, names=columns)
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf, compression="zstd")
    return bytes(buf.getvalue().to_pybytes())


def check_writable(path: Path) -> None:
    """Fail early, with a usage error, when `-o FILE` cannot be written (no directory, a directory)."""
    from chuanliu_cli.errors import UsageError

    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise UsageError(f"cannot write {path}: directory {directory} does not exist", hint="create it first")
    if path.is_dir():
        raise UsageError(f"cannot write {path}: it is a directory")
    if not os.access(directory, os.W_OK):
        raise UsageError(f"cannot write {path}: directory {directory} is not writable")


def format_from_suffix(path: Path | None) -> str | None:
    """The output format an `-o` file name implies (list.json → json), or None."""
    if path is None:
        return None
    return {
        ".csv": "csv",
        ".json": "json",
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
        ".parquet": "parquet",
        ".txt": "table",
    }.get(path.suffix.lower())


@contextlib.contextmanager
def atomic_write(path: Path, mode: Literal["w", "wb"] = "w") -> Iterator[IO[Any]]:
    """Write `path` through a temp file in the same directory, fsync, then rename: never half-written."""
    directory = path.parent if str(path.parent) else Path(".")
    check_writable(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    # mkstemp makes 0600 files; keep the mode of the file we replace, else what the umask allows
    try:
        mode_bits = path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode_bits = 0o666 & ~umask
    os.fchmod(fd, mode_bits)
    try:
        f: IO[Any]
        f = os.fdopen(fd, "w", encoding="utf-8", newline="") if mode == "w" else os.fdopen(fd, "wb")
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        with contextlib.suppress(OSError):
            dfd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def comparison_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Comparison rows with list cells joined, for csv and parquet."""
    flat = []
    for r in rows:
        row = dict(r)
        row["now_failing"] = ";".join(r["now_failing"])
        row["now_failing_reasons"] = "; ".join(r["now_failing_reasons"])
        flat.append(row)
    return flat


def parquet_table_bytes(rows: list[dict[str, Any]]) -> bytes:
    """Parquet of flat rows, column types inferred by pyarrow."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows)
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf, compression="zstd")
    return bytes(buf.getvalue().to_pybytes())
