"""The public library: Session over data=, db= and its typed results, warnings and errors (SPEC §8)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from chuanliu_cli.api import Session, check_rules, compile_rules, load_rules
from chuanliu_cli.errors import ChuanliuError, DataError, IncompletePeriodError, RulesetError, UsageError
from tests.conftest import REPO

DATA = REPO / "sample_data"
RULES = REPO / "rules" / "chuanliu.yaml"


@pytest.fixture(scope="module")
def session() -> Session:
    """One in-memory session over the sample data, shared by the read-only tests."""
    with Session(data=DATA) as s:
        yield s  # type: ignore[misc]


@pytest.fixture(scope="module")
def loaded_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    db = str(tmp_path_factory.mktemp("api") / "api.duckdb")
    with Session(db=db) as s:
        result = s.load(directory=DATA)
    assert {f.table for f in result.files} == {"orders", "reviews", "livestreams", "shops"}
    return db


def test_eligible_returns_the_reward_list(session: Session, capsys: pytest.CaptureFixture[str]) -> None:
    reward = session.eligible("2023-05")
    assert reward.scorecard == "merchant" and reward.complete and reward.warnings == ()
    assert reward.frame.height == reward.totals["eligible"] > 0
    assert reward.frame["eligible"].all()
    assert reward.frame["grant"].sum() == reward.totals["allocated"]
    assert reward.run_id is None  # data= records nothing
    assert [e["shop_id"] for e in reward.to_dict()["entities"]] == reward.frame["shop_id"].to_list()
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""  # the library never prints


def test_score_selects_ids_and_top(session: Session) -> None:
    every = session.score("2023-05")
    assert every.frame.height == every.totals["entities"]
    ids = every.frame["shop_id"].to_list()[3:5]
    assert session.score("2023-05", ids=ids).frame["shop_id"].to_list() == ids
    assert session.score("2023-05", top=3).frame["shop_id"].to_list() == every.frame["shop_id"].to_list()[:3]
    assert session.score("2023-05", scorecard="promoter").result.key == "promoter_id"


def test_data_is_loaded_once_per_session(monkeypatch: pytest.MonkeyPatch, private_cache: Path) -> None:
    import chuanliu_cli.ingest.loader as loader

    calls = []
    real = loader.load_files

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loader, "load_files", spy)  # (a private cache: not a load kept by another test)
    with Session(data=DATA) as s:
        assert calls == []  # opened lazily
        s.eligible("2023-05")
        s.explain("ks700001", "2023-05")
    assert calls == [1]
    with Session(data=DATA) as s:  # the same files again: their tables come from the cache
        s.eligible("2023-05")
    assert calls == [1]


def test_explain_compare_report(session: Session, tmp_path: Path) -> None:
    ex = session.explain("ks700001", "2023-05")
    assert ex.explanation.key == "ks700001" and ex.to_dict()["key"] == "ks700001"
    with pytest.raises(DataError, match="unknown"):
        session.explain("nobody", "2023-05")
    cmp = session.compare("2023-05", against_period="2023-04")
    assert cmp.comparison.scorecard == "merchant" and cmp.frame.height == len(cmp.comparison.rows)
    # the frame's rows are the csv's (present/documents.comparison_rows), each side named
    labels = (cmp.comparison.a.label, cmp.comparison.b.label)
    assert labels[0].startswith("2023-05") and labels[1].startswith("2023-04")
    assert cmp.frame.select("a", "b").unique().rows() == [labels]
    with pytest.raises(UsageError):
        session.compare("2023-05")
    out = tmp_path / "r.html"
    report = session.report("2023-05", output=out)
    assert out.read_text(encoding="utf-8") == report.html and report.path == out
    assert "<html" in report.html


def test_rejected_rows_of_data_are_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    with (data / "orders.csv").open("a", encoding="utf-8") as f:
        f.write("bad1,ks700001,b1,,,self,live,not a time,1,1,completed,,,\n")
    with Session(data=data) as s:
        reward = s.eligible("2023-05")
    assert any("row(s) rejected" in w for w in reward.warnings), reward.warnings
    assert capsys.readouterr().err == ""


def test_incomplete_period_is_a_warning_or_an_error(session: Session) -> None:
    june = session.eligible("2023-06")
    assert not june.complete
    assert any("2023-06 is incomplete" in w for w in june.warnings)
    with pytest.raises(IncompletePeriodError) as info:
        session.eligible("2023-06", require_complete=True)
    assert "--" not in str(info.value.hint)


def test_the_ruleset_is_checked_before_scoring(session: Session, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(RULES.read_text(encoding="utf-8").replace("sum(net_amount)", "sum(no_such_column)", 1))
    with pytest.raises(RulesetError):
        session.eligible("2023-05", rules=bad)
    ruleset = load_rules(RULES)
    assert session.eligible("2023-05", rules=ruleset).run.ruleset.sha256 == ruleset.sha256


def test_rules_without_a_session() -> None:
    ruleset, summary = check_rules(RULES)
    assert [sc.name for sc in summary.scorecards] == [sc.name for sc in ruleset.scorecards]
    _, period, compiled = compile_rules("2023-05", "merchant")
    assert period.label == "2023-05" and compiled[0][0] == "merchant" and "SELECT" in compiled[0][1].upper()
    with pytest.raises(UsageError, match="unknown scorecard 'merchants'") as info:
        compile_rules("2023-05", "merchants")
    assert "did you mean 'merchant'" in str(info.value.hint)


def test_database_session_records_and_lists_runs(loaded_db: str) -> None:
    with Session(db=loaded_db) as s:
        reward = s.eligible("2023-05")
        assert reward.run_id is not None
        runs = s.runs()
        assert runs.runs[0]["run_id"] == reward.run_id and runs.frame.height == len(runs.runs)
        detail = s.runs(reward.run_id)
        assert detail.run is not None and len(detail.results) == reward.totals["entities"]
        assert s.eligible("2023-05", record=False).run_id is None
        assert s.status().status is not None


@pytest.mark.parametrize(
    "make",
    [
        lambda tmp: Session(db=tmp / "missing.duckdb").eligible("2023-05"),
        lambda tmp: Session(db=tmp / "x.duckdb", data=DATA),
        lambda tmp: Session(data=DATA).load("orders", [DATA / "orders.csv"]),
        lambda tmp: Session(data=DATA).runs(),
        lambda tmp: Session(engine="spark"),
        lambda tmp: Session(db=tmp / "x.duckdb").load("orders", [DATA / "orders.csv"], timezone="Mars/Base"),
        lambda tmp: Session(db=tmp / "x.duckdb").load(),
    ],
    ids=[
        "no database",
        "db and data",
        "load into data",
        "runs of data",
        "spark without data",
        "timezone",
        "nothing",
    ],
)
def test_library_errors_name_no_cli_flags(tmp_path: Path, make: object) -> None:
    with pytest.raises(ChuanliuError) as info:
        make(tmp_path)  # type: ignore[operator]
    assert "--" not in info.value.message and "--" not in (info.value.hint or ""), info.value


def test_api_misuse_is_a_usage_error(tmp_path: Path) -> None:
    """A notebook's slips get the tool's own errors: a number for a period or an id, one file given as a
    string (not read as its letters)."""
    from chuanliu_cli.api import Session
    from chuanliu_cli.errors import UsageError

    with Session(data=REPO / "sample_data") as s:
        with pytest.raises(UsageError, match=r"a period is text such as '2023-05', not 202305"):
            s.eligible(202305)  # type: ignore[arg-type]
        with pytest.raises(UsageError, match=r"an id is text, not 700001"):
            s.explain(700001, "2023-05")  # type: ignore[arg-type]
    db = tmp_path / "c.duckdb"
    with Session(db=db) as s:
        loaded = s.load("orders", str(REPO / "sample_data" / "orders.csv"))
    assert [r.table for r in loaded.files] == ["orders"] and loaded.files[0].inserted > 0


def test_an_id_pasted_with_spaces_is_the_id(tmp_path: Path) -> None:
    """An id asked for is read as a load reads one (conversion.bare_id): " ks700001\\u3000" pasted from a
    sheet is ks700001, for explain and for score/eligible --id."""
    from chuanliu_cli.api import Session

    with Session(data=REPO / "sample_data") as s:
        assert s.explain(" ks700001\u3000", "2023-05").explanation.key == "ks700001"
        chosen = s.score("2023-05", ids=["\tks700001 "])
        assert chosen.frame["shop_id"].to_list() == ["ks700001"]
