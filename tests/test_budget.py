"""A yearly budget with pacing (SPEC §9): the arithmetic by hand (even, the remainder period, remaining with
carried-forward unallocated, a mid-year upgrade re-pacing the rest), the `budget` key's errors, and
`chuanliu budget` over recorded and unrecorded months."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import pytest

from chuanliu_cli.errors import RulesetError
from chuanliu_cli.periods import month_period, parse_period, week_period
from chuanliu_cli.rules.effective import ruleset_for_period
from chuanliu_cli.rules.model import Budget
from chuanliu_cli.rules.parser import parse_ruleset
from chuanliu_cli.scoring.budget import (
    derive_pool,
    even_pool,
    pace_rewards,
    remaining_pool,
    year_periods,
)

REPO = Path(__file__).resolve().parent.parent
LAUNCH = REPO / "rules" / "chuanliu-2023-01.yaml"
BUDGET = REPO / "rules" / "examples" / "chuanliu-2023-budget.yaml"


def may() -> object:
    return month_period(2023, 5)


# --- the arithmetic, by hand -------------------------------------------------------------------------------


def test_even_months_the_last_takes_the_remainder() -> None:
    # 1,000,000,007 / 12 = 83,333,333 rest 11: eleven months of 83,333,333, December 83,333,344
    pools = [even_pool(1_000_000_007, 12, i) for i in range(12)]
    assert pools == [83_333_333] * 11 + [83_333_344]
    assert sum(pools) == 1_000_000_007
    budget = Budget(1_000_000_007, "year", "even")
    assert derive_pool(budget, month_period(2023, 3), granted=999)[0] == 83_333_333  # granted is ignored
    pool, basis = derive_pool(budget, month_period(2023, 12), 0)
    assert pool == 83_333_344
    assert basis == (
        "budget 1,000,000,007 a year paced evenly: the year's last month takes the rest, "
        "1,000,000,007 − 11 × 83,333,333"
    )


def test_even_weeks_of_iso_years() -> None:
    assert len(year_periods(week_period(date(2020, 6, 1)))) == 53  # 2020 has an ISO week 53
    assert len(year_periods(week_period(date(2023, 6, 1)))) == 52
    # the ISO year of 2021-01-01 is 2020 (its week 53)
    assert year_periods(parse_period("2020-W53", "week"))[-1].label == "2020-W53"
    budget = Budget(5_300_001, "year", "even")
    assert derive_pool(budget, parse_period("2020-W01", "week"), 0)[0] == 100_000
    assert derive_pool(budget, parse_period("2020-W53", "week"), 0)[0] == 100_001  # 5,300,001 − 52 × 100,000
    assert derive_pool(budget, parse_period("2023-W52", "week"), 0)[0] == 5_300_001 - 51 * 101_923


def test_remaining_carries_unallocated_forward() -> None:
    budget = Budget(12_000, "year", "remaining")
    # January: 12,000 / 12 = 1,000; it allocates 600 (400 unallocated)
    assert derive_pool(budget, month_period(2023, 1), 0)[0] == 1_000
    # February: (12,000 − 600) / 11 = 1,036.36… → 1,036: the 400 spread over the 11 months left
    assert derive_pool(budget, month_period(2023, 2), 600)[0] == 1_036
    # March, after February allocated its 1,036: (12,000 − 1,636) / 10 = 1,036.4 → 1,036
    pool, basis = derive_pool(budget, month_period(2023, 3), 1_636, "recorded runs 1, 2")
    assert pool == 1_036
    assert basis == (
        "budget 12,000 a year paced by what remains: (12,000 − 1,636 granted in 2023 before 2023-03 "
        "(recorded runs 1, 2)) / 10 months left, rounded down"
    )
    # December takes everything left
    assert derive_pool(budget, month_period(2023, 12), 11_001)[0] == 999
    assert remaining_pool(12_000, 13_000, 3) == 0  # overspent: nothing more
    assert derive_pool(budget, month_period(2023, 10), 13_000)[1].endswith(
        "; 1,000 more than the budget was granted already"
    )


# --- the `budget` key --------------------------------------------------------------------------------------

REWARD = """\
version: 1
name: r
scorecards:
  merchant:
    key: shop_id
    metrics:
      gmv: {{from: orders, value: sum(net_amount)}}
    scores:
      total:
        parts:
          - {{metric: gmv, weight: 1, normalize: {{linear: [0, 100]}}}}
    tiers:
      - {{name: A, min_score: 10, multiplier: 1}}
    reward:
{reward}
"""


def reward(*lines: str) -> str:
    return REWARD.format(reward="\n".join(f"      {line}" for line in lines))


def test_budget_parsed() -> None:
    ruleset = parse_ruleset(reward("budget: {amount: 12_000, per: year, pacing: remaining}", "cap: 500"), "r")
    got = ruleset.scorecard("merchant").reward
    assert got is not None and got.budget is not None
    assert (got.budget.amount, got.budget.per, got.budget.pacing, got.cap) == (
        12_000,
        "year",
        "remaining",
        500,
    )
    assert not got.paced  # no pool until a period is scored
    default_per = parse_ruleset(reward("budget: {amount: 1, pacing: even}"), "r").scorecard("merchant").reward
    assert default_per is not None and default_per.budget is not None
    assert (default_per.budget.amount, default_per.budget.per, default_per.budget.pacing) == (
        1,
        "year",
        "even",
    )


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            ("pool: 100", "budget: {amount: 1, pacing: even}"),
            "r:16:7: reward of scorecard 'merchant' has both",
        ),
        (("unit: impressions",), "r:15:7: reward of scorecard 'merchant' is missing 'pool' (or 'budget')"),
        (("budget: {amount: 1, pacing: evn}",), "r:15:35: unknown pacing 'evn'"),
        (
            ("budget: {amount: 1, per: month, pacing: even}",),
            "r:15:32: unknown budget period ('per') 'month'",
        ),
        (("budget: {amount: -1, pacing: even}",), "r:15:24: budget amount must be at least 0, got -1"),
        (("budget: {amount: 1.5, pacing: even}",), "r:15:24: budget amount must be a whole number"),
        (("budget: {pacing: even}",), "r:15:15: budget of scorecard 'merchant' is missing 'amount'"),
    ],
)
def test_budget_errors_located(lines: tuple[str, ...], message: str) -> None:
    with pytest.raises(RulesetError) as caught:
        parse_ruleset(reward(*lines), "r")
    assert any(e.startswith(message) for e in caught.value.errors), caught.value.errors


# --- pacing over recorded runs -----------------------------------------------------------------------------


def plan_dir(tmp_path: Path) -> Path:
    """The launch version (fixed pools, 2023-01..04) and the budget example (from 2023-05)."""
    plan = tmp_path / "plan"
    plan.mkdir(exist_ok=True)
    for source in (LAUNCH, BUDGET):
        (plan / source.name).write_bytes(source.read_bytes())
    return plan


def record(
    con: object, period: str, allocated: int, pool: int = 2_000_000_000, command: str = "eligible"
) -> int:
    """A recorded run of the merchant scorecard with the given totals (what `eligible` records)."""
    p = parse_period(period)
    row = con.execute("SELECT coalesce(max(run_id), 0) + 1 FROM runs").fetchone()  # type: ignore[attr-defined]
    run_id = int(row[0])
    con.execute(  # type: ignore[attr-defined]
        "INSERT INTO runs (run_id, started_at, finished_at, command, period, period_start, period_end, complete, "
        "scorecard, ruleset_name, ruleset_sha256, ruleset_path, orders_rows, reviews_rows, livestreams_rows, "
        "shops_rows, max_load_id, entities, eligible, pool, allocated, tool_version) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, true, 'merchant', 'chuanliu-2023-01', 'x', 'p', 0, 0, 0, 0, NULL, 1, 1, ?, ?, "
        "'t')",
        [run_id, datetime(2023, 6, 1), datetime(2023, 6, 1), f"chuanliu {command} --month {period}", period,
         p.start, p.end, pool, allocated],
    )  # fmt: skip
    return run_id


def test_an_upgrade_mid_year_repaces_what_is_left(tmp_path: Path) -> None:
    from chuanliu_cli.store.database import memory_database

    db = memory_database()
    con = db.con
    try:
        runs = [
            record(con, f"2023-0{m}", a)
            for m, a in ((1, 2_000_000_000), (2, 2_000_000_000), (3, 1_500_000_000))
        ]
        record(con, "2023-04", 1_900_000_000)
        record(con, "2023-04", 2_000_000_000)  # the latest run of a period counts
        record(con, "2023-04", 1, command="score")  # a `score` run is not a recorded reward list
        ruleset, p = ruleset_for_period(plan_dir(tmp_path), "2023-05")
        paced = pace_rewards(con, ruleset, p)
        merchant = paced.scorecard("merchant").reward
        promoter = paced.scorecard("promoter").reward
        assert merchant is not None and promoter is not None
        # granted January..April: 2.0 + 2.0 + 1.5 + 2.0 = 7.5 billion (March left 0.5 billion unallocated);
        # May: (48 − 7.5) billion / 8 months left = 5,062,500,000
        assert merchant.pool == 5_062_500_000
        assert merchant.basis == (
            "budget 48,000,000,000 a year paced by what remains: (48,000,000,000 − 7,500,000,000 granted in 2023 "
            f"before 2023-05 (recorded runs {runs[0]}, {runs[1]}, {runs[2]}, 5)) / 8 months left, rounded down"
        )
        assert promoter.pool == 1_000_000_000  # 12,000,000,000 / 12, evenly
        assert paced.warnings == ruleset.warnings  # every earlier month recorded: nothing to say
        # June, after May allocated 5,000,000,000: (48 − 12.5) billion / 7 = 5,071,428,571.43 → 5,071,428,571
        record(con, "2023-05", 5_000_000_000, pool=5_062_500_000)
        june, pj = ruleset_for_period(plan_dir(tmp_path), "2023-06")
        got = pace_rewards(con, june, pj).scorecard("merchant").reward
        assert got is not None and got.pool == 5_071_428_571
    finally:
        con.close()


def test_a_month_without_a_recorded_run_is_scored_and_said(tmp_path: Path) -> None:
    from chuanliu_cli.store.database import memory_database

    db = memory_database()
    con = db.con
    try:
        record(con, "2023-01", 2_000_000_000)
        record(con, "2023-02", 2_000_000_000)
        record(con, "2023-03", 1_500_000_000)
        # April has no recorded run: scored now with chuanliu-2023-01 on this (empty) database, it grants 0
        ruleset, p = ruleset_for_period(plan_dir(tmp_path), "2023-05")
        paced = pace_rewards(con, ruleset, p)
        merchant = paced.scorecard("merchant").reward
        assert merchant is not None
        assert merchant.pool == (48_000_000_000 - 5_500_000_000) // 8 == 5_312_500_000
        assert merchant.basis is not None and "recorded runs 1, 2, 3; scored 2023-04" in merchant.basis
        assert paced.warnings[-1] == (
            "merchant pool of 2023-05: 2023-04 has no recorded `eligible` run, so it was scored now with the "
            "ruleset in force then to count what it granted (record it: chuanliu eligible --month 2023-04 "
            "--scorecard merchant)"
        )
    finally:
        con.close()


# --- end to end --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database holding a small synthetic sample: March to May 2023."""
    from chuanliu_cli.api import Session
    from chuanliu_cli.sample import generate_sample

    out = tmp_path_factory.mktemp("budget")
    generate_sample(out / "data", merchants=12, months=3, end="2023-05", seed=7)
    path = str(out / "small.duckdb")
    with Session(db=path) as session:
        session.load(directory=out / "data")
    return path


def test_budget_command_and_the_paced_list(invoke: Callable[..., object], db: str, tmp_path: Path) -> None:
    plan = str(plan_dir(tmp_path))
    from chuanliu_cli.api import Session

    with Session(db=db) as session:  # recorded as `Session.eligible('2023-03')`: eligible runs
        march = session.eligible("2023-03", rules=plan)
        april = session.eligible("2023-04", rules=plan)
    april_doc = april.to_dict()
    assert april_doc["ruleset"]["name"] == "chuanliu-2023-01" and "pool_basis" not in april_doc["totals"]
    result = invoke("budget", "--db", db, "--rules", plan, "--year", "2023", "--format", "json")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    doc = json.loads(result.stdout)  # type: ignore[attr-defined]
    rows = doc["periods"]
    assert [r["period"] for r in rows] == ["2023-01", "2023-02", "2023-03", "2023-04", "2023-05"]
    assert [r["source"] for r in rows] == ["scored", "scored", "run", "run", "scored"]
    assert [r["run_id"] for r in rows[2:4]] == [march.run_id, april.run_id]
    assert rows[3]["allocated"] == april_doc["totals"]["allocated"]
    assert rows[0]["allocated"] == rows[1]["allocated"] == 0  # (the data starts in March)
    assert [r["pool"] for r in rows[:4]] == [2_000_000_000] * 4
    granted = sum(r["allocated"] for r in rows[:4])
    assert rows[4]["pool"] == (48_000_000_000 - granted) // 8
    assert rows[4]["ruleset"] == "chuanliu-2023-budget"
    assert rows[4]["left_of_year"] == 48_000_000_000 - granted - rows[4]["allocated"]
    assert [r["left_of_year"] for r in rows[:4]] == [None] * 4  # fixed pools: no yearly budget then
    assert rows[4]["unallocated"] == rows[4]["pool"] - rows[4]["allocated"]
    assert doc["periods_after"] == 7
    assert doc["warnings"] == [
        "2023-01, 2023-02, 2023-05: no recorded `eligible` run of merchant; scored now with the "
        "ruleset in force then (record a period with `chuanliu eligible --month ...`)",
        "merchant 2023: 2023-01, 2023-02 were scored on data that does not cover them (chuanliu status): "
        "what they granted may be understated; load their data, or record the list that was published",
    ]
    assert [r["complete"] for r in rows] == [False, False, None, None, True]
    assert "2023-01, 2023-02, 2023-05: no recorded" in result.output  # type: ignore[attr-defined]
    # the May list uses that pool, and says how it was derived
    may_list = invoke(
        "eligible", "--db", db, "--rules", plan, "--month", "2023-05", "--format", "json", "--no-record"
    )
    assert may_list.exit_code == 0, may_list.output  # type: ignore[attr-defined]
    may_doc = json.loads(may_list.stdout)  # type: ignore[attr-defined]
    totals = may_doc["totals"]
    assert totals["pool"] == rows[4]["pool"]
    assert "merchant pool of 2023-05: 2023-01, 2023-02 were scored on data that does not cover them" in str(
        may_doc["warnings"]
    )
    assert f"(recorded runs {march.run_id}, {april.run_id}; scored 2023-01, 2023-02)" in totals["pool_basis"]
    table = invoke("budget", "--db", db, "--rules", plan, "--year", "2023", "--format", "table")
    assert table.exit_code == 0, table.output  # type: ignore[attr-defined]
    assert f"run {rows[3]['run_id']}" in table.stdout  # type: ignore[attr-defined]
    assert "left of the budget: " in table.stdout  # type: ignore[attr-defined]


def test_budget_command_errors(invoke: Callable[..., object], db: str) -> None:
    bad = invoke("budget", "--db", db, "--year", "2023", "--scorecard", "nobody")
    assert bad.exit_code == 2, bad.output  # type: ignore[attr-defined]
    none = invoke("budget", "--db", db, "--year", "2021")
    assert none.exit_code == 3, none.output  # type: ignore[attr-defined]
    assert "no ruleset is in force in 2021" in none.output  # type: ignore[attr-defined]
