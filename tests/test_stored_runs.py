"""Only the scorecards a result needs are scored; a recorded run keeps every entity's values, and explain
and score --id are served from it while the ruleset, the tool and the data are those it was scored with."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chuanliu_cli.api import Session, load_rules
from chuanliu_cli.periods import parse_period
from chuanliu_cli.present.documents import explanation_json
from chuanliu_cli.rules.compiler import scorecards_needed
from chuanliu_cli.rules.parser import default_ruleset_path
from chuanliu_cli.scoring.pipeline import score_period

REPO = Path(__file__).resolve().parent.parent
MAY = "2023-05"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("stored") / "s.duckdb")
    Session(db=path).load(directory=REPO / "sample_data")
    return path


@pytest.fixture
def db(loaded: str, tmp_path: Path) -> str:
    """A fresh copy of the loaded sample (each test records its own runs)."""
    path = str(tmp_path / "s.duckdb")
    shutil.copy(loaded, path)
    return path


# --- only what is needed is scored ------------------------------------------------------------------------


def test_a_scorecard_scores_only_the_earlier_scorecards_it_references() -> None:
    rules = load_rules(None)
    assert scorecards_needed(rules, "merchant") == ("merchant",)
    assert scorecards_needed(rules, "promoter") == ("merchant", "promoter")  # merchant.eligible in a where
    assert scorecards_needed(rules, "product") == ("product",)
    assert scorecards_needed(rules, None) == ("merchant", "promoter", "product")


def test_a_reference_through_a_named_filter_counts(tmp_path: Path) -> None:
    text = default_ruleset_path().read_text(encoding="utf-8")
    text = text.replace(
        "  distribution_order: valid_order and sale_mode = 'distribution'\n",
        "  distribution_order: valid_order and sale_mode = 'distribution'\n"
        "  with_eligible_merchant: valid_order and merchant.eligible\n",
    )
    # the product scorecard's orders metric now reads merchant results, through the filter only
    start = text.index("\n  product:\n")
    where = text.index("where: valid_order", start)
    end = text.index("\n", where)
    text = text[:where] + "where: with_eligible_merchant" + text[end:]
    path = tmp_path / "r.yaml"
    path.write_text(text, encoding="utf-8")
    rules = load_rules(path)
    assert scorecards_needed(rules, "product") == ("merchant", "product")


def test_scoring_product_does_not_score_merchant_or_promoter(db: str) -> None:
    from chuanliu_cli.store.database import open_database

    rules = load_rules(None)
    with open_database(db, "read") as handle:
        run = score_period(handle.con, rules, parse_period(MAY, "month"), upto="product")
        everything = score_period(handle.con, rules, parse_period(MAY, "month"))
    assert list(run.scorecards) == ["product"]
    assert list(everything.scorecards) == ["merchant", "promoter", "product"]
    assert run.scorecards["product"].frame.equals(everything.scorecards["product"].frame)
    assert run.missing_history == everything.missing_history or all(
        m.table in {h.table for h in everything.missing_history} for m in run.missing_history
    )


# --- recorded values --------------------------------------------------------------------------------------


def _explained(session: Session, key: str, scorecard: str) -> str:
    return json.dumps(
        explanation_json(session.explain(key, MAY, scorecard=scorecard).explanation),
        default=str,
        sort_keys=True,
    )


@pytest.mark.parametrize("scorecard", ["merchant", "promoter", "product"])
def test_a_recorded_run_reads_back_as_scored(db: str, scorecard: str) -> None:
    from chuanliu_cli.store.database import open_database
    from chuanliu_cli.store.runs import load_stored_run

    session = Session(db=db)
    recorded = session.eligible(MAY, scorecard=scorecard)
    assert recorded.run_id is not None and not recorded.stored
    with open_database(db, "read") as handle:
        back = load_stored_run(handle.con, recorded.run_id, recorded.run.ruleset, recorded.run.period)
    original, stored = recorded.result, back.scorecards[scorecard]
    assert stored.frame.equals(original.frame), "metrics, scores, gates, tiers, ranks, grants all kept"
    assert stored.frame.columns == original.frame.columns
    if original.gate_outcomes is None:
        assert stored.gate_outcomes is None
    else:
        assert stored.gate_outcomes is not None and stored.gate_outcomes.equals(original.gate_outcomes)
    assert stored.totals() == original.totals()
    assert (back.complete, back.incomplete_tables, back.missing_history) == (
        recorded.run.complete,
        recorded.run.incomplete_tables,
        recorded.run.missing_history,
    )
    assert back.data_window == recorded.run.data_window


@pytest.mark.parametrize(
    "scorecard",
    ["merchant", *(pytest.param(s, marks=pytest.mark.slow) for s in ("promoter", "product"))],
)
def test_explain_and_score_by_id_are_served_from_the_recorded_run(db: str, scorecard: str) -> None:
    session = Session(db=db)
    plain = session.score(MAY, scorecard=scorecard, record=False)
    keys = plain.frame[plain.result.key].to_list()
    sample = [*keys[:6], *keys[-3:]]
    fresh = {k: _explained(session, k, scorecard) for k in sample}  # nothing recorded yet: scored
    recorded = session.eligible(MAY, scorecard=scorecard)
    for key in sample:
        assert _explained(session, key, scorecard) == fresh[key]
    explained = session.explain(sample[0], MAY, scorecard=scorecard)
    assert explained.warnings == recorded.warnings
    by_id = session.score(MAY, scorecard=scorecard, ids=sample[:2])
    assert by_id.stored and by_id.run_id == recorded.run_id
    assert by_id.frame.equals(plain.frame.filter(plain.frame[plain.result.key].is_in(sample[:2])))
    assert session.runs().runs[0]["run_id"] == recorded.run_id, "a served result records no new run"


def test_a_load_since_the_run_means_scoring_again(db: str, write: Callable[..., Any]) -> None:
    session = Session(db=db)
    session.eligible(MAY)
    assert session.score(MAY, ids=["ks700001"]).stored
    lines = (REPO / "sample_data" / "orders.csv").read_text(encoding="utf-8").splitlines()
    header, first = lines[0], lines[1].split(",")
    first[header.split(",").index("order_id")] = "zz-stored-run-test"
    extra = write("orders.csv", header + "\n" + ",".join(first) + "\n")
    session.load("orders", files=[extra])
    again = session.score(MAY, ids=["ks700001"])
    assert not again.stored
    assert again.run_id is not None and again.run_id > 1


def test_another_ruleset_or_tool_version_means_scoring_again(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = Session(db=db)
    session.eligible(MAY)
    other = tmp_path / "other.yaml"
    other.write_text(
        default_ruleset_path().read_text(encoding="utf-8") + "\n# another file\n", encoding="utf-8"
    )
    assert not session.score(MAY, rules=other, ids=["ks700001"]).stored
    assert session.score(MAY, ids=["ks700001"]).stored
    monkeypatch.setattr("chuanliu_cli.store.runs.__version__", "99.0")
    assert not session.score(MAY, ids=["ks700001"], record=False).stored


def test_the_command_line_says_when_a_result_was_read_from_a_recorded_run(
    db: str, invoke: Callable[..., Any]
) -> None:
    first = invoke("--db", db, "score", "--month", MAY, "--id", "ks700001", "--format", "json")
    assert first.exit_code == 0 and "Recorded as run 1" in first.output
    again = invoke("--db", db, "score", "--month", MAY, "--id", "ks700001", "--format", "json")
    assert again.exit_code == 0 and "Read from recorded run 1" in again.output
    assert again.stdout == first.stdout


def test_a_served_result_keeps_the_warnings_of_its_recording(db: str, tmp_path: Path) -> None:
    """The data lints are stored with the run: a served explanation warns as the recorded list did."""
    text = default_ruleset_path().read_text(encoding="utf-8")
    rules = tmp_path / "strict.yaml"
    rules.write_text(
        text.replace("when: live_days >= 8 and", "when: live_days >= 80 and", 1), encoding="utf-8"
    )
    session = Session(db=db)
    recorded = session.eligible(MAY, rules=rules)
    lint = [w for w in recorded.warnings if "passed by no entity" in w]
    assert lint, recorded.warnings
    served = session.explain("ks700001", MAY, rules=rules)
    assert served.warnings == recorded.warnings
    assert session.score(MAY, rules=rules, ids=["ks700001"]).stored


def test_an_unknown_key_of_a_served_month_still_names_the_nearest(db: str) -> None:
    """A served explanation reads only the entity's row; a key that is not there reads everyone's keys."""
    from chuanliu_cli.errors import DataError

    session = Session(db=db)
    session.eligible(MAY)
    with pytest.raises(DataError) as caught:
        session.explain("ks7000019", MAY)
    assert "nearest known" in str(caught.value.hint) and "ks700001" in str(caught.value.hint)
    idle = session.explain("ks700060", MAY)  # a listed shop without activity: known, not in the population
    assert idle.explanation.in_population is False


def test_score_by_id_served_reads_only_the_asked_rows_and_says_so_among_everyone(
    db: str, invoke: Callable[..., Any]
) -> None:
    session = Session(db=db)
    recorded = session.eligible(MAY)
    served = session.score(MAY, ids=["ks700001", "ks700003"])
    assert served.stored and served.result.frame.height == 2  # only the asked rows were read
    assert served.result.size == recorded.result.size == 59
    assert served.totals == recorded.totals
    table = invoke("--db", db, "score", "--month", MAY, "--id", "ks700001", "--format", "table")
    assert table.exit_code == 0 and "Showing 1 of 59 entities" in table.output
    unknown = invoke("--db", db, "score", "--month", MAY, "--id", "ks7000019", "--format", "json")
    assert unknown.exit_code == 4 and "nearest known" in unknown.output and "ks700001" in unknown.output


@pytest.mark.parametrize("nested", [False, True], ids=["rank", "rank-of-ranks"])
def test_an_explanation_with_rank_parts_reads_the_entity_and_what_ranks_from_the_run(
    db: str, tmp_path: Path, nested: bool
) -> None:
    """A `rank` part makes an entity's score depend on everyone's values: served, the explanation reads the
    entity's row and everyone's values of what the ranks read (every metric for a rank of ranks), not every
    row in full, and says exactly what scoring now says."""
    text = default_ruleset_path().read_text(encoding="utf-8")
    ranked = "{metric: live_hours, weight: 30, normalize: rank}"
    text = text.replace("{metric: live_hours, weight: 30, normalize: {log: [0, 200]}}", ranked)
    if nested:
        text = text.replace(
            "- {score: diligence, weight: 30}", "- {score: diligence, weight: 30, normalize: rank}"
        )
    rules = tmp_path / "ranked.yaml"
    rules.write_text(text, encoding="utf-8")
    session = Session(db=db)
    keys = session.score(MAY, rules=rules, record=False).frame["shop_id"].to_list()
    sample = [keys[0], keys[len(keys) // 2], keys[-1]]

    def explained(key: str) -> tuple[str, Any]:
        result = session.explain(key, MAY, rules=rules)
        text = json.dumps(explanation_json(result.explanation), default=str, sort_keys=True)
        return text, result.run.scorecards["merchant"]

    fresh = {k: explained(k)[0] for k in sample}
    session.eligible(MAY, rules=rules)
    for key in sample:
        text_served, served = explained(key)
        assert text_served == fresh[key]
        assert served.frame.height == 1 and served.population is not None
        assert served.population.height == len(keys)
        metrics = {m.name for m in served.scorecard.metrics}
        wanted = {"shop_id", "live_hours", *(metrics | {"diligence"} if nested else ())}
        assert set(served.population.columns) == wanted
