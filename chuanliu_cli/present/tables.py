"""Rich tables for the terminal (and for `-o FILE.txt`); everything takes a Console."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from chuanliu_cli.present.bulktable import print_table
from chuanliu_cli.scoring.pipeline import NOT_IN_POPULATION

if TYPE_CHECKING:
    import polars as pl
    from rich.console import Console

    from chuanliu_cli.ingest.discover import DiscoveredFile
    from chuanliu_cli.ingest.loader import FileResult
    from chuanliu_cli.scoring.compare import Comparison
    from chuanliu_cli.scoring.explain import Explanation
    from chuanliu_cli.scoring.pipeline import RunResult, ScorecardResult
    from chuanliu_cli.store.status import StoreStatus


def _fmt_time(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S") if t else "-"


def _n(v: int) -> str:
    return f"{v:,}"


def render_load_summary(
    console: Console, results: Sequence[FileResult], discovered: Sequence[DiscoveredFile] = ()
) -> None:
    """The summary table of `chuanliu load`: one row per file; then, for a directory (or files given without
    their table), every file looked at: the table it went into and how that was decided, or why it was
    skipped."""
    table = Table(title="Loaded", title_justify="left")
    names = (
        "table",
        "file",
        "read",
        "inserted",
        "updated",
        "unchanged",
        "regressed",
        "rejected",
        "duplicates",
    )
    for name in names:
        table.add_column(name, justify="right" if name not in ("table", "file") else "left")
    table.add_column("time range covered")
    table.add_column("s", justify="right")
    for r in results:
        table.add_row(
            r.table,
            Path(r.file).name,
            _n(r.rows_read),
            _n(r.inserted),
            _n(r.updated),
            _n(r.unchanged),
            _n(r.regressed),
            _n(r.rejected),
            _n(r.duplicates),
            f"{_fmt_time(r.time_min)} → {_fmt_time(r.time_max)}" if r.time_min else "-",
            f"{r.seconds:.1f}",
        )
    console.print(table)
    if results and all(r.rows_read and not (r.inserted or r.updated or r.regressed) for r in results):
        console.print("Nothing changed: every row was already loaded.")
    if discovered:
        files = Table(title="Files", title_justify="left")
        for name in ("file", "table", "how, or why skipped"):
            files.add_column(name)
        for f in discovered:
            files.add_row(f.path.name, f.table or "skipped", f.why)
        console.print(files)


def render_status(console: Console, status: StoreStatus, db_path: str, labels: str = "en") -> None:
    """The tables of `chuanliu status`."""
    tz = f" (times in {status.timezone})" if status.timezone else ""
    console.print(Text.assemble(("Database", "bold"), f" {db_path}{tz}"))
    t = Table(title="Tables", title_justify="left")
    for name in ("table", "rows", "from", "to"):
        t.add_column(_h(name, labels), justify="right" if name == "rows" else "left")
    for ts in status.tables:
        t.add_row(ts.name, _n(ts.rows), _fmt_time(ts.time_min), _fmt_time(ts.time_max))
    console.print(t)
    months = sorted({m for ts in status.tables for m in ts.months})
    if months:
        m = Table(title="Rows per month", title_justify="left")
        m.add_column(_h("month", labels))
        timed = [ts for ts in status.tables if ts.months or ts.time_min is not None]
        for ts in timed:
            m.add_column(ts.name, justify="right")
        m.add_column(_h("complete for scoring", labels))
        for month in months:
            done = "✓" if month in status.complete_months else "✗ " + status.month_notes.get(month, "partial")
            m.add_row(month, *(_n(ts.months.get(month, 0)) for ts in timed), done)
        console.print(m)
    else:
        console.print("No data loaded yet: run `chuanliu load --dir DIR`.")
    if status.loads:
        lt = Table(title="Last loads", title_justify="left")
        for name in (
            "id",
            "table",
            "file",
            "read",
            "inserted",
            "updated",
            "unchanged",
            "rejected",
            "finished",
            "regressed",
        ):
            lt.add_column(
                _h(name, labels), justify="right" if name not in ("table", "file", "finished") else "left"
            )
        for load_id, table, file, read, ins, upd, unch, rej, finished, *more in status.loads:
            lt.add_row(
                str(load_id),
                str(table),
                str(file),
                *(_n(int(str(x))) for x in (read, ins, upd, unch, rej)),
                _fmt_time(finished if isinstance(finished, datetime) else None),
                # updates refused because they would have moved rows backwards
                _n(int(str(more[0] or 0))) if more else "0",
            )
        console.print(lt)
    console.print(f"Rejected rows kept: {_n(status.rejects)} (table rejected_rows)")


def render_rejects(console: Console, rows: Sequence[dict[str, Any]], total: int, labels: str = "en") -> None:
    """The rejected rows of `chuanliu rejects`: load, table, file, line, reason and the raw record."""
    if not rows:
        console.print("No rejected rows.")
        return
    t = Table(title="Rejected rows", title_justify="left")
    for name in ("load", "table", "file", "line", "reason", "raw"):
        t.add_column(_h(name, labels), justify="right" if name == "load" else "left", overflow="fold")
    for r in rows:
        # the raw record and the reason are the file's own text: never read as markup
        t.add_row(
            str(r["load_id"]),
            str(r["table"]),
            Path(str(r["file"])).name,
            str(r["line"]),
            Text(str(r["reason"])),
            Text(str(r["raw"] or "")),
        )
    console.print(t)
    if total > len(rows):
        console.print(f"Showing {len(rows):,} of {total:,} rejected rows.")


def _score(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and v != v) else f"{v:.2f}"


def _footer(
    console: Console,
    run: RunResult,
    res: ScorecardResult,
    warnings: Sequence[str] = (),
    population: Any = None,
) -> None:
    """Pool, allocation, tiers, ruleset, data window, completeness, population, warnings and assumptions
    under a result table."""
    sc = res.scorecard
    totals = res.totals()
    lines = []
    if sc.reward is not None:
        unit = sc.reward.unit
        lines.append(
            f"Pool {_n(totals['pool'])} {unit} · allocated {_n(totals['allocated'])} · "
            f"unallocated {_n(totals['unallocated'])}"
        )
        if totals.get("pool_basis"):  # a yearly budget's pool (scoring/budget.py)
            lines.append(f"Pool of a yearly budget: {totals['pool_basis']}")
    per_tier = " · ".join(f"{k} {v}" for k, v in totals["per_tier"].items())
    lines.append(
        f"Entities {_n(totals['entities'])} · eligible {_n(totals['eligible'])}"
        + (f" · per tier: {per_tier}" if per_tier else "")
    )
    rs = run.ruleset
    lines.append(
        f"Ruleset {rs.name} sha256 {rs.sha256[:16]}… · period {run.period.label} "
        f"[{run.period.start} – {run.period.end})"
    )
    window = " · ".join(
        f"{t} {lo:%Y-%m-%d}→{hi:%Y-%m-%d}" if lo and hi else f"{t} empty"
        for t, (lo, hi) in sorted(run.data_window.items())
    )
    lines.append(f"Data window: {window}")
    for line in lines:
        console.print(Text(line, style="dim"))
    if not run.complete:
        console.print(
            Text(
                f"⚠ PARTIAL PERIOD: {run.completeness_note()}; results change when the rest arrives.",
                style="bold yellow",
            )
        )
    if population is not None and population.relative:
        console.print(Text(f"⚠ Population: {population.note}.", style="bold yellow"))
    incomplete = f"period {run.period.label} is incomplete: "
    for warning in warnings:
        if not warning.startswith(incomplete):  # said above
            console.print(Text(f"⚠ {warning}", style="bold yellow"))
    if rs.assumptions:
        console.print(Text("Assumptions: " + " ".join(rs.assumptions.split()), style="dim italic"))


#: Rows a score/eligible table shows on a terminal unless asked for more (--all, --top N); pipes and files
#: get every row.
TERMINAL_ROWS = 50


def _more(console: Console, shown: int, listed: int, hint: str) -> None:
    """The line under a cut table: how many rows are not shown, and how to see them."""
    if listed > shown:
        console.print(Text(f"… {_n(listed - shown)} more: {hint}", style="bold"))


def _rank_header(res: ScorecardResult, population: Any, labels: str = "en") -> str:
    """`rank`, or `rank among N loaded` when the population is only what a directory of exports holds (the
    ineligible among them are not ranked: the ranks run to the eligible count)."""
    if population is not None and population.relative:
        n = population.entities
        return f"排名（共加载 {n} 个）" if labels == "zh" else f"rank among {n} loaded"
    return "排名" if labels == "zh" else "rank"


def _headers(names: Sequence[str], labels: str, sc: Any) -> list[str]:
    """A result table's column headers: the names, or (--labels zh) the Chinese ones csv and xlsx write."""
    if labels != "zh":
        return list(names)
    from chuanliu_cli.present.documents import ruleset_labels, zh_headers

    return zh_headers(names, ruleset_labels(sc))


#: Chinese headers of the tables' own columns (--labels zh); the data columns' are documents.ZH_COLUMNS.
_ZH_HEADS = {
    "run": "运行",
    "when": "时间",
    "orders": "订单行数",
    "max load": "最大导入ID",
    "ruleset": "规则集",
    "tier A→B": "档位 A→B",
    "total A": "A总分",
    "total B": "B总分",
    "grant A": "A流量奖励",
    "grant B": "B流量奖励",
    "Δ grant": "流量奖励变化",
    "now failing": "新未通过门槛",
    "from": "最早时间",
    "to": "最晚时间",
    "month": "月份",
    "complete for scoring": "可打分",
    "id": "导入ID",
    "load": "导入ID",
    "read": "读取",
    "inserted": "新增",
    "updated": "更新",
    "unchanged": "未变",
    "rejected": "拒绝",
    "finished": "完成时间",
    "regressed": "回退",
    "metric": "指标",
    "label": "名称",
    "source": "来源",
    "window": "窗口",
    "filter": "筛选",
    "expression": "表达式",
    "part": "组成",
    "raw": "原值",
    "normalizer": "归一化",
    "normalized": "归一值",
    "weight": "权重",
    "points": "得分",
    "gate": "门槛",
    "condition": "条件",
    "values": "取值",
    "reason / needed": "原因 / 所需",
}


def _h(name: str, labels: str) -> str:
    """One table header: the name, or (--labels zh) its Chinese."""
    if labels != "zh":
        return name
    from chuanliu_cli.present.documents import ZH_COLUMNS

    return _ZH_HEADS.get(name) or ZH_COLUMNS.get(name) or name


def render_eligible(
    console: Console,
    run: RunResult,
    scorecard: str,
    include_ineligible: bool,
    warnings: Sequence[str] = (),
    population: Any = None,
    selected: Any = None,
    limit: int | None = None,
    hint: str = "--all to show every row (and the ineligible), --top N, or --format csv",
    labels: str = "en",
) -> None:
    """The reward list: rank, key, name, tier, total, grant (and, with --all, the ineligible and why, and
    the listed entities without activity, `selected` holding those rows too). With `limit`, only the first
    `limit` rows, then how many more there are and `hint`, how to see them."""
    from chuanliu_cli.present.documents import listed

    res = run.scorecards[scorecard]
    sc = res.scorecard
    title = f"{sc.title or sc.name} · {run.period.label}"
    names = ("rank", sc.key, "name", "tier", sc.rank_by, "grant")
    heads = [_rank_header(res, population, labels), *_headers(names[1:], labels, sc)]

    def make() -> Table:
        table = Table(title=title, title_justify="left")
        for name, head in zip(names, heads, strict=True):
            table.add_column(head, justify="right" if name in ("rank", sc.rank_by, "grant") else "left")
        if include_ineligible:
            table.add_column("不合格原因" if labels == "zh" else "not eligible because")
        return table

    reasons = {g.id: g.reason for g in sc.gates}
    rows = listed(res, include_ineligible, selected)
    shown = rows if limit is None else rows.head(limit)
    cells = [
        [str(v) if v is not None else "-" for v in shown["rank"].to_list()],
        [str(v) for v in shown[sc.key].to_list()],
        [v or "" for v in shown["name"].to_list()],
        [v or "-" for v in shown["tier"].to_list()],
        [_score(v) for v in shown[sc.rank_by].to_list()],
        [_n(v) if v is not None else "-" for v in shown["grant"].to_list()],
    ]
    if include_ineligible:
        from chuanliu_cli.present.documents import zh_notes

        idle = zh_notes()[NOT_IN_POPULATION] if labels == "zh" else NOT_IN_POPULATION
        whys = []
        for failed, note in zip(shown["failed_gates"].to_list(), shown["grant_note"].to_list(), strict=True):
            why = "; ".join(f"{g}: {reasons[g]}" for g in failed or [])
            if note == NOT_IN_POPULATION:
                why = f"{idle} ({why})" if why else idle
            whys.append(why)
        cells.append(whys)
    print_table(console, make, cells)
    _more(console, shown.height, rows.height, hint)
    _footer(console, run, res, warnings, population)


def render_scores(
    console: Console,
    run: RunResult,
    scorecard: str,
    rows: Any,
    warnings: Sequence[str] = (),
    population: Any = None,
    limit: int | None = None,
    hint: str = "--all to show every row, --top N, or --format csv",
    labels: str = "en",
) -> None:
    """Every entity with each score, eligibility (✓/✗ and failed gates), tier and grant. With `limit`,
    only the first `limit` rows, then how many more there are and `hint`, how to see them."""
    res = run.scorecards[scorecard]
    sc = res.scorecard
    names = (sc.key, "name", *(s.name for s in sc.scores), "eligible", "tier", "grant")
    scores = {s.name for s in sc.scores}
    heads = [_rank_header(res, population, labels), *_headers(names, labels, sc)]

    def make() -> Table:
        table = Table(title=f"{sc.title or sc.name} · scores · {run.period.label}", title_justify="left")
        table.add_column(heads[0], justify="right")
        for name, head in zip(names, heads[1:], strict=True):
            table.add_column(head, justify="right" if name in scores or name == "grant" else "left")
        return table

    shown = rows if limit is None else rows.head(limit)
    cells = [
        [str(v) if v is not None else "-" for v in shown["rank"].to_list()],
        [str(v) for v in shown[sc.key].to_list()],
        [v or "" for v in shown["name"].to_list()],
        *([_score(v) for v in shown[s.name].to_list()] for s in sc.scores),
        [
            "✓" if ok else "✗ " + ", ".join(failed or [])
            for ok, failed in zip(shown["eligible"].to_list(), shown["failed_gates"].to_list(), strict=True)
        ],
        [v or "-" for v in shown["tier"].to_list()],
        [_n(v) if v is not None else "-" for v in shown["grant"].to_list()],
    ]
    print_table(console, make, cells)
    _more(console, shown.height, rows.height, hint)
    if rows.height != res.size:
        console.print(Text(f"Showing {rows.height} of {res.size} entities; ranks and grants are among all."))
    _footer(console, run, res, warnings, population)


def _num(v: float | None, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "NULL"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:,.{digits}f}".rstrip("0").rstrip(".")


def render_explanation(console: Console, ex: Explanation, labels: str = "en") -> None:
    """`chuanliu explain`: header, metrics, score parts, gates and what the entity is missing."""
    status = "✓ eligible" if ex.eligible else "✗ not eligible (" + ", ".join(ex.failed_gates) + ")"
    head = Text()
    head.append(f"{ex.key_name} {ex.key}", style="bold")
    if ex.name:
        head.append(f"  {ex.name}")
    head.append(f"  · {ex.scorecard} · {ex.period_label} [{ex.period_start} – {ex.period_end})")
    console.print(head)
    if not ex.in_population:
        console.print(
            Text(
                f"Not in the population of {ex.period_label}: no activity in the period. Every metric below "
                "is its no-activity value (0 for counts and sums, empty otherwise).",
                style="bold yellow",
            )
        )
    if ex.population_note:
        # One merchant's own exports: what does not depend on others first, the relative standing last.
        _explanation_body(console, ex, labels)
        console.print(Text(f"Standing: {ex.population_note}.", style="bold yellow"))
        _explanation_standing(console, ex, status)
    else:
        _explanation_standing(console, ex, status)
        _explanation_body(console, ex, labels)
    _explanation_integrity(console, ex)


def _explanation_standing(console: Console, ex: Explanation, status: str) -> None:
    """Eligibility, tier, rank, grant and share of the pool: what depends on the other entities."""
    line = f"{status} · tier {ex.tier or '-'} · {ex.rank_by} {_score(ex.rank_by_value)}"
    if ex.rank is not None:
        line += f" · rank {ex.rank} of {ex.ranked}" + (" loaded" if ex.population_note else "")
    if ex.grant is not None and ex.pool:
        share = f"{(ex.share or 0):.4%}"
        line += f" · grant {_n(ex.grant)} {ex.unit} ({share} of the pool)"
    if ex.grant_note and ex.grant_note not in ("not eligible",):
        line += f" · {ex.grant_note}"
    console.print(Text(line, style="green" if ex.eligible else "red"))
    if not ex.complete:
        console.print(
            Text("⚠ PARTIAL PERIOD: the data does not cover the whole period yet.", style="bold yellow")
        )


def _explanation_body(console: Console, ex: Explanation, labels: str = "en") -> None:
    """Metrics, score parts, gates and what is missing: the entity's own values."""
    mt = Table(title="Metrics", title_justify="left")
    for name in ("metric", "label", "value", "source", "window", "filter", "expression"):
        mt.add_column(_h(name, labels), justify="right" if name == "value" else "left")
    for m in ex.metrics:
        mt.add_row(
            *(
                Text(c)
                for c in (
                    m.name,
                    m.label or "",
                    _num(m.value),
                    m.source,
                    m.window,
                    m.filter or "",
                    m.expression,
                )
            )
        )
    console.print(mt)

    st = Table(title="Scores", title_justify="left")
    for name in ("score", "part", "raw", "normalizer", "normalized", "weight", "points"):
        head = "分数" if labels == "zh" and name == "score" else _h(name, labels)  # (not the total)
        st.add_column(head, justify="left" if name in ("score", "part", "normalizer") else "right")
    for s in ex.scores:
        st.add_row(
            Text(f"{s.name} = {_score(s.value)} / {_num(s.scale)}", style="bold"),
            Text(s.null_reason or (s.label or "")),
            "",
            "",
            "",
            "",
            "",
        )
        for p in s.parts:
            st.add_row(
                "",
                Text(f"{p.ref}" + (f" ({p.note})" if p.note else "")),
                _num(p.raw),
                Text(p.normalizer),
                _num(p.normalized),
                _num(p.weight),
                _score(p.points),
            )
    console.print(st)

    if ex.gates:
        gt = Table(title="Gates", title_justify="left")
        for name in ("gate", "", "condition", "values", "reason / needed"):
            gt.add_column(_h(name, labels))
        for g in ex.gates:
            values = ", ".join(f"{k} = {_num(v)}" for k, v in g.values.items())
            mark = "✓ pass" if g.passed else "✗ fail"
            if g.result is None and g.values and any(v is None for v in g.values.values()):
                mark += f" (no value: missing {g.missing})"
            detail = "" if g.passed else "; ".join([g.reason, *g.needs])
            gt.add_row(
                Text(g.id),
                Text(mark, style="green" if g.passed else "red"),
                Text(g.when),
                Text(values),
                Text(detail),
            )
        console.print(gt)

    console.print(Text("What it is missing", style="bold"))
    if ex.failed_gates:
        for g in ex.gates:
            if not g.passed:
                console.print(Text(f"  • gate {g.id}: " + ("; ".join(g.needs) or g.reason)))
    if ex.target_tier is None:
        console.print(Text("  • already in the top tier: no points missing." if ex.tier else "  • no tiers."))
    else:
        console.print(
            Text(
                f"  • tier {ex.target_tier} needs {ex.rank_by} ≥ {_num(ex.target_score)}: "
                f"{_score(ex.points_needed)} points more"
            )
        )
        for sug in ex.suggestions:
            console.print(
                Text(
                    f"    – {sug.metric} {_num(sug.current)} → {_num(sug.target)} alone would give "
                    f"{ex.rank_by} {_score(sug.reaches)}"
                )
            )
        if ex.no_suggestion_reason:
            console.print(Text(f"    – {ex.no_suggestion_reason}"))


def render_runs(console: Console, runs: list[dict[str, Any]], labels: str = "en") -> None:
    """`chuanliu runs`: the recorded runs, newest first."""
    if not runs:
        console.print("No run recorded yet: `chuanliu eligible --month M` records one.")
        return
    table = Table(title="Recorded runs", title_justify="left")
    for name in (
        "run",
        "when",
        "period",
        "scorecard",
        "ruleset",
        "orders",
        "max load",
        "eligible",
        "allocated",
    ):
        table.add_column(
            _h(name, labels),
            justify="right" if name in ("run", "orders", "max load", "eligible", "allocated") else "left",
        )
    for r in runs:
        table.add_row(
            str(r["run_id"]),
            _fmt_time(r["started_at"]),
            r["period"] + ("" if r["complete"] else " (partial)"),
            r["scorecard"],
            f"{r['ruleset_name']} {r['ruleset_sha256'][:12]}",
            _n(r["orders_rows"]),
            str(r["max_load_id"] or "-"),
            f"{_n(r['eligible'])}/{_n(r['entities'])}",
            _n(r["allocated"]) if r["allocated"] is not None else "-",
        )
    console.print(table)


def render_run(console: Console, run: dict[str, Any], results: pl.DataFrame, labels: str = "en") -> None:
    """`chuanliu runs --id N`: one run's inputs and per-entity results."""
    console.print(
        Text(
            f"Run {run['run_id']} · {_fmt_time(run['started_at'])} · {run['command']}\n"
            f"{run['scorecard']} · {run['period']}{'' if run['complete'] else ' (partial)'} · "
            f"ruleset {run['ruleset_name']} sha256 {run['ruleset_sha256']} · "
            f"orders {_n(run['orders_rows'])}, "
            f"reviews {_n(run['reviews_rows'])}, livestreams {_n(run['livestreams_rows'])}, "
            f"max load {run['max_load_id']} · chuanliu {run['tool_version']}"
        )
    )
    names = ("rank", "entity", "name", "eligible", "tier", "score", "grant")

    def make() -> Table:
        table = Table(title="Results", title_justify="left")
        for name in names:
            right = name in ("rank", "score", "grant")
            table.add_column(_h(name, labels), justify="right" if right else "left")
        return table

    from chuanliu_cli.store.runs import RUN_RESULT_TYPES

    column = {c: results[c].to_list() for c in RUN_RESULT_TYPES}
    failed = column["failed_gates"]
    cells = [
        [str(v) if v is not None else "-" for v in column["rank"]],
        [str(v) for v in column["entity"]],
        [v or "" for v in column["name"]],
        ["✓" if v else "✗ " + (f or "") for v, f in zip(column["eligible"], failed, strict=True)],
        [v or "-" for v in column["tier"]],
        [_score(v) for v in column["score"]],
        [_n(v) if v is not None else "-" for v in column["grant"]],
    ]
    print_table(console, make, cells)


def render_comparison(
    console: Console, cmp: Comparison, rows: list[dict[str, Any]] | None, labels: str = "en"
) -> None:
    """`chuanliu compare`: summary, tier matrix, biggest movers and (optionally) every entity."""
    s = cmp.summary()
    console.print(Text(f"{cmp.scorecard}: A = {cmp.a.label} · B = {cmp.b.label}", style="bold"))
    if s["unchanged"]:
        console.print(
            Text("No change: every entity has the same eligibility, tier, score and grant under A and B.")
        )
    console.print(
        Text(
            f"Eligible {s['eligible']['a']} → {s['eligible']['b']} · entrants {s['entrants']} · "
            f"leavers {s['leavers']} · tier moves {s['tier_moves']} · grant moved {_n(s['grant_moved'])} "
            f"(Σ|Δ grant| / 2) · allocated {_n(s['a']['allocated'])} → {_n(s['b']['allocated'])}"
        )
    )
    used = [t for t in cmp.tiers if any(cmp.matrix[t].values()) or any(cmp.matrix[x][t] for x in cmp.tiers)]
    mt = Table(title="Tier matrix (rows: A, columns: B)", title_justify="left")
    mt.add_column("A \\ B")
    for t in used:
        mt.add_column(t, justify="right")
    for t in used:
        mt.add_row(t, *(str(cmp.matrix[t][u]) if cmp.matrix[t][u] else "·" for u in used))
    console.print(mt)
    for title, movers in (("Largest gainers", s["top_gainers"]), ("Largest losers", s["top_losers"])):
        if movers:
            console.print(Text(f"{title}: " + ", ".join(f"{m['key']} {m['grant_delta']:+,}" for m in movers)))
    if rows is None:
        return
    table = Table(title="Entities", title_justify="left")
    for name in (
        cmp.key,
        "name",
        "change",
        "tier A→B",
        "total A",
        "total B",
        "grant A",
        "grant B",
        "Δ grant",
        "now failing",
    ):
        table.add_column(
            _h(name, labels), justify="right" if name.startswith(("total", "grant", "Δ")) else "left"
        )
    for r in rows:
        table.add_row(
            Text(str(r["key"])),
            Text(r["name"] or ""),
            r["change"],
            f"{r['tier_a'] or '-'} → {r['tier_b'] or '-'}",
            _score(r["total_a"]),
            _score(r["total_b"]),
            _n(r["grant_a"]),
            _n(r["grant_b"]),
            f"{r['grant_delta']:+,}",
            Text(
                "; ".join(
                    f"{g}: {why}" for g, why in zip(r["now_failing"], r["now_failing_reasons"], strict=True)
                )
            ),
        )
    console.print(table)


def _explanation_integrity(console: Console, ex: Explanation) -> None:
    """The entity's flagged rows (SPEC §11): excluded when the ruleset names the flag, else only counted."""
    flags = ex.integrity
    if not flags:
        return
    excluded = set(flags.get("excluded", ()))
    parts = []
    for flag, count, amount in (
        ("brushing", "brushing_orders", "brushing_gmv"),
        ("self_purchase", "self_purchase_orders", "self_purchase_gmv"),
        ("idle", "idle_sessions", None),
        ("suspicious", "suspicious_reviews", None),
    ):
        n = flags.get(count, 0)
        if not n:
            continue
        what = {"brushing": "brushing order", "self_purchase": "self-purchase order"}.get(flag, "")
        what = what or ("idle session" if flag == "idle" else "suspicious review")
        text = f"{n} {what}{'s' if n != 1 else ''}"
        if amount is not None:
            text += f" (GMV {flags.get(amount, 0.0):,.2f})"
        kept = " counted: this ruleset does not exclude them"
        parts.append(text + (" excluded" if flag in excluded else kept))
    line = "Integrity: " + ("; ".join(parts) if parts else "nothing flagged in the period") + "."
    console.print(Text(line, style="bold yellow" if parts else ""))
