"""The machine-readable shapes of every result, built once: the JSON document, JSON-lines records, flat rows.

Each builder returns a `Document`; present/writers.py turns one into csv, json, jsonl or parquet, so every
command that writes data follows the same rules (SPEC §6).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import polars as pl

    from chuanliu_cli.scoring.compare import Comparison
    from chuanliu_cli.scoring.explain import Explanation
    from chuanliu_cli.scoring.pipeline import RunResult, ScorecardResult
    from chuanliu_cli.store.status import StoreStatus

ColumnType = Literal["float", "int", "bool", "str"]


@dataclass(frozen=True)
class Document:
    """One result in every shape: `document` for json, `records` for jsonl, `rows`/`columns` for csv and
    parquet; `types` fixes parquet column types (a column not named is inferred by pyarrow)."""

    document: Any
    records: list[dict[str, Any]]
    rows: list[dict[str, Any]]
    columns: list[str]
    types: dict[str, ColumnType] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # column → Chinese header (`headers`)


@dataclass(frozen=True)
class EntityDocument:
    """`score` and `eligible`: the §6 document with its entities kept as one polars frame, so that csv,
    jsonl, parquet and the json document's `entities` are written from columns (present/writers.py), not
    from a Python dict per entity (issue #21). `head` is the JSON document with `entities: []` in its
    place; `frame` the listed entities in order (the scorecard result's columns); `columns` and `types`
    the flat columns of csv and parquet, as in a `Document`."""

    head: dict[str, Any]
    frame: pl.DataFrame
    key: str
    scores: tuple[str, ...]
    metrics: tuple[str, ...]
    reasons: dict[str, str]  # gate id → reason
    columns: list[str]
    types: dict[str, ColumnType]
    labels: dict[str, str] = field(default_factory=dict)  # column → Chinese header (`headers`)


@dataclass(frozen=True)
class FrameDocument:
    """A result whose rows are a frame (`runs --id`: a run's per-entity results; `compare`: one row per
    entity), written from the columns like an EntityDocument: `head` is the JSON document with
    `rows_key: []` where the rows go; `frame` holds the flat `columns` of csv, parquet and xlsx in order
    (`types`: parquet's, else the frame's); `records`, when given, the rows of json and jsonl (lists
    kept as lists), else they are the flat rows."""

    head: dict[str, Any]
    rows_key: str
    frame: pl.DataFrame
    columns: list[str]
    types: dict[str, ColumnType]
    labels: dict[str, str] = field(default_factory=dict)  # column → Chinese header (`headers`)
    records: pl.DataFrame | None = None

    def flat(self) -> pl.DataFrame:
        """The rows of csv, parquet and xlsx: `columns` in order, NaN and infinities null (`clean`)."""
        return _finite(self.frame.select(self.columns))

    def json_rows(self) -> pl.DataFrame:
        """The rows of json and jsonl: `records` (else the flat rows), NaN and infinities null."""
        return self.flat() if self.records is None else _finite(self.records)


def _finite(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with its float columns' NaN and infinities null (`finite`)."""
    import polars as pl

    return frame.select(
        finite(pl.col(c)).alias(c) if t.is_float() else pl.col(c) for c, t in frame.schema.items()
    )


def column_types(frame: pl.DataFrame) -> dict[str, ColumnType]:
    """Each column's parquet type as `Document.types` names it, from the frame's: numbers, booleans, text."""
    out: dict[str, ColumnType] = {}
    for name, dtype in frame.schema.items():
        if dtype.is_float():
            out[name] = "float"
        elif dtype.is_integer():
            out[name] = "int"
        elif dtype.to_python() is bool:
            out[name] = "bool"
        else:
            out[name] = "str"
    return out


def clean(value: Any) -> Any:
    """JSON-safe scalars: NaN/inf become null."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


# --- score / eligible --------------------------------------------------------------------------------------


def entity_records(
    res: ScorecardResult, include_ineligible: bool = True, selected: pl.DataFrame | None = None
) -> list[dict[str, Any]]:
    """One dict per entity in the §6 JSON shape, in rank order (ineligible entities last); `selected`:
    only these rows of the result (score --id/--top), the totals staying those of everyone."""
    from chuanliu_cli.scoring.pipeline import label_columns

    sc = res.scorecard
    metric_names = [m.name for m in sc.metrics]
    score_names = [s.name for s in sc.scores]
    reasons = {g.id: g.reason for g in sc.gates}
    records = []
    for row in (res.frame if selected is None else selected).iter_rows(named=True):
        if not include_ineligible and not row["eligible"]:
            continue
        records.append(
            {
                sc.key: row[sc.key],
                **{c: row.get(c) for c in label_columns(sc)},  # name (and a shop's group_id, category)
                "rank": row["rank"],
                "eligible": bool(row["eligible"]),
                "failed_gates": list(row["failed_gates"] or []),
                "reasons": [reasons[g] for g in row["failed_gates"] or []],
                "tier": row["tier"],
                "grant": row["grant"],
                "grant_note": row["grant_note"],
                "scores": {n: clean(row[n]) for n in score_names},
                "metrics": {n: clean(row[n]) for n in metric_names},
            }
        )
    return records


def run_document(
    run: RunResult,
    scorecard: str,
    include_ineligible: bool = True,
    warnings: Sequence[str] = (),
    population: Any = None,
    selected: pl.DataFrame | None = None,
) -> dict[str, Any]:
    """The whole JSON document of `score`/`eligible` (SPEC §6), stable key order. `population` (the api's
    Population) says who ranks and grants are relative to; `warnings` are the run's warnings."""
    doc = _document_head(run, scorecard, warnings, population)
    doc["entities"] = entity_records(run.scorecards[scorecard], include_ineligible, selected)
    return doc


def _document_head(
    run: RunResult, scorecard: str, warnings: Sequence[str], population: Any
) -> dict[str, Any]:
    """The §6 document with `entities: []`: everything but the entities, in the document's key order."""
    res = run.scorecards[scorecard]
    rs = run.ruleset
    if population is None:
        pop = {"entities": res.size, "relative": False, "note": None}
    else:
        pop = population.to_dict()
    return {
        "ruleset": {"name": rs.name, "sha256": rs.sha256},
        "scorecard": scorecard,
        "period": {
            "start": run.period.start.isoformat(),
            "end": run.period.end.isoformat(),
            "label": run.period.label,
            "complete": run.complete,
            "incomplete_tables": list(run.incomplete_tables),
            "missing_history": [m.to_dict() for m in run.missing_history],
        },
        "data_window": {
            t: {"min": _iso(lo), "max": _iso(hi)} for t, (lo, hi) in sorted(run.data_window.items())
        },
        "assumptions": rs.assumptions,
        "entities": [],
        "totals": res.totals(),
        "population": pop,
        "warnings": list(warnings),
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


def columns_of(res: ScorecardResult) -> list[str]:
    """Flat column order: key, name (shops: group_id, category), rank, eligible, failed_gates, reasons, tier,
    grant, scores, metrics."""
    from chuanliu_cli.scoring.pipeline import label_columns

    sc = res.scorecard
    return [
        sc.key,
        *label_columns(sc),
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


def scores_document(
    run: RunResult,
    scorecard: str,
    include_ineligible: bool = True,
    warnings: Sequence[str] = (),
    population: Any = None,
    selected: pl.DataFrame | None = None,
) -> EntityDocument | Document:
    """`score` and `eligible`: the §6 document, its entities kept as a frame; parquet columns typed from
    the scorecard (stable files). A result whose columns the frame writers do not know (a type other than
    text, numbers, booleans and the list of failed gates, or a column name used twice) is built row by
    row instead, as before issue #21."""
    res = run.scorecards[scorecard]
    sc = res.scorecard
    columns = columns_of(res)
    types: dict[str, ColumnType] = {c: "str" for c in columns}
    types.update({s.name: "float" for s in sc.scores})
    types.update({m.name: "float" for m in sc.metrics})
    types.update({"rank": "int", "grant": "int", "eligible": "bool"})
    frame = listed(res, include_ineligible, selected)
    if not frame_writable(frame, columns, {*(s.name for s in sc.scores), *(m.name for m in sc.metrics)}):
        doc = run_document(run, scorecard, include_ineligible, warnings, population, selected)
        return Document(doc, doc["entities"], flat_rows(doc["entities"]), columns, types, ruleset_labels(sc))
    return EntityDocument(
        head=_document_head(run, scorecard, warnings, population),
        frame=frame,
        key=sc.key,
        scores=tuple(s.name for s in sc.scores),
        metrics=tuple(m.name for m in sc.metrics),
        reasons={g.id: g.reason for g in sc.gates},
        columns=columns,
        types=types,
        labels=ruleset_labels(sc),
    )


def listed(
    res: ScorecardResult, include_ineligible: bool = True, selected: pl.DataFrame | None = None
) -> pl.DataFrame:
    """The rows a score/eligible output lists: `selected` (score --id/--top) or every row of the result,
    without the ineligible ones unless `include_ineligible` (an unknown eligibility is not eligible)."""
    import polars as pl

    frame = res.frame if selected is None else selected
    return frame if include_ineligible else frame.filter(pl.col("eligible").fill_null(False))


def frame_writable(frame: pl.DataFrame, columns: list[str], numbers: set[str]) -> bool:
    """True when present/writers.py can write `frame` from its columns with the bytes of the row writers:
    every flat column once; the `numbers` (scores, metrics) float or integer; eligibility boolean; rank and
    grant integers; failed gates a list of text; the other columns text (null-only columns anywhere)."""
    import polars as pl

    if len(set(columns)) != len(columns) or not set(columns) - {"reasons"} <= set(frame.columns):
        return False
    for name, dtype in frame.schema.items():
        if dtype == pl.Null:
            continue
        if name in numbers:
            ok = dtype.is_float() or dtype.is_integer()
        elif name == "eligible":
            ok = dtype == pl.Boolean
        elif name in ("rank", "grant"):
            ok = dtype.is_integer()
        elif name == "failed_gates":
            ok = dtype in (pl.List(pl.String), pl.List(pl.Null))
        else:
            ok = dtype == pl.String
        if not ok:
            return False
    return True


def flat_frame(doc: EntityDocument, labels: str = "en") -> pl.DataFrame:
    """The flat rows of csv, xlsx and parquet as one frame, in `doc.columns` order: failed gates joined by
    `;`, their reasons by `; `, NaN and infinities null (as `clean`), eligibility never null; with `labels`
    zh the grant notes in Chinese (zh_notes). Text is as stored: formula-safety is the csv writer's."""
    import polars as pl

    exprs: list[pl.Expr] = []
    for c in doc.columns:
        if c == "grant_note" and labels == "zh":
            exprs.append(pl.col(c).cast(pl.Utf8).replace(zh_notes()))
        elif c == "failed_gates":
            exprs.append(per_gate_list(doc, "", lambda gates: gates.list.join(";")).alias(c))
        elif c == "reasons":
            joined = per_gate_list(doc, "", lambda gates: gate_reasons(doc, gates).list.join("; "))
            exprs.append(joined.alias(c))
        elif c == "eligible":
            exprs.append(pl.col(c).cast(pl.Boolean).fill_null(False))
        elif doc.frame.schema[c].is_float():
            exprs.append(finite(pl.col(c)).alias(c))
        else:
            exprs.append(pl.col(c))
    return doc.frame.select(exprs)


def per_gate_list(doc: EntityDocument, empty: str, text: Callable[[pl.Series], pl.Series]) -> pl.Expr:
    """Each entity's failed gates as text: `text` of the lists (of gate ids) that hold any, `empty` for the
    others (an empty or null list). Only those rows are worked on: few entities fail a gate in a big
    result, and list operations over millions of empty lists cost more than everything else."""
    import polars as pl

    gates = pl.col("failed_gates").cast(pl.List(pl.String))
    return gates.map_batches(
        lambda lists: list_texts(lists, empty, text), return_dtype=pl.String, is_elementwise=True
    )


def list_texts(
    lists: pl.Series, empty: str, text: Callable[[pl.Series], pl.Series], null: str | None = None
) -> pl.Series:
    """Lists as text: `text` of those that hold items, `empty` for the empty ones, `null` (else `empty`)
    for null ones. Only the lists holding items are worked on: in a big result most are empty, and list
    operations over millions of empty lists cost more than everything else."""
    import polars as pl

    out = pl.repeat(empty, lists.len(), dtype=pl.String, eager=True)
    if null is not None:
        out = out.scatter(lists.is_null().arg_true(), null)
    full = (lists.list.len() > 0).fill_null(False).arg_true()
    if full.len():
        out = out.scatter(full, text(lists.gather(full)))
    return out


def gate_reasons(doc: EntityDocument, gates: pl.Series) -> pl.Series:
    """The reason of each gate id in lists of them (an id the scorecard does not have is an error)."""
    import polars as pl

    return gates.list.eval(pl.element().replace_strict(doc.reasons, return_dtype=pl.String))


def finite(expr: pl.Expr) -> pl.Expr:
    """A float column with NaN and infinities as null (JSON has neither; `clean` for a column)."""
    import polars as pl

    x = expr.cast(pl.Float64)
    return pl.when(x.is_finite()).then(x).otherwise(None)


# --- explain -----------------------------------------------------------------------------------------------


def explanation_json(ex: Explanation) -> dict[str, Any]:
    """The explanation as plain JSON-able data (NaN → null)."""
    import dataclasses

    def tidy(v: Any) -> Any:
        if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
            return None
        if isinstance(v, dict):
            return {k: tidy(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [tidy(x) for x in v]
        if hasattr(v, "isoformat"):
            return v.isoformat()
        return v

    data = tidy(dataclasses.asdict(ex))
    data["share"] = ex.share
    return dict(data)


#: Flat columns of an explanation: one row per metric, score, score part, gate and suggestion.
EXPLANATION_COLUMNS = ["key", "section", "name", "value", "passed", "detail"]


def explanation_document(ex: Explanation) -> Document:
    """`explain`: the JSON of `explanation_json`; flat rows list the metrics, scores, parts, gates and
    suggestions (section, name, value, passed, detail), after one `result` row."""
    data = explanation_json(ex)
    rows: list[dict[str, Any]] = []

    def add(
        section: str, name: str, value: Any, passed: bool | None = None, detail: str | None = None
    ) -> None:
        row = {"key": ex.key, "section": section, "name": name, "value": clean(value), "passed": passed}
        rows.append({**row, "detail": detail})

    outcome = f"tier {ex.tier or '-'}, rank {ex.rank if ex.rank is not None else '-'}, grant {ex.grant or 0}"
    add("result", ex.rank_by, ex.rank_by_value, ex.eligible, outcome)
    for m in ex.metrics:
        add("metric", m.name, m.value, None, m.window)
    for s in ex.scores:
        add("score", s.name, s.value, None, s.null_reason)
        for p in s.parts:
            add("part", f"{s.name}.{p.ref}", p.points, None, f"{p.normalizer} × {p.weight:g}")
    for g in ex.gates:
        add("gate", g.id, None, g.passed, "; ".join(g.needs) or g.reason)
    for sug in ex.suggestions:
        add("suggestion", sug.metric, sug.target, None, f"{ex.rank_by} reaches {sug.reaches:g}")
    flags = ex.integrity or {}
    for name, value in flags.items():  # the entity's flagged rows (SPEC §11)
        if name != "excluded":
            add("integrity", name, value, None, "excluded: " + ", ".join(flags["excluded"]))
    types: dict[str, ColumnType] = {"value": "float", "passed": "bool"}
    return Document(data, [data], rows, list(EXPLANATION_COLUMNS), types)


# --- compare -----------------------------------------------------------------------------------------------


def comparison_flat(cmp: Comparison, frame: pl.DataFrame | None = None) -> pl.DataFrame:
    """Comparison rows (`frame`, else all of them) with list cells joined, for csv, xlsx, parquet and the
    API's frame; each ends with what A and B are (a month, a ruleset file), so that a file read alone says
    which side is which, as the table's title and the json's summary do."""
    import polars as pl

    return cmp.flat(frame).with_columns(
        pl.lit(cmp.a.label, dtype=pl.String).alias("a"),
        pl.lit(cmp.b.label, dtype=pl.String).alias("b"),
    )


def comparison_document(cmp: Comparison, ids: list[str] | None = None) -> FrameDocument:
    """`compare`: the summary and one row per entity (only `ids` when given), written from the columns
    (500,000 shops: a frame, never a dict per entity)."""
    import polars as pl

    rows = cmp.frame.filter(pl.col("key").is_in(ids)) if ids else cmp.frame
    flat = comparison_flat(cmp, rows)
    head = {"scorecard": cmp.scorecard, "summary": cmp.summary(), "entities": []}
    return FrameDocument(head, "entities", flat, flat.columns, column_types(flat), records=rows)


# --- runs --------------------------------------------------------------------------------------------------


def runs_document(runs: list[dict[str, Any]]) -> Document:
    """`runs`: the recorded runs, newest first."""
    from chuanliu_cli.store.runs import RUN_COLUMNS

    return Document(runs, runs, runs, list(RUN_COLUMNS))


def run_detail_document(run: dict[str, Any], results: pl.DataFrame) -> FrameDocument:
    """`runs --id N`: the run and its per-entity results (store/runs.run_results: the rows of csv, jsonl
    and parquet, and the json's `results`)."""
    from chuanliu_cli.store.runs import RUN_RESULT_TYPES

    columns = list(RUN_RESULT_TYPES)
    return FrameDocument(
        {"run": run, "results": []}, "results", results.select(columns), columns, RUN_RESULT_TYPES
    )


# --- status ------------------------------------------------------------------------------------------------

STATUS_COLUMNS = ["table", "rows", "time_min", "time_max"]


#: The columns of each recent load in `status` (as store.status selects them).
LOAD_COLUMNS = (
    "load_id",
    "table",
    "file",
    "rows_read",
    "inserted",
    "updated",
    "unchanged",
    "rejected",
    "finished_at",
    "regressed",
)


def status_document(status: StoreStatus, db_path: str) -> Document:
    """`status`: the database's tables (rows, time span, rows per month), rejects and complete months; the
    flat rows are one per table."""
    tables = [
        {
            "table": t.name,
            "rows": t.rows,
            "time_min": _iso(t.time_min),
            "time_max": _iso(t.time_max),
            "months": dict(t.months),
        }
        for t in status.tables
    ]
    doc = {
        "database": db_path,
        "tables": tables,
        "rejected_rows": status.rejects,
        "last_loads": [
            dict(zip(LOAD_COLUMNS, (_iso(v) if hasattr(v, "isoformat") else v for v in load), strict=True))
            for load in status.loads
        ],
        "complete_months": list(status.complete_months),
        "incomplete_months": list(status.incomplete_months),
        "month_notes": dict(status.month_notes),
        "ruleset": status.ruleset,
        "timezone": status.timezone,
    }
    rows = [{c: t[c] for c in STATUS_COLUMNS} for t in tables]
    return Document(doc, tables, rows, list(STATUS_COLUMNS), {"rows": "int"})


# --- column headers (--labels zh) --------------------------------------------------------------------------


@functools.cache
def zh_notes() -> dict[str, str]:
    """The grant notes in Chinese (--labels zh: csv, xlsx, parquet and the eligible table; json keeps them as
    they are, stable values for programs): every note scoring/allocation.py and the population give.
    (A function: the notes are scoring's, and importing scoring here cost `status --format csv` 20 ms.)"""
    from chuanliu_cli.scoring.allocation import (
        NOTE_BELOW_MIN,
        NOTE_BELOW_TIER,
        NOTE_CAPPED,
        NOTE_NO_SCORE,
        NOTE_NO_WEIGHT,
        NOTE_NOT_ELIGIBLE,
    )
    from chuanliu_cli.scoring.pipeline import NOT_IN_POPULATION

    return {
        NOTE_NOT_ELIGIBLE: "不合格",
        NOTE_NO_SCORE: "无分数",
        NOTE_BELOW_TIER: "未达最低档位",
        NOTE_NO_WEIGHT: "档位系数不为正",
        NOTE_BELOW_MIN: "低于最低发放量（min_grant）",
        NOTE_CAPPED: "已达封顶（cap）",
        NOT_IN_POPULATION: "不在参评范围：本期无经营活动",
    }


#: Chinese headers of the columns every ruleset and command has; metrics and scores take the ruleset's.
ZH_COLUMNS = {
    "rank": "排名",
    "shop_id": "店铺ID",
    "promoter_id": "达人ID",
    "item_id": "商品ID",
    "entity": "主体ID",
    "key": "ID",
    "name": "名称",
    "group_id": "主体ID",
    "category": "类目",
    "eligible": "合格",
    "failed_gates": "未通过门槛",
    "reasons": "不合格原因",
    "tier": "档位",
    "grant": "流量奖励",
    "grant_note": "奖励说明",
    "total": "总分",
    "score": "总分",
    # explain
    "section": "类别",
    "value": "数值",
    "passed": "通过",
    "detail": "说明",
    # compare
    "change": "变化",
    "eligible_a": "A合格",
    "eligible_b": "B合格",
    "tier_a": "A档位",
    "tier_b": "B档位",
    "total_a": "A总分",
    "total_b": "B总分",
    "total_delta": "总分变化",
    "grant_a": "A流量奖励",
    "grant_b": "B流量奖励",
    "grant_delta": "流量奖励变化",
    "now_failing": "新未通过门槛",
    "now_failing_reasons": "新未通过原因",
    "a": "A方",
    "b": "B方",
    # runs
    "run_id": "运行ID",
    "started_at": "开始时间",
    "command": "命令",
    "period": "周期",
    "complete": "数据完整",
    "scorecard": "评分卡",
    "ruleset_name": "规则集",
    "ruleset_sha256": "规则集SHA256",
    "orders_rows": "订单行数",
    "reviews_rows": "评价行数",
    "livestreams_rows": "直播行数",
    "max_load_id": "最大导入ID",
    "entities": "主体数",
    "allocated": "已分配",
    "tool_version": "工具版本",
    # rejects, status
    "load_id": "导入ID",
    "table": "表",
    "file": "文件",
    "line": "行号",
    "reason": "原因",
    "raw": "原始记录",
    "rows": "行数",
    "time_min": "最早时间",
    "time_max": "最晚时间",
}


def chinese_label(label: str | None) -> str | None:
    """The Chinese part of a ruleset label: its leading words that hold a CJK character ("自播天数
    self-broadcast days" → "自播天数"); a label with none is kept whole; no label, None."""
    if not label:
        return None
    words = label.split()
    lead = []
    for word in words:
        if not any("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in word):
            break
        lead.append(word)
    return " ".join(lead) if lead else label.strip()


def ruleset_labels(sc: Any) -> dict[str, str]:
    """The Chinese header of each metric and score of a scorecard that has a label."""
    out = {}
    for item in (*sc.metrics, *sc.scores):
        text = chinese_label(item.label)
        if text:
            out[item.name] = text
    return out


def headers(doc: Document | EntityDocument | FrameDocument, labels: Literal["en", "zh"] = "en") -> list[str]:
    """The header row of a tabular output: the column names, or (zh) the document's labels, else the fixed
    Chinese names, else the name. Two columns never share a header: a repeated one gets its column name
    in parentheses (分销GMV (distribution_gmv))."""
    if labels == "en":
        return list(doc.columns)
    return zh_headers(doc.columns, doc.labels)


def zh_headers(columns: Sequence[str], labels: dict[str, str]) -> list[str]:
    """`headers` in Chinese for `columns`, `labels` (column → label) first, then `ZH_COLUMNS`."""
    names = [labels.get(c) or ZH_COLUMNS.get(c) or c for c in columns]
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    return [n if counts[n] == 1 or n == c else f"{n} ({c})" for n, c in zip(names, columns, strict=True)]
