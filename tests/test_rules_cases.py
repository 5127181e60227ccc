"""`chuanliu rules test`: ruleset test cases (rules/cases.py reads them, scoring/casetests.py runs them),
their coverage, the bundled ruleset's own cases, and every invalid case file refused with its location."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chuanliu_cli.api import run_rule_cases
from chuanliu_cli.rules.cases import CaseFileError
from chuanliu_cli.rules.files import default_ruleset_path
from tests.conftest import REPO

RULES = REPO / "rules" / "chuanliu.yaml"

#: Every metric the default merchant scorecard's gates and scores read, for one steady merchant.
STEADY = (
    "{live_days: 20, live_hours: 80, live_weeks: 4, new_followers: 3000, distribution_gmv: 200000, "
    "distribution_promoters: 12, distribution_orders_90d: 40, self_live_gmv: 50000, self_live_growth: 0.3, "
    "distribution_share: 0.4, converted_buyers: 300, reviews_90d: 50, quality_avg_90d: 4.8, "
    "logistics_avg_90d: 4.7, service_avg_90d: 4.9, negative_rate_90d: 0.01, complaint_rate_90d: 0.0, "
    "quality_return_rate_90d: 0.005}"
)


def _cases(tmp_path: Path, body: str, name: str = "my.cases.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    return path


# --- the bundled ruleset's cases --------------------------------------------------------------------------


def test_the_bundled_cases_pass_with_full_coverage(invoke: Callable[..., Any]) -> None:
    """`chuanliu rules test` without a file: every version of the bundled directory, each with the cases
    shipped beside it."""
    result = invoke("rules", "test", "--min-coverage", "100", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [r["ruleset"]["name"] for r in doc["rulesets"]] == ["chuanliu-2023-01", "chuanliu-2023"]
    assert doc["summary"]["failed"] == 0 and doc["summary"]["cases"] >= 28
    assert all(r["coverage"]["percent"] == 100.0 for r in doc["rulesets"])
    assert {c["kind"] for c in doc["rulesets"][1]["cases"]} == {"metrics", "data"}


@pytest.mark.parametrize("name", ["chuanliu", "chuanliu-2023-01"])
def test_the_bundled_cases_files_are_shipped_with_the_package(name: str) -> None:
    packaged = default_ruleset_path().parent / f"{name}.cases.yaml"
    assert packaged.read_bytes() == (REPO / "rules" / f"{name}.cases.yaml").read_bytes()


def test_a_directory_runs_each_version_with_its_own_cases(tmp_path: Path, invoke: Callable[..., Any]) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    for name in ("chuanliu-2023-01", "chuanliu"):
        (versions / f"{name}.yaml").write_bytes((REPO / "rules" / f"{name}.yaml").read_bytes())
    (versions / "chuanliu.cases.yaml").write_bytes((REPO / "rules" / "chuanliu.cases.yaml").read_bytes())
    missing = invoke("rules", "test", str(versions))
    assert missing.exit_code == 3, missing.output
    assert f"{versions / 'chuanliu-2023-01.cases.yaml'}:1:1: cannot read the case file" in missing.output
    both = invoke("rules", "test", str(versions), "--cases", str(versions / "chuanliu.cases.yaml"))
    assert both.exit_code == 2, both.output
    assert "give RULES as a ruleset file to run it with --cases" in both.output


def test_the_table_lists_every_case_and_the_coverage(tmp_path: Path, invoke: Callable[..., Any]) -> None:
    cases = _cases(
        tmp_path,
        f"""
        period: 2023-05
        cases:
          - name: steady merchant
            given: {{metrics: {STEADY}}}
            expect: {{eligible: true, tier: A}}
        """,
    )
    result = invoke("rules", "test", str(RULES), "--cases", str(cases))
    assert result.exit_code == 0, result.output
    assert "PASS  merchant · steady merchant · case · 2023-05 (metrics)" in result.output
    assert "merchant: gates passing 4/4, gates failing 0/4, tiers 1/4" in result.output
    assert "1 passed, 0 failed" in result.output


# --- outcomes -------------------------------------------------------------------------------------------


def test_a_failing_case_shows_expected_actual_and_the_explanation(
    tmp_path: Path, invoke: Callable[..., Any]
) -> None:
    cases = _cases(
        tmp_path,
        f"""
        period: 2023-05
        cases:
          - name: steady merchant
            given:
              metrics: {STEADY}
            expect: {{eligible: true, tier: S, total: {{between: [80, 90]}}}}
        """,
    )
    result = invoke("rules", "test", str(RULES), "--cases", str(cases))
    assert result.exit_code == 1, result.output
    out = result.output
    assert "FAIL  merchant · steady merchant · case · 2023-05 (metrics)" in out
    assert f"tier: expected S, got A ({cases}:6:36)" in " ".join(out.split())
    assert "total: expected between [80, 90], got 72.788173" in out
    # the explanation, as `chuanliu explain` shows it, without the meaningless rank and grant of one entity
    assert "What it is missing" in out and "tier S needs total ≥ 80" in out
    assert "✓ eligible · tier A · total 72.79\n" in out  # no rank, no grant
    assert "0 passed, 1 failed" in out


def test_the_json_document(tmp_path: Path, invoke: Callable[..., Any]) -> None:
    cases = _cases(
        tmp_path,
        f"""
        period: 2023-05
        cases:
          - name: steady merchant
            given: {{metrics: {STEADY}}}
            expect: {{eligible: true, tier: A, total: {{between: [72, 73]}}}}
          - name: wrong tier
            given: {{metrics: {STEADY}}}
            expect: {{tier: C}}
        """,
    )
    result = invoke("rules", "test", str(RULES), "--cases", str(cases), "--format", "json")
    assert result.exit_code == 1, result.output
    whole = json.loads(result.stdout)
    assert whole["summary"] == {"rulesets": 1, "cases": 2, "passed": 1, "failed": 1}
    (doc,) = whole["rulesets"]
    assert doc["ruleset"]["name"] == "chuanliu-2023"
    assert doc["summary"] == {"cases": 2, "passed": 1, "failed": 1}
    first, second = doc["cases"]
    assert first["passed"] and first["explanation"] is None and first["kind"] == "metrics"
    assert first["actual"]["tier"] == "A" and first["actual"]["eligible"] is True
    assert second["mismatches"] == [
        {"field": "tier", "expected": "C", "actual": "A", "location": f"{cases}:8:20"}
    ]
    assert second["explanation"]["tier"] == "A"
    assert doc["coverage"]["total"] == 19
    passing = [
        i for i in doc["coverage"]["items"] if i["kind"] == "gate passes" and i["scorecard"] == "merchant"
    ]
    assert all(i["cases"] == ["steady merchant", "wrong tier"] for i in passing)


def test_min_coverage_fails_when_something_was_never_exercised(
    tmp_path: Path, invoke: Callable[..., Any]
) -> None:
    cases = _cases(
        tmp_path,
        f"""
        period: 2023-05
        cases:
          - name: steady merchant
            given: {{metrics: {STEADY}}}
            expect: {{eligible: true}}
        """,
    )
    ok = invoke("rules", "test", str(RULES), "--cases", str(cases))
    assert ok.exit_code == 0, ok.output
    assert "coverage 26.3% (5 of 19)" in ok.output
    assert "not exercised: merchant: gate stable_live fails" in ok.output
    assert "not exercised: promoter: tier A" in ok.output
    low = invoke("rules", "test", str(RULES), "--cases", str(cases), "--min-coverage", "100")
    assert low.exit_code == 1, low.output
    assert "coverage 26.3% is below --min-coverage 100" in low.output
    assert invoke("rules", "test", str(RULES), "--cases", str(cases), "--min-coverage", "25").exit_code == 0


def test_missing_amounts_are_compared_per_gate(tmp_path: Path) -> None:
    steady = STEADY.replace("live_days: 20", "live_days: 5").replace("live_weeks: 4", "live_weeks: 3")
    cases = _cases(
        tmp_path,
        f"""
        period: 2023-05
        cases:
          - name: right amount
            given: {{metrics: {steady}}}
            expect: {{failed_gates: [stable_live], missing: {{stable_live: {{live_days: 3}}}}}}
          - name: wrong amount
            given: {{metrics: {steady}}}
            expect: {{missing: {{stable_live: {{live_days: 2}}}}}}
          - name: a name that holds
            given: {{metrics: {steady}}}
            expect: {{missing: {{stable_live: {{live_weeks: 1}}}}}}
          - name: a gate that passes
            given: {{metrics: {steady}}}
            expect: {{missing: {{active: {{self_live_gmv: 1}}}}}}
        """,
    )
    (report,) = run_rule_cases(RULES, cases)
    shown = {r.case.name: [m.describe() for m in r.mismatches] for r in report.results}
    assert shown == {
        "right amount": [],
        "wrong amount": ["missing.stable_live.live_days: expected 2, got 3"],
        "a name that holds": [
            "missing.stable_live.live_weeks: expected 1, got live_weeks holds",
            "missing.stable_live: expected {live_weeks: 1}, got {live_days: 3}",
        ],
        "a gate that passes": ["missing.active: expected {self_live_gmv: 1}, got the gate passes"],
    }


def test_a_data_case_is_loaded_and_scored_like_score_data(tmp_path: Path) -> None:
    """Rows go through the loader's canonicalization: Chinese enumeration values, a 万 amount, an order id
    with leading zeros, and a refunded order counted as fully refunded."""
    cases = _cases(
        tmp_path,
        """
        period: 2023-05
        cases:
          - name: rows
            entity: "007"
            given:
              orders:
                - {order_id: "0001", shop_id: "007", buyer_id: b1, sale_mode: 达人合作成交, promoter_id: p1,
                   carrier: 短视频, order_time: "2023/5/3 10:00", paid_amount: "1.2万", status: 交易成功}
                - {order_id: "0002", shop_id: "007", buyer_id: b2, sale_mode: self, carrier: live,
                   order_time: "2023-05-04 10:00:00", paid_amount: "¥300", status: refunded}
                - {order_id: "0003", shop_id: "007", buyer_id: b3, sale_mode: self, carrier: live,
                   order_time: "2023-05-05 10:00:00", paid_amount: 200, status: completed}
              livestreams:
                - {shop_id: "007", host_type: 自播, start_time: "2023-05-01 20:00:00", duration_minutes: 1小时20分}
            expect: {eligible: false, failed_gates: [stable_live]}
        """,
    )
    (report,) = run_rule_cases(RULES, cases)
    (result,) = report.results
    assert result.passed, [m.describe() for m in result.mismatches]
    assert result.entity == "007"
    assert result.actual["grant"] == 0 and result.actual["rank"] is None
    assert result.actual["missing"] == {"stable_live": {"live_days": 7.0, "live_weeks": 2.0}}
    assert report.warnings == ()  # columns left out take their defaults: no warning for each of them


# --- invalid case files: exit 3, located ------------------------------------------------------------------

INVALID = [
    pytest.param(
        """
        period: 2023-05
        cases:
          - name: typo
            given: {metrics: {live_dayz: 3}}
            expect: {eligible: false}
        """,
        "4:23: case 'typo': unknown metric 'live_dayz' of scorecard merchant; did you mean 'live_days'?",
        id="unknown-metric",
    ),
    pytest.param(
        """
        period: 2023-05
        cases:
          - name: short
            given: {metrics: {live_days: 3, live_weeks: 1}}
            expect: {eligible: false}
        """,
        "4:22: case 'short' lacks metrics live_hours, new_followers, distribution_gmv, distribution_promoters, "
        "distribution_orders_90d, self_live_gmv, self_live_growth, distribution_share and 8 more, read by the "
        "gates or scores of merchant: give each a value, or null for no value",
        id="metric-left-out",
    ),
    pytest.param(
        f"""
        period: 2023-05
        cases:
          - name: grant
            given: {{metrics: {STEADY}}}
            expect: {{grant: 100000000}}
        """,
        "5:14: case 'grant': a metric case holds one entity, and a grant is a share of the pool among every "
        "eligible entity: give rows of the entities that share the pool",
        id="grant-of-a-metric-case",
    ),
    pytest.param(
        f"""
        period: 2023-05
        cases:
          - name: gates
            given: {{metrics: {STEADY}}}
            expect: {{failed_gates: [stable_lives], tier: SS}}
        """,
        "5:29: unknown gate 'stable_lives' of merchant; did you mean 'stable_live'?",
        id="unknown-gate",
    ),
    pytest.param(
        f"""
        period: 2023-05
        cases:
          - name: tier
            given: {{metrics: {STEADY}}}
            expect: {{tier: SS}}
        """,
        "5:20: unknown tier 'SS' of merchant; did you mean 'S'?",
        id="unknown-tier",
    ),
    pytest.param(
        f"""
        cases:
          - name: no period
            given: {{metrics: {STEADY}}}
            expect: {{eligible: true}}
        """,
        "2:5: case 'no period' has no period; add `period: 2023-05` to it or at the top of the file",
        id="no-period",
    ),
    pytest.param(
        f"""
        period: 2023-W18
        cases:
          - name: week
            given: {{metrics: {STEADY}}}
            expect: {{eligible: true}}
        """,
        "1:9: '2023-W18' is a week, but the ruleset scores months",
        id="week-for-a-monthly-ruleset",
    ),
    pytest.param(
        f"""
        period: 2023-05
        cases:
          - name: range
            given: {{metrics: {STEADY}}}
            expect: {{total: {{between: [90, 80]}}}}
        """,
        "5:31: between [90, 80]: the low end comes first",
        id="between-reversed",
    ),
    pytest.param(
        f"""
        period: 2023-05
        cases:
          - name: both
            given: {{metrics: {STEADY}, orders: []}}
            expect: {{eligible: true}}
        """,
        "case 'both' gives metrics and rows of orders: a case gives metric values or rows, not both",
        id="metrics-and-rows",
    ),
    pytest.param(
        """
        period: 2023-05
        cases:
          - name: column
            given:
              orders:
                - {shop_idd: s1}
            expect: {eligible: true}
        """,
        "6:12: orders has no column 'shop_idd'; did you mean 'shop_id'? (cases use the canonical column names)",
        id="unknown-column",
    ),
    pytest.param(
        """
        period: 2023-05
        cases:
          - name: bad status
            entity: s1
            given:
              orders:
                - {shop_id: s1, buyer_id: b1, sale_mode: self, order_time: "2023-05-03 10:00:00",
                   paid_amount: 10, status: completed}
                - {shop_id: s1, buyer_id: b1, sale_mode: self, order_time: "2023-05-03 10:00:00",
                   paid_amount: 10, status: shipped-ish}
            expect: {eligible: false}
        """,
        "9:11: case 'bad status': this orders row is refused: column status: unknown value 'shipped-ish'",
        id="rejected-row",
    ),
    pytest.param(
        """
        period: 2023-05
        cases:
          - name: required
            given:
              orders:
                - {shop_id: s1, sale_mode: self, order_time: "2023-05-03 10:00:00", paid_amount: 10,
                   status: completed}
            expect: {eligible: false}
        """,
        "6:11: case 'required': rows of orders cannot be loaded: orders: missing required column buyer_id of orders",
        id="required-column",
    ),
    pytest.param(
        """
        period: 2023-05
        cases:
          - name: two shops
            given:
              orders:
                - {shop_id: s1, buyer_id: b1, sale_mode: self, order_time: "2023-05-03 10:00:00",
                   paid_amount: 10, status: completed}
                - {shop_id: s2, buyer_id: b1, sale_mode: self, order_time: "2023-05-03 10:00:00",
                   paid_amount: 10, status: completed}
            expect: {eligible: false}
        """,
        "3:5: case 'two shops': the rows hold 2 shop_id values of scorecard merchant in 2023-05 (s1, s2); say "
        "which one the case expects with `entity:`",
        id="which-entity",
    ),
    pytest.param(
        """
        period: 2023-05
        cases:
          - name: absent
            entity: s9
            given:
              orders:
                - {shop_id: s1, buyer_id: b1, sale_mode: self, order_time: "2023-05-03 10:00:00",
                   paid_amount: 10, status: completed}
            expect: {eligible: false}
        """,
        "4:13: case 'absent': shop_id 's9' is not in the population of merchant in 2023-05",
        id="entity-not-in-the-data",
    ),
    pytest.param(
        """
        period: 2023-05
        cases:
          - name: amount of another form
            scorecard: promoter
            given: {metrics: {carried_gmv: 0, carried_merchants: 0, promoter_live_days: 0, reviews_90d: 0,
                      quality_avg_90d: null, service_avg_90d: null, negative_rate_90d: null}}
            expect: {missing: {carried: {carried_merchants: 1}}}
        """,
        "7:34: case 'amount of another form': gate carried compares carried_gmv, not 'carried_merchants'",
        id="missing-names-a-name-the-gate-does-not-compare",
    ),
    pytest.param(
        f"""
        period: 2023-05
        cases:
          - name: dup
            given: {{metrics: {STEADY}}}
            expect: {{eligible: true}}
          - name: dup
            given: {{metrics: {STEADY}}}
            expect: {{eligible: true}}
        """,
        "6:5: duplicate case name 'dup' (first at line 3)",
        id="duplicate-name",
    ),
    pytest.param(
        """
        period: 2023-05
        cases:
          - name: x
            given: {metrics: {live_days: 1}}
            expect: {eligible: yes please}
        """,
        "5:24: eligible must be true or false, got 'yes please'",
        id="not-a-boolean",
    ),
    pytest.param(
        """
        period: 2023-05
        cases:
          - name: x
            given: {metrics: {live_days: 1}
            expect: {eligible: true}
        """,
        "YAML syntax error",
        id="yaml-syntax",
    ),
    pytest.param(
        """
        period: 2023-05
        cases:
          - name: x
            given: {metrics: {live_days: 1}}
            expect: {eligble: true}
        """,
        "5:14: unknown key 'eligble' in expect of case 'x'; did you mean 'eligible'?",
        id="unknown-expectation",
    ),
]


@pytest.mark.parametrize(("body", "message"), INVALID)
def test_an_invalid_case_file_is_refused_with_its_location(
    tmp_path: Path, invoke: Callable[..., Any], body: str, message: str
) -> None:
    cases = _cases(tmp_path, body)
    with pytest.raises(CaseFileError) as raised:
        run_rule_cases(RULES, cases)
    assert any(message in e for e in raised.value.errors), raised.value.errors
    assert all(e.startswith(f"{cases}:") for e in raised.value.errors), raised.value.errors
    result = invoke("rules", "test", str(RULES), "--cases", str(cases))
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    assert message in " ".join(result.output.split()), result.output


def test_a_metric_case_cannot_test_a_rank_normalizer(tmp_path: Path) -> None:
    rules = tmp_path / "ranked.yaml"
    rules.write_text(
        textwrap.dedent(
            """
            version: 1
            name: ranked
            scorecards:
              merchant:
                key: shop_id
                metrics:
                  gmv: {from: orders, value: sum(paid_amount)}
                scores:
                  total:
                    parts:
                      - {metric: gmv, weight: 1, normalize: rank}
            """
        ),
        encoding="utf-8",
    )
    _cases(
        tmp_path,
        """
        period: 2023-05
        cases:
          - name: alone
            given: {metrics: {gmv: 10}}
            expect: {total: 100}
        """,
        "ranked.cases.yaml",
    )
    with pytest.raises(CaseFileError) as raised:
        run_rule_cases(rules)  # the cases file beside the ruleset, found by default
    assert raised.value.errors == [
        f"{tmp_path / 'ranked.cases.yaml'}:4:13: case 'alone': scorecard merchant normalizes a part by rank (a "
        "percent rank among the population); a metric case holds one entity, whose rank would always be 1. "
        "Give rows of several entities instead"
    ]


def test_a_missing_case_file_says_where_it_was_looked_for(tmp_path: Path, invoke: Callable[..., Any]) -> None:
    rules = tmp_path / "mine.yaml"
    rules.write_bytes(RULES.read_bytes())
    result = invoke("rules", "test", str(rules))
    assert result.exit_code == 3, result.output
    assert f"{tmp_path / 'mine.cases.yaml'}:1:1: cannot read the case file" in result.output
