"""Run ruleset test cases (`chuanliu rules test`, SPEC §10) through the real scoring code, and measure what
they exercised.

A metric case is one entity's metric values scored by pipeline.finish_scorecard (scores, gates, tiers: what
`score` runs after its metric query). A data case's rows are written as JSON lines and loaded by the loader
into an in-memory database (the same validation and canonicalization as `load`), then scored by
pipeline.score_period like `score --data`. Each case's entity is explained by scoring/explain.py; a failed
case shows that explanation. Coverage counts, over every scorecard of the ruleset, each gate seen passing
and seen failing and each tier reached by a case's entity.

Case files are read by rules/cases.py; what only scoring can tell (a gate's `metric op constant` form, a
rejected row, an entity not in the data) is refused here, located, as CaseFileError (exit 3).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chuanliu_cli.errors import DataError
from chuanliu_cli.rules.cases import Between, Case, CaseFile, CaseFileError, MissingGate
from chuanliu_cli.rules.model import Gate, Loc, Ruleset, Scorecard
from chuanliu_cli.scoring.allocation import round_micro
from chuanliu_cli.scoring.gates import comparisons, holds
from chuanliu_cli.scoring.pipeline import ranks_everyone

if TYPE_CHECKING:
    from chuanliu_cli.periods import Period
    from chuanliu_cli.scoring.explain import Explanation
    from chuanliu_cli.scoring.pipeline import RunResult

#: The key given to a metric case's entity when the case names none.
METRIC_CASE_KEY = "case"


@dataclass(frozen=True)
class Mismatch:
    """One expectation a case did not meet: the field, what was expected and what came out."""

    field: str
    expected: Any
    actual: Any
    loc: Loc

    def describe(self) -> str:
        """`tier: expected S, got A` (numbers as written, between ranges as `between [a, b]`)."""
        return f"{self.field}: expected {_show(self.expected)}, got {_show(self.actual)}"


@dataclass(frozen=True)
class CaseResult:
    """What one case gave: the entity's actual values, the unmet expectations, and its explanation."""

    case: Case
    entity: str
    actual: dict[str, Any]
    mismatches: tuple[Mismatch, ...]
    explanation: Explanation | None  # a failed case's explanation (None when it passed)
    gates_passed: tuple[str, ...]
    gates_failed: tuple[str, ...]
    tier: str | None
    warnings: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """True when every expectation was met."""
        return not self.mismatches


@dataclass(frozen=True)
class CoverageItem:
    """A gate outcome or a tier of a scorecard, and the cases that exercised it."""

    scorecard: str
    kind: str  # "gate passes", "gate fails" or "tier"
    name: str
    cases: tuple[str, ...]

    @property
    def seen(self) -> bool:
        """Whether some case exercised it."""
        return bool(self.cases)

    def describe(self) -> str:
        """`merchant: gate stable_live fails` / `merchant: tier S`."""
        if self.kind == "tier":
            return f"{self.scorecard}: tier {self.name}"
        return f"{self.scorecard}: gate {self.name} {self.kind.split()[1]}"


@dataclass(frozen=True)
class CaseReport:
    """Every case's result and the coverage of the ruleset's gates and tiers."""

    ruleset: Ruleset
    path: str
    results: tuple[CaseResult, ...]
    coverage: tuple[CoverageItem, ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def failed(self) -> tuple[CaseResult, ...]:
        """The cases with an unmet expectation."""
        return tuple(r for r in self.results if not r.passed)

    @property
    def coverage_percent(self) -> float:
        """Exercised gate outcomes and tiers as a share of all of them (100 when there are none)."""
        if not self.coverage:
            return 100.0
        return 100.0 * sum(i.seen for i in self.coverage) / len(self.coverage)

    @property
    def unexercised(self) -> tuple[CoverageItem, ...]:
        """Gate outcomes and tiers no case exercised."""
        return tuple(i for i in self.coverage if not i.seen)


def run_cases(ruleset: Ruleset, cases: CaseFile) -> CaseReport:
    """Run every case of `cases` against `ruleset`; CaseFileError (exit 3) lists every case that cannot be
    run (a `missing` expectation on a gate without the `metric op constant` form, a rejected row, an entity
    the data does not hold), after all cases were tried."""
    from chuanliu_cli.periods import parse_period

    errors = [e for case in cases.cases for e in _static_problems(ruleset.scorecard(case.scorecard), case)]
    results: list[CaseResult] = []
    warnings: list[str] = []
    for case in cases.cases:
        sc = ruleset.scorecard(case.scorecard)
        period = parse_period(case.period, ruleset.period)
        try:
            if case.metrics is not None:
                run, entity, note, case_warnings = _metric_run(ruleset, sc, period, case)
            else:
                run, entity, note, case_warnings = _data_run(ruleset, sc, period, case)
        except CaseFileError as exc:
            errors.extend(exc.errors)
            continue
        warnings.extend(f"case '{case.name}': {w}" for w in case_warnings)
        if errors:
            continue  # the file is invalid: report that, not outcomes
        results.append(_check(run, sc, case, entity, note, tuple(case_warnings)))
    if errors:
        raise CaseFileError(errors)
    return CaseReport(ruleset, cases.path, tuple(results), _coverage(ruleset, results), tuple(warnings))


# --- running one case --------------------------------------------------------------------------------------


def _metric_run(
    ruleset: Ruleset, sc: Scorecard, period: Period, case: Case
) -> tuple[RunResult, str, str, list[str]]:
    """The case's metric values as a scored one-entity result (finish_scorecard: scores, gates, tier)."""
    import polars as pl

    from chuanliu_cli.scoring.pipeline import RunResult, finish_scorecard

    assert case.metrics is not None
    key = case.entity or METRIC_CASE_KEY
    metrics = pl.DataFrame(
        {sc.key: [key], **{m.name: [case.metrics.get(m.name)] for m in sc.metrics}},
        schema={sc.key: pl.Utf8, **{m.name: pl.Float64 for m in sc.metrics}},
    )
    result = finish_scorecard(sc, period, metrics)
    run = RunResult(ruleset, period, {sc.name: result}, True, ())
    note = "a metric case: one entity with the metric values given; no rank or grant is tested"
    return run, key, note, []


def _data_run(
    ruleset: Ruleset, sc: Scorecard, period: Period, case: Case
) -> tuple[RunResult, str, str, list[str]]:
    """The case's rows loaded like `load` into a fresh in-memory database and scored like `score`."""
    from chuanliu_cli.ingest.loader import LoadOptions, load_files, load_warnings
    from chuanliu_cli.scoring.pipeline import score_period
    from chuanliu_cli.store.database import disable_external_access, memory_database
    from chuanliu_cli.store.rejects import list_rejects

    assert case.rows is not None
    what = f"case '{case.name}'"
    # every bad row refuses the case (no reject limit); a key given twice with different values too
    options = LoadOptions(
        timezone=ruleset.timezone, max_reject_rate=1.0, max_reject_rows=2**62, on_duplicate="error"
    )
    db = memory_database()
    warnings: list[str] = []
    errors: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="chuanliu-case-") as tmp:
            for table in ("shops", "orders", "reviews", "livestreams"):  # orders before their reviews
                rows = case.rows.get(table)
                if not rows:
                    continue
                path = Path(tmp) / f"{table}.jsonl"
                _write_rows(path, table, rows)
                first = rows[0].loc
                try:
                    (result,) = load_files(db, [(table, path)], options)
                except DataError as exc:
                    message = exc.message.replace(str(path), table)
                    errors.append(f"{first}: {what}: rows of {table} cannot be loaded: {message}")
                    continue
                if result.rejected:  # (kept in rejected_rows, as `load` keeps them)
                    for reject in list_rejects(db.con, result.load_id).rows:
                        line = int(str(reject["line"]).split()[-1])
                        errors.append(
                            f"{rows[line - 1].loc}: {what}: this {table} row is refused: {reject['reason']}"
                        )
                # A column the rows leave out takes its default of SPEC §2 (carrier other, refund_amount
                # 0, ...): the case's author named the columns that matter, so that is no news to them.
                warnings.extend(
                    shown
                    for w in load_warnings([result])
                    if not (shown := w.replace(str(path), table)).startswith(f"{table}: no column ")
                    and not result.rejected
                )
        if errors:
            raise CaseFileError(errors)
        disable_external_access(db.con)
        try:
            run = score_period(db.con, ruleset, period, upto=sc.name)
        except DataError as exc:
            raise CaseFileError([f"{case.loc}: {what}: its rows cannot be scored: {exc.message}"]) from None
    finally:
        db.con.close()
    frame = run.scorecards[sc.name].frame
    keys = [str(k) for k in frame[sc.key].to_list()]
    where = case.entity_loc or case.loc
    if case.entity is None:
        if len(keys) != 1:
            shown = ", ".join(keys[:6]) + (" …" if len(keys) > 6 else "") if keys else "none"
            raise CaseFileError(
                [
                    f"{case.loc}: {what}: the rows hold {len(keys)} {sc.key} values of scorecard {sc.name} "
                    f"in {period.label} ({shown}); say which one the case expects with `entity:`"
                ]
            )
        entity = keys[0]
    else:
        entity = case.entity
        if entity not in keys:
            shown = ", ".join(keys[:6]) + (" …" if len(keys) > 6 else "") if keys else "none"
            raise CaseFileError(
                [
                    f"{where}: {what}: {sc.key} {entity!r} is not in the population of {sc.name} in "
                    f"{period.label}: no row of it falls in a window of the scorecard's metrics (the rows "
                    f"hold: {shown})"
                ]
            )
    n = len(keys)
    plural = "s" if n != 1 else ""
    note = f"a data case: ranks, tiers and grants are among the {n} {sc.key} value{plural} of its rows"
    return run, entity, note, warnings


def _write_rows(path: Path, table: str, rows: tuple[Any, ...]) -> None:
    """The rows as JSON lines, every value the text written in the case (a row without its primary key gets
    `<table>-<n>`: the cases need not invent order numbers)."""
    from chuanliu_cli.schema import TABLES

    key = TABLES[table].key
    with path.open("w", encoding="utf-8") as f:
        for n, row in enumerate(rows, start=1):
            values = dict(row.values)
            if values.get(key) is None:
                values[key] = f"{table}-{n}"
            f.write(json.dumps(values, ensure_ascii=False) + "\n")


# --- expectations ------------------------------------------------------------------------------------------


def _static_problems(sc: Scorecard, case: Case) -> list[str]:
    """What a case cannot test: a metric case of a scorecard that ranks by population; a `missing`
    expectation on a gate without the `metric op constant` form, or on a name the gate does not compare."""
    problems: list[str] = []
    if case.metrics is not None and ranks_everyone(sc):
        problems.append(
            f"{case.given_loc or case.loc}: case '{case.name}': scorecard {sc.name} normalizes a part by "
            "rank (a percent rank among the population); a metric case holds one entity, whose rank would "
            "always be 1. Give rows of several entities instead"
        )
    expected = case.expect.get("missing")
    if expected is None:
        return problems
    for gid, gate_missing in expected.value.items():
        gate = next(g for g in sc.gates if g.id == gid)
        comps = comparisons(gate)
        if comps is None:
            problems.append(
                f"{gate_missing.loc}: case '{case.name}': gate {gid} (`{gate.when.text}`) is not of the form "
                "`metric op constant [and ...]`, so no amount is missing: expect failed_gates instead"
            )
            continue
        names = list(dict.fromkeys(c[0] for c in comps))
        for name, (_amount, loc) in gate_missing.amounts.items():
            if name not in names:
                from chuanliu_cli.rules.sqlsubset import suggest

                problems.append(
                    f"{loc}: case '{case.name}': gate {gid} compares {', '.join(names)}, not "
                    f"'{name}'{suggest(name, names)}"
                )
    return problems


def _check(
    run: RunResult, sc: Scorecard, case: Case, entity: str, note: str, warnings: tuple[str, ...]
) -> CaseResult:
    """The entity's row of the scored result against the case's expectations; a failed case is explained
    (scoring/explain.py) for the report."""
    import polars as pl

    frame = run.scorecards[sc.name].frame
    row = frame.filter(pl.col(sc.key) == entity).row(0, named=True)
    failed = tuple(row["failed_gates"] or ())
    missing = {g.id: _gate_missing(g, row) for g in sc.gates if g.id in failed}
    actual: dict[str, Any] = {
        "eligible": bool(row["eligible"]),
        "failed_gates": list(failed),
        "tier": row["tier"],
        "total": row[sc.rank_by],
        "scores": {s.name: row[s.name] for s in sc.scores},
        "missing": missing,
    }
    if case.metrics is None:
        actual["rank"] = row["rank"]
        actual["grant"] = row["grant"]
    mismatches: list[Mismatch] = []
    for name, expected in case.expect.items():
        value = expected.value
        if name in ("eligible", "tier", "grant") and value != actual[name]:
            mismatches.append(Mismatch(name, value, actual[name], expected.loc))
        elif name == "failed_gates" and sorted(value) != sorted(failed):
            mismatches.append(Mismatch(name, list(value), list(failed), expected.loc))
        elif name == "total" and not _within(actual["total"], value):
            label = "total" if sc.rank_by == "total" else f"total ({sc.rank_by})"
            mismatches.append(Mismatch(label, value, actual["total"], expected.loc))
        elif name == "scores":
            for score, want in value.items():
                got = actual["scores"][score]
                if (want is None and got is not None) or (want is not None and not _within(got, want)):
                    mismatches.append(Mismatch(f"scores.{score}", want, got, expected.loc))
        elif name == "missing":
            mismatches.extend(_missing_mismatches(value, missing))
    ex = None
    if mismatches:
        from chuanliu_cli.scoring.explain import explain_entity

        ex = explain_entity(run, sc.name, entity, note)
        if case.metrics is not None:
            # one entity alone ranks first and takes the cap: meaningless, so not shown
            ex = replace(ex, rank=None, grant=None, grant_note=None, pool=None)
    passed = tuple(g.id for g in sc.gates if g.id not in failed)
    return CaseResult(case, entity, actual, tuple(mismatches), ex, passed, failed, actual["tier"], warnings)


def _gate_missing(gate: Gate, row: dict[str, Any]) -> dict[str, float | None]:
    """For a failed gate of the `metric op constant` form: each compared name that does not hold and the
    amount between its value and the constant (None when it has no value), as explain's "needs" says;
    {} for another form."""
    out: dict[str, float | None] = {}
    for name, op, constant in comparisons(gate) or ():
        v = row.get(name)
        if v is None:
            out[name] = None
        elif not holds(v, op, constant):
            amount = round_micro(abs(constant - v)) / 1_000_000
            out[name] = max(out.get(name) or 0.0, amount)
    return out


def _missing_mismatches(
    expected: dict[str, MissingGate], actual: dict[str, dict[str, float | None]]
) -> list[Mismatch]:
    """Per gate listed: the names short of their constant and by how much, exactly as listed."""
    out = []
    for gid, gate in expected.items():
        got = actual.get(gid)
        if got is None:
            out.append(Mismatch(f"missing.{gid}", _amounts(gate), "the gate passes", gate.loc))
            continue
        for name, (amount, loc) in gate.amounts.items():
            if name not in got:
                out.append(Mismatch(f"missing.{gid}.{name}", amount, f"{name} holds", loc))
            elif not _same_amount(amount, got[name]):
                out.append(Mismatch(f"missing.{gid}.{name}", amount, got[name], loc))
        extra = {n: a for n, a in got.items() if n not in gate.amounts}
        if extra:
            out.append(Mismatch(f"missing.{gid}", _amounts(gate), got, gate.loc))
    return out


def _amounts(gate: MissingGate) -> dict[str, float | None]:
    return {name: amount for name, (amount, _loc) in gate.amounts.items()}


def _same_amount(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return round_micro(a) == round_micro(b)


def _within(value: float | None, want: Between) -> bool:
    """low ≤ value ≤ high, all rounded to 6 decimals (how gates and tiers compare)."""
    if value is None or value != value:
        return False
    micro = round_micro(value)
    return round_micro(want.low) <= micro <= round_micro(want.high)


def _show(value: Any) -> str:
    if isinstance(value, Between):
        return value.text()
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return str(value)


# --- coverage ----------------------------------------------------------------------------------------------


def _coverage(ruleset: Ruleset, results: list[CaseResult]) -> tuple[CoverageItem, ...]:
    """Each gate of each scorecard seen passing and failing, each tier reached, and by which cases."""
    items = []
    for sc in ruleset.scorecards:
        mine = [r for r in results if r.case.scorecard == sc.name]
        for gate in sc.gates:
            for kind, attr in (("gate passes", "gates_passed"), ("gate fails", "gates_failed")):
                cases = tuple(r.case.name for r in mine if gate.id in getattr(r, attr))
                items.append(CoverageItem(sc.name, kind, gate.id, cases))
        for tier in sc.tiers:
            cases = tuple(r.case.name for r in mine if r.tier == tier.name)
            items.append(CoverageItem(sc.name, "tier", tier.name, cases))
    return tuple(items)
