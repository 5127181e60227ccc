"""Data lints of a scored period: before any data, nobody scored, a gate nobody passes, an empty reward
list, a filtered metric that is zero for everyone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chuanliu_cli.ingest.loader import LoadOptions, discover, load_files
from chuanliu_cli.periods import parse_period
from chuanliu_cli.rules.parser import default_ruleset_path, load_ruleset, parse_ruleset
from chuanliu_cli.scoring.lints import data_lints
from chuanliu_cli.scoring.pipeline import score_period
from chuanliu_cli.store.database import Database, memory_database
from tests.conftest import REPO


@pytest.fixture(scope="module")
def sample_db() -> Iterator[Database]:
    db = memory_database()
    load_files(db, discover(REPO / "sample_data"), LoadOptions())
    yield db
    db.con.close()


def test_the_sample_month_has_no_lints(sample_db: Database) -> None:
    run = score_period(sample_db.con, load_ruleset(default_ruleset_path()), parse_period("2023-05"))
    assert data_lints(run, "merchant") == []
    assert data_lints(run, "promoter") == []


def test_a_month_before_any_data(sample_db: Database) -> None:
    run = score_period(sample_db.con, load_ruleset(default_ruleset_path()), parse_period("2022-05"))
    assert data_lints(run, "merchant") == [
        "2022-05 is before any data (the data starts 2023-03-01)",
        "scorecard merchant has no entities in 2022-05: nothing to rank or reward",
    ]


def test_an_empty_database_is_no_data_at_all() -> None:
    db = memory_database()
    try:
        run = score_period(db.con, load_ruleset(default_ruleset_path()), parse_period("2023-05"))
    finally:
        db.con.close()
    assert data_lints(run, "merchant") == ["there is no data at all: 2023-05 was scored on empty tables"]


def test_a_metric_matching_no_row_and_a_gate_nobody_passes(sample_db: Database) -> None:
    text = default_ruleset_path().read_text(encoding="utf-8")
    text = text.replace(
        "when: live_days >= 8 and live_weeks >= 3", "when: live_days >= 800 and live_weeks >= 3"
    )
    ruleset = parse_ruleset(text, "r.yaml")
    run = score_period(sample_db.con, ruleset, parse_period("2023-05"), upto="merchant")
    found = data_lints(run, "merchant")
    assert found[0].startswith("gate stable_live is passed by no entity (59 scored): `live_days >= 800")
    assert (
        found[1]
        == "no entity of scorecard merchant is eligible in 2023-05 (59 scored): the reward list is empty"
    )


def test_a_filtered_metric_zero_for_everyone(sample_db: Database) -> None:
    text = """\
version: 1
name: t
scorecards:
  merchant:
    key: shop_id
    metrics:
      gmv: {from: orders, value: sum(net_amount)}
      weird: {from: orders, where: "sale_mode = 'self' and promoter_id is not null", value: count(*)}
      weird_avg: {from: orders, where: "sale_mode = 'self' and promoter_id is not null", value: avg(paid_amount)}
      weird_sum: {from: orders, where: "sale_mode = 'self' and promoter_id is not null", value: sum(paid_amount)}
    scores:
      total:
        parts:
          - {metric: gmv, weight: 1, normalize: {linear: [0, 100]}}
"""
    run = score_period(sample_db.con, parse_ruleset(text, "r.yaml"), parse_period("2023-05"))
    assert data_lints(run, "merchant") == [
        "metric weird is 0 for every one of 58 entities: its filter `sale_mode = 'self' and promoter_id is "
        "not null` matches no row in its window",
        "metric weird_avg is empty for every one of 58 entities: its filter `sale_mode = 'self' and "
        "promoter_id is not null` matches no row in its window",
    ]
