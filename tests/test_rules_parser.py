"""Ruleset YAML → model: every error kind located as FILE:LINE:COL, safe YAML, the bundled default."""

from __future__ import annotations

import hashlib
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from chuanliu_cli.errors import RulesetError
from chuanliu_cli.present.ruleset import EMPTY_AGGREGATE_NOTE, render_ruleset
from chuanliu_cli.rules.model import AggregateMetric, ConversionMetric, FormulaMetric, Ruleset, Window
from chuanliu_cli.rules.parser import MAX_FILE_BYTES, default_ruleset_path, load_ruleset, parse_ruleset

REPO = Path(__file__).resolve().parent.parent

BASE = """\
version: 1
name: t
scorecards:
  merchant:
    key: shop_id
    metrics:
      gmv:
        from: orders
        value: sum(net_amount)
    scores:
      total:
        parts:
          - {metric: gmv, weight: 1, normalize: {linear: [0, 100]}}
"""


def parse(text: str) -> Ruleset:
    return parse_ruleset(textwrap.dedent(text), "r.yaml")


def errors(text: str) -> list[str]:
    """The error lines of an invalid ruleset (first line of each error only)."""
    with pytest.raises(RulesetError) as info:
        parse(text)
    return [e.split("\n")[0] for e in info.value.errors]


def with_metrics(metrics: str, extra: str = "", scores: str | None = None) -> str:
    """BASE with other metrics (indented 6) and optional extra scorecard keys (indented 4)."""
    scores_block = (
        scores
        if scores is not None
        else "      total:\n        parts:\n"
        + ("          - {metric: gmv, weight: 1, normalize: {linear: [0, 100]}}\n")
    )
    return (
        "version: 1\nname: t\nscorecards:\n  merchant:\n    key: shop_id\n    metrics:\n"
        + textwrap.indent(textwrap.dedent(metrics), "      ")
        + "    scores:\n"
        + scores_block
        + textwrap.indent(textwrap.dedent(extra), "    ")
    )


GMV = "gmv:\n  from: orders\n  value: sum(net_amount)\n"


# -- the happy path ------------------------------------------------------------------------------------


def test_minimal_ruleset_and_defaults() -> None:
    ruleset = parse(BASE)
    assert ruleset.version == 1 and ruleset.name == "t"
    assert ruleset.timezone == "Asia/Shanghai" and ruleset.period == "month"
    sc = ruleset.scorecard("merchant")
    metric = sc.metric("gmv")
    assert isinstance(metric, AggregateMetric)
    assert metric.window == Window("period", 1, "period") and metric.where is None
    assert metric.value.text == "sum(net_amount)"
    assert (metric.value.loc.line, metric.value.loc.col) == (9, 16)
    assert sc.rank_by == "total" and sc.gates == () and sc.tiers == () and sc.reward is None
    assert ruleset.sha256 == hashlib.sha256(BASE.encode()).hexdigest()


def test_default_ruleset_is_bundled_byte_for_byte() -> None:
    bundled = default_ruleset_path()
    assert bundled.is_file()
    assert (REPO / "rules" / "chuanliu.yaml").read_bytes() == bundled.read_bytes()


def test_default_ruleset_matches_spec() -> None:
    ruleset = load_ruleset(default_ruleset_path())
    assert ruleset.name == "chuanliu-2023"
    assert ruleset.sha256 == hashlib.sha256(default_ruleset_path().read_bytes()).hexdigest()
    assert [sc.name for sc in ruleset.scorecards] == ["merchant", "promoter", "product"]
    merchant = ruleset.scorecard("merchant")
    assert [s.name for s in merchant.scores] == [
        "store_experience",
        "diligence",
        "distribution",
        "incremental",
        "total",
    ]
    assert [(t.name, t.min_score, t.multiplier) for t in merchant.tiers] == [
        ("S", 80, 3),
        ("A", 65, 2),
        ("B", 50, 1.5),
        ("C", 35, 1),
    ]
    assert merchant.reward is not None and merchant.reward.pool == 4_000_000_000
    assert (merchant.reward.cap, merchant.reward.min_grant) == (100_000_000, 100_000)
    assert [g.id for g in merchant.gates] == [
        "distribution_history",
        "stable_live",
        "store_experience",
        "active",
    ]
    assert merchant.gates[2].missing == "pass"
    assert isinstance(merchant.metric("converted_buyers"), ConversionMetric)
    assert isinstance(merchant.metric("self_live_growth"), FormulaMetric)
    promoter = ruleset.scorecard("promoter")
    carried = promoter.metric("carried_gmv")
    assert isinstance(carried, AggregateMetric) and carried.where is not None
    assert "merchant.eligible" in carried.where.text
    assert promoter.reward is not None and promoter.reward.pool == 1_000_000_000
    product = ruleset.scorecard("product")
    assert product.key == "item_id" and product.rank_by == "product_score" and product.reward is None
    assert ruleset.assumptions and "assum" in ruleset.assumptions


def test_scores_come_in_dependency_order_and_tiers_keep_their_order() -> None:
    ruleset = parse(
        with_metrics(
            GMV,
            extra="""\
            tiers:
              - {name: A, min_score: 60, multiplier: 2}
              - {name: B, min_score: 40, multiplier: 1.5}
              - {name: C, min_score: 20, multiplier: 1}
            reward: {pool: 4_000_000_000, cap: 100_000_000}
            """,
            scores="""\
      total:
        parts:
          - {score: a, weight: 1}
          - {score: b, weight: 1}
      b:
        parts:
          - {score: a, weight: 1}
      a:
        parts:
          - {metric: gmv, weight: 2.5, normalize: {bands: [[0, 0.2], [10, 1]]}, missing: skip}
""",
        )
    )
    sc = ruleset.scorecard("merchant")
    assert [s.name for s in sc.scores] == ["a", "b", "total"]
    assert [t.name for t in sc.tiers] == ["A", "B", "C"]
    assert sc.reward is not None and sc.reward.pool == 4_000_000_000
    part = sc.score("a").parts[0]
    assert part.normalize is not None and part.normalize.params == ((0, 0.2), (10, 1))
    assert part.missing == "skip" and part.weight == 2.5


def test_show_renders_every_scorecard_and_the_empty_aggregate_rule() -> None:
    console = Console(width=200, record=True, color_system=None)
    for renderable in render_ruleset(load_ruleset(default_ruleset_path())):
        console.print(renderable)
    text = console.export_text()
    for needle in (
        "chuanliu-2023",
        "sha256",
        "Asia/Shanghai",
        "Scorecard merchant",
        "Scorecard promoter",
        "Scorecard product",
        "converted_buyers",
        "linear [0.1, 0] (lower is better)",
        "distribution_history",
        "4,000,000,000",
        "count/sum over no rows = 0",
    ):
        assert needle in text, needle
    assert "count/sum over no rows = 0; avg/min/max/median = NULL" in EMPTY_AGGREGATE_NOTE


# -- one test per error kind -------------------------------------------------------------------------


def test_unknown_key_suggests_and_missing_key_is_reported() -> None:
    assert errors(BASE.replace("scorecards:", "scorecard:")) == [
        "r.yaml:1:1: the ruleset is missing 'scorecards'",
        "r.yaml:3:1: unknown key 'scorecard' in the ruleset; did you mean 'scorecards'?",
    ]


def test_wrong_type() -> None:
    assert errors(BASE.replace("version: 1", "version: one")) == [
        "r.yaml:1:10: version must be a whole number, got 'one'"
    ]


def test_unsupported_version() -> None:
    assert errors(BASE.replace("version: 1", "version: 2")) == [
        "r.yaml:1:10: unsupported ruleset version 2; this chuanliu reads version 1"
    ]


def test_missing_field() -> None:
    assert errors(with_metrics("gmv:\n  value: sum(net_amount)\n")) == [
        "r.yaml:8:9: metric 'gmv' is missing 'from' (one of orders, reviews, livestreams, shops)"
    ]


def test_duplicate_yaml_key() -> None:
    assert errors(with_metrics(GMV + GMV)) == [
        "r.yaml:10:7: duplicate key 'gmv' in metrics of scorecard 'merchant' (first at line 7)"
    ]


def test_unknown_source_window_and_normalizer_suggest() -> None:
    text = with_metrics(
        "gmv:\n  from: order\n  window: 90\n  value: sum(net_amount)\n",
        scores="      total:\n        parts:\n          - {metric: gmv, weight: 1, normalize: {lienar: [0, 1]}}\n",
    )
    assert errors(text) == [
        "r.yaml:8:15: unknown source 'order'; did you mean 'orders'?",
        "r.yaml:9:17: unknown window '90'; did you mean '90d'? (period, previous, Nd, Nm)",
        "r.yaml:14:50: unknown key 'lienar' in normalize; did you mean 'linear'?",
    ]


def test_week_window_needs_week_period() -> None:
    assert errors(with_metrics("gmv:\n  from: orders\n  window: 4w\n  value: sum(net_amount)\n")) == [
        "r.yaml:9:17: window '4w' counts weeks but the ruleset's period is month; write '4m' or days ('28d')"
    ]
    weekly = parse(
        BASE.replace("name: t", "name: t\nperiod: week").replace(
            "value: sum(net_amount)", "value: sum(net_amount)\n        window: 4w"
        )
    )
    assert weekly.scorecard("merchant").metric("gmv").window == Window("periods", 4, "4w")  # type: ignore[union-attr]
    assert errors(
        BASE.replace("name: t", "name: t\nperiod: week").replace(
            "value: sum(net_amount)", "value: sum(net_amount)\n        window: 3m"
        )
    ) == [
        "r.yaml:11:17: window '3m' counts months but the ruleset's period is week; write '3w' or days ('90d')"
    ]


@pytest.mark.parametrize(
    ("normalize", "message"),
    [
        ("{linear: [1, 1]}", "r.yaml:13:58: linear needs two different bounds, got [1, 1]"),
        (
            "{linear: [0, 5.0e-324]}",
            "r.yaml:13:58: linear bounds [0, 4.94066e-324] are too close together or too far apart to compute with",
        ),
        (
            "{linear: [-1.0e+308, 1.0e+308]}",
            "r.yaml:13:58: linear bounds [-1e+308, 1e+308] are too close together or too far apart to compute with",
        ),
        ("{log: [5, 1]}", "r.yaml:13:55: log needs 0 ≤ a < b, got [5, 1]"),
        ("{log: [-1, 5]}", "r.yaml:13:55: log needs 0 ≤ a < b, got [-1, 5]"),
        ("{bands: [[5, 0.5], [1, 1]]}", "r.yaml:13:68: band thresholds must ascend: 1 comes after 5"),
        ("{bands: [[1, 2]]}", "r.yaml:13:58: a band's value is a normalized value in [0, 1], got 2"),
        ("{linear: [1]}", "r.yaml:13:58: linear takes a list of 2 numbers, got a list"),
        ("{linear: [a, 1]}", "r.yaml:13:59: linear must be a number, got 'a'"),
    ],
)
def test_bad_normalizer_params(normalize: str, message: str) -> None:
    scores = f"      total:\n        parts:\n          - {{metric: gmv, weight: 1, normalize: {normalize}}}\n"
    assert errors(with_metrics(GMV, scores=scores)) == [message]


@pytest.mark.parametrize(
    ("weight", "message"),
    [
        ("0", "r.yaml:13:35: weight must be greater than 0, got 0"),
        ("-3", "r.yaml:13:35: weight must be greater than 0, got -3"),
        ("'3'", "r.yaml:13:35: weight must be a number, got '3'"),
        ("true", "r.yaml:13:35: weight must be a number, got 'true'"),
    ],
)
def test_weights_are_positive_numbers(weight: str, message: str) -> None:
    scores = f"      total:\n        parts:\n          - {{metric: gmv, weight: {weight}, normalize: rank}}\n"
    assert errors(with_metrics(GMV, scores=scores)) == [message]


def test_metric_part_needs_normalize_and_names_must_exist() -> None:
    scores = (
        "      total:\n        parts:\n"
        "          - {metric: gmv, weight: 1}\n"
        "          - {metric: gmb, weight: 1, normalize: rank}\n"
        "          - {metric: total, weight: 1, normalize: rank}\n"
        "          - {score: gmv, weight: 1}\n"
    )
    assert errors(with_metrics(GMV, scores=scores)) == [
        "r.yaml:13:13: the part for metric 'gmv' needs 'normalize' (one of linear, log, bands, rank)",
        "r.yaml:14:22: unknown metric 'gmb'; did you mean 'gmv'?",
        "r.yaml:15:22: 'total' is a score; write `score: total`",
        "r.yaml:16:21: 'gmv' is a metric; write `metric: gmv`",
    ]


def test_score_cycle_is_named() -> None:
    scores = (
        "      total:\n        parts:\n          - {score: diligence, weight: 1}\n"
        "      diligence:\n        parts:\n          - {score: total, weight: 1}\n"
    )
    assert errors(with_metrics(GMV, scores=scores)) == [
        "r.yaml:11:7: scores use each other in a cycle: total -> diligence -> total"
    ]


def test_requires_cycle_and_unknown_requires() -> None:
    scores = (
        "      total:\n        requires: {metric: total, at_least: 1}\n        parts:\n"
        "          - {metric: gmv, weight: 1, normalize: rank}\n"
        "      other:\n        requires: {metric: gmx, at_least: 1}\n        parts:\n"
        "          - {metric: gmv, weight: 1, normalize: rank}\n"
    )
    assert errors(with_metrics(GMV, scores=scores)) == [
        "r.yaml:11:7: scores use each other in a cycle: total -> total",
        "r.yaml:16:28: unknown metric or score 'gmx'; did you mean 'gmv'?",
    ]


def test_formula_cycle_is_named() -> None:
    metrics = GMV + "a:\n  formula: b + gmv\nb:\n  formula: a * 2\n"
    assert errors(with_metrics(metrics)) == ["r.yaml:10:7: formulas use each other in a cycle: a -> b -> a"]


def test_rank_by_must_name_a_score_or_metric() -> None:
    assert errors(with_metrics(GMV, extra="rank_by: totl\n")) == [
        "r.yaml:14:14: unknown score or metric 'totl'; did you mean 'total'?"
    ]
    no_total = with_metrics(
        GMV, scores="      s:\n        parts:\n          - {metric: gmv, weight: 1, normalize: rank}\n"
    )
    assert errors(no_total) == [
        "r.yaml:4:3: scorecard 'merchant' is missing 'rank_by' (it has no score named total)"
    ]


def test_key_must_be_a_column_of_every_source() -> None:
    metrics = GMV + "n:\n  from: shops\n  value: count(*)\n"
    text = with_metrics(metrics).replace("key: shop_id", "key: promoter_id")
    assert errors(text) == [
        "r.yaml:11:15: the scorecard's key 'promoter_id' is not a column of shops (metric 'n'); shops has: "
        "shop_id, shop_name, category, group_id"
    ]


def test_names_must_be_identifiers_and_not_sql_keywords() -> None:
    text = with_metrics(GMV + "select:\n  formula: gmv\n2x:\n  formula: gmv\n")
    assert errors(text) == [
        "r.yaml:10:7: metric name 'select' is an SQL keyword; choose another name",
        "r.yaml:12:7: metric name '2x' must be a name: letters, digits and _, not starting with a digit",
    ]


def test_period_and_timezone_are_checked() -> None:
    text = BASE.replace("name: t", "name: t\ntimezone: Asia/Shanghia\nperiod: mnth")
    assert errors(text) == [
        "r.yaml:3:11: unknown timezone 'Asia/Shanghia'; did you mean 'Asia/Shanghai'?",
        "r.yaml:4:9: unknown period 'mnth'; did you mean 'month'?",
    ]


def test_gates_tiers_and_reward() -> None:
    extra = """\
    gates:
      - {id: g, when: gmv > 0, reason: r}
      - {id: g, when: gmv > 1, reason: r, missing: maybe}
      - {id: h, when: gmv > 1}
    tiers:
      - {name: S, min_score: 80, multiplier: 3}
      - {name: S, min_score: 70, multiplier: 2}
      - {name: A, min_score: 80, multiplier: 2}
      - {name: B, min_score: 10, multiplier: 0}
    reward: {pool: 1.5e9, cap: 10, min_grant: 20}
    """
    assert errors(with_metrics(GMV, extra=extra)) == [
        "r.yaml:16:14: duplicate gate id 'g' (first at line 15)",
        "r.yaml:16:52: unknown missing value 'maybe' (expected one of: pass, fail)",
        "r.yaml:17:9: a gate of scorecard 'merchant' is missing 'reason'",
        "r.yaml:20:16: duplicate tier name 'S' (first at line 19)",
        "r.yaml:21:30: tiers S and A have the same min_score 80",
        "r.yaml:22:46: multiplier must be greater than 0, got 0",
        "r.yaml:23:20: pool must be a whole number, got '1.5e9'",
        "r.yaml:23:47: min_grant (20) is larger than cap (10)",
    ]


def test_tiers_listed_out_of_order_are_an_error() -> None:
    """A 85 listed under S 80 would silently make A the top tier with S's place and A's multiplier."""
    extra = """\
    tiers:
      - {name: S, min_score: 80, multiplier: 3}
      - {name: A, min_score: 85, multiplier: 2}
      - {name: B, min_score: 50, multiplier: 1.5}
    """
    assert errors(with_metrics(GMV, extra=extra)) == [
        "r.yaml:16:30: tier A (min_score 85) is listed after tier S (min_score 80): list tiers highest "
        "first, with strictly decreasing min_score"
    ]


def test_a_tier_above_the_reachable_score_is_a_warning() -> None:
    extra = """\
    tiers:
      - {name: S, min_score: 120, multiplier: 3}
      - {name: A, min_score: 65, multiplier: 2}
    """
    ruleset = parse(with_metrics(GMV, extra=extra))
    assert ruleset.warnings == (
        "r.yaml:15:9: tier S of scorecard 'merchant' needs total >= 120, above the highest value total can "
        "reach (100): no entity can be in it",
    )
    assert parse(with_metrics(GMV)).warnings == ()


VOCABULARY_CASES = [
    (
        "sale_mode = 'distrbution'",
        "'distrbution' is not a value of sale_mode (its values: distribution, self); did you mean 'distribution'?",
    ),
    (
        "'distrbution' = sale_mode",
        "'distrbution' is not a value of sale_mode (its values: distribution, self); did you mean 'distribution'?",
    ),
    (
        "sale_mode != 'Self'",
        "'Self' is not a value of sale_mode (its values: distribution, self); did you mean 'self'?",
    ),
    (
        "carrier <> 'liev'",
        "'liev' is not a value of carrier (its values: card, live, other, video); did you mean 'live'?",
    ),
    (
        "status not in ('pending', 'closd')",
        "'closd' is not a value of status (its values: closed, completed, paid, pending, received, refunded, shipped); did you mean 'closed'?",
    ),
    (
        "status in ('paid', 'xyz')",
        "'xyz' is not a value of status (its values: closed, completed, paid, pending, received, refunded, shipped)",
    ),
]


@pytest.mark.parametrize(("where", "message"), VOCABULARY_CASES)
def test_a_quoted_value_compared_with_an_enumerated_column_must_be_one_of_its_values(
    where: str, message: str
) -> None:
    text = with_metrics(f'gmv:\n  from: orders\n  where: "{where}"\n  value: sum(net_amount)\n')
    (error,) = errors(text)
    assert error.split(": ", 1)[1] == message
    assert error.startswith("r.yaml:9:")


@pytest.mark.parametrize(
    "where",
    [
        "sale_mode = 'distribution' and carrier in ('live', 'video')",
        "status not in ('pending', 'closed')",
        "item_name = 'anything at all'",  # a free-text column has no vocabulary
        "lower(sale_mode) = 'self'",  # only a bare column is checked
    ],
)
def test_canonical_values_and_free_text_pass(where: str) -> None:
    parse(with_metrics(f'gmv:\n  from: orders\n  where: "{where}"\n  value: sum(net_amount)\n'))


def test_host_type_vocabulary_and_a_filter_error_is_reported_once() -> None:
    text = with_metrics(
        GMV
        + "a:\n  from: orders\n  where: valid_order\n  value: count(*)\n"
        + "b:\n  from: orders\n  where: valid_order and carrier = 'live'\n  value: count(*)\n"
        + "live:\n  from: livestreams\n  where: host_type = 'slef'\n  value: count(*)\n"
    ).replace("scorecards:", "filters:\n  valid_order: status not in ('pending', 'closd')\nscorecards:")
    found = errors(text)
    assert [e.split(": ", 1)[1].split(" (")[0] for e in found] == [
        "'closd' is not a value of status",
        "'slef' is not a value of host_type",
    ]


def test_a_broken_quote_in_a_filter_is_reported_once() -> None:
    text = with_metrics(
        GMV + "a:\n  from: orders\n  where: valid_order\n  value: count(*)\n"
        "b:\n  from: orders\n  where: valid_order\n  value: count(*)\n"
    ).replace("scorecards:", "filters:\n  valid_order: status not in ('pending', 'closed)\nscorecards:")
    found = errors(text)
    assert len(found) == 1 and found[0].startswith("r.yaml:4:16: cannot read expression"), found


def test_reward_pool_must_not_be_negative() -> None:
    assert errors(with_metrics(GMV, extra="reward: {pool: -1}\n")) == [
        "r.yaml:14:20: pool must be at least 0, got -1"
    ]


def test_filter_name_cannot_shadow_a_column_and_filter_cycles() -> None:
    text = BASE.replace("scorecards:", "filters:\n  status: 1 = 1\n  a: b\n  b: a\nscorecards:")
    assert errors(text) == [
        "r.yaml:4:3: filter 'status' has the name of a column of orders; rename the filter",
        "r.yaml:5:6: filters use each other in a cycle: a -> b -> a",
    ]


def test_filters_are_checked_against_each_source_they_are_used_with() -> None:
    text = with_metrics(
        GMV + "live:\n  from: livestreams\n  where: valid_order\n  value: count(*)\n"
    ).replace("scorecards:", "filters:\n  valid_order: status <> 'closed'\nscorecards:")
    assert errors(text) == [
        "r.yaml:4:16: unknown column 'status' of livestreams (filter 'valid_order' used on livestreams by "
        "metric 'live')"
    ]


def test_expression_errors_are_located_in_the_file_with_carets() -> None:
    metrics = (
        "a:\n  from: orders\n  where: \"sale_mode = 'self' and getenv('x') = 1\"\n  value: count(*)\n"
        "b:\n  from: orders\n  where: |\n    sale_mode = 'self'\n      and read_csv('x') is null\n  value: count(*)\n"
        "c:\n  from: orders\n  where: sale_mode = 'self' and\n    staus = 'x'\n  value: count(*)\n"
    )
    with pytest.raises(RulesetError) as info:
        parse(with_metrics(GMV + metrics))
    assert info.value.errors == [
        "r.yaml:12:40: unknown function getenv (allowed: count, sum, avg, min, max, median, stddev, coalesce, "
        "nullif, greatest, least, abs, round, floor, ceil, ln, log10, sqrt, power, date_trunc, extract, lower, "
        "upper, length, date_part)\n    sale_mode = 'self' and getenv('x') = 1\n                           ^^^^^^",
        "r.yaml:18:17: table function read_csv is not allowed: rules cannot read files or tables\n"
        "      and read_csv('x') is null\n          ^^^^^^^^",
        "r.yaml:23:11: unknown column 'staus' of orders; did you mean 'status'?\n"
        "    sale_mode = 'self' and staus = 'x'\n                           ^^^^^",
    ]


def test_scorecard_results_usable_only_from_earlier_scorecards_on_their_key() -> None:
    text = BASE + textwrap.indent(
        textwrap.dedent("""\
        promoter:
          key: promoter_id
          metrics:
            carried:
              from: orders
              where: merchant.eligible and promoter.total > 1 and shop.tier = 'A'
              value: sum(net_amount)
            rated:
              from: reviews
              where: product.eligible
              value: count(*)
          rank_by: carried
        product:
          key: item_id
          metrics:
            n:
              from: orders
              where: merchant.eligible
              value: count(*)
          rank_by: n
        viewer:
          key: shop_id
          metrics:
            v:
              from: livestreams
              where: product.tier = 'A'
              value: count(*)
          rank_by: v
        """),
        "  ",
    )
    assert errors(text) == [
        "r.yaml:19:38: scorecard 'promoter' cannot use its own results",
        "r.yaml:19:61: unknown scorecard 'shop'; only scorecards evaluated before this one can be used",
        "r.yaml:23:16: scorecard 'product' is evaluated after 'promoter'; move it before",
        "r.yaml:39:16: scorecard 'product' is keyed by item_id, which is not a column of livestreams",
    ]


def test_every_error_of_a_file_is_reported_at_once() -> None:
    text = (
        BASE.replace("version: 1", "version: x")
        .replace("sum(net_amount)", "sum(net_amout)")
        .replace("weight: 1", "weight: 0")
    )
    assert errors(text) == [
        "r.yaml:1:10: version must be a whole number, got 'x'",
        "r.yaml:9:20: unknown column 'net_amout' of orders; did you mean 'net_amount'?",
        "r.yaml:13:35: weight must be greater than 0, got 0",
    ]


# -- safe YAML ---------------------------------------------------------------------------------------


def test_python_tags_are_refused_without_running_anything(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = BASE.replace("name: t", f"name: !!python/object/apply:os.system ['touch {marker}']")
    assert errors(text) == [
        "r.yaml:2:7: YAML tag !!python/object/apply:os.system is not allowed: a ruleset is plain data"
    ]
    assert not marker.exists()
    assert errors(BASE.replace("name: t", "name: !custom t")) == [
        "r.yaml:2:7: YAML tag !custom is not allowed: a ruleset is plain data"
    ]


def test_alias_bomb_is_refused_quickly() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    )
    start = time.perf_counter()
    found = errors(bomb)
    assert time.perf_counter() - start < 2
    assert found == [
        "r.yaml:1:4: YAML anchors (&a) are not allowed; write the value out",
        "r.yaml:2:4: YAML anchors (&b) are not allowed; write the value out",
        "r.yaml:2:8: YAML aliases (*a) are not allowed; write the value out",
        "r.yaml:2:12: 78 more YAML anchors or aliases from here on (none is allowed)",
    ]


def test_yaml_syntax_error_is_located() -> None:
    assert errors("version: 1\nname: [t\n") == [
        "r.yaml:3:1: YAML syntax error: while parsing a flow sequence expected ',' or ']', but got '<stream end>'"
    ]


def test_empty_file() -> None:
    assert errors("") == ["r.yaml:1:1: the ruleset file is empty; it starts with `version: 1`"]


def test_oversized_and_non_utf8_files(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(RulesetError) as info:
        load_ruleset(big)
    assert info.value.errors == [f"{big}:1:1: ruleset file is larger than 1,000,000 bytes"]
    gbk = tmp_path / "gbk.yaml"
    gbk.write_bytes(BASE.replace("name: t", "name: 川流").encode("gbk"))
    with pytest.raises(RulesetError) as info:
        load_ruleset(gbk)
    assert info.value.errors == [f"{gbk}:2:1: ruleset file is not UTF-8 (byte 17)"]
    with pytest.raises(RulesetError) as info:
        load_ruleset(tmp_path / "missing.yaml")
    assert info.value.errors[0].startswith(f"{tmp_path / 'missing.yaml'}:1:1: cannot read the ruleset")


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + BASE.encode())
    assert load_ruleset(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes_the_parser(text: str) -> None:
    try:
        parse_ruleset(text, "r.yaml")
    except RulesetError as e:
        assert e.errors and all(line.startswith("r.yaml:") for line in e.errors)
