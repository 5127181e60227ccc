"""Shop groups (多店多号, SPEC §9): key_from parsing, the grouped metric query against hand-written SQL, group
names, the shops' group_id and category in outputs, --id/--group, and `sample --late-refunds`."""

from __future__ import annotations

import csv
import json
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chuanliu_cli.errors import RulesetError
from chuanliu_cli.periods import parse_period
from chuanliu_cli.rules.compiler import compile_scorecard
from chuanliu_cli.rules.parser import load_ruleset, parse_ruleset
from tests.conftest import REPO

SAMPLE = REPO / "sample_data"
GROUPS = REPO / "rules" / "examples" / "chuanliu-2023-groups.yaml"
MAY = parse_period("2023-05")

GROUPED = """\
version: 1
name: groups
scorecards:
  merchant:
    key: group_id
    key_from: {table: shops, on: shop_id}
    metrics:
      gmv: {from: orders, where: "status <> 'closed'", value: sum(paid_amount)}
      buyers: {from: orders, value: count(distinct buyer_id)}
      live_days: {from: livestreams, value: count(distinct cast(start_time as date))}
      reviews: {from: reviews, value: count(*)}
    scores:
      total:
        parts: [{metric: gmv, weight: 1, normalize: {linear: [0, 100]}}]
    tiers: [{name: A, min_score: 0, multiplier: 1}]
    reward: {pool: 1000}
  promoter:
    key: promoter_id
    metrics:
      carried: {from: orders, where: merchant.eligible, value: sum(paid_amount)}
    scores:
      total:
        parts: [{metric: carried, weight: 1, normalize: {linear: [0, 100]}}]
"""


def _errors(text: str) -> str:
    with pytest.raises(RulesetError) as caught:
        parse_ruleset(textwrap.dedent(text), "g.yaml")
    return "\n".join(caught.value.errors)


def _with_key_from(key: str, key_from: str, source: str = "orders") -> str:
    return f"""\
        version: 1
        name: g
        scorecards:
          merchant:
            key: {key}
            key_from: {key_from}
            metrics:
              n: {{from: {source}, value: count(*)}}
            scores:
              total:
                parts: [{{metric: n, weight: 1, normalize: {{linear: [0, 10]}}}}]
        """


# --- parsing ---------------------------------------------------------------------------------------------


def test_key_from_is_parsed_and_sources_need_its_on_column() -> None:
    ruleset = parse_ruleset(GROUPED, "g.yaml")
    sc = ruleset.scorecard("merchant")
    assert sc.key == "group_id" and sc.key_from is not None
    assert (sc.key_from.table, sc.key_from.on, sc.row_key) == ("shops", "shop_id", "shop_id")
    assert ruleset.scorecard("promoter").key_from is None


@pytest.mark.parametrize(
    ("key", "key_from", "expected"),
    [
        ("group_id", "{table: shop, on: shop_id}", "g.yaml:6:23: unknown table 'shop'; did you mean 'shops'"),
        (
            "group_id",
            "{table: orders, on: shop_id}",
            "6:23: key_from reads a table with one row per key, not orders; use shops",
        ),
        (
            "owner",
            "{table: shops, on: shop_id}",
            "5:10: the scorecard's key 'owner' is not a column of shops",
        ),
        (
            "group_id",
            "{table: shops, on: group_id}",
            "6:34: key_from on 'group_id' is a column of shops; join",
        ),
        ("group_id", "{table: shops, on: seller}", "6:34: key_from on 'seller' is not a column of shops"),
        ("group_id", "{table: shops}", "6:15: key_from is missing 'on'"),
        ("group_id", "{table: shops, on: shop_id, by: x}", "6:43: unknown key 'by' in key_from"),
    ],
)
def test_key_from_errors_are_located(key: str, key_from: str, expected: str) -> None:
    errors = _errors(_with_key_from(key, key_from))
    assert expected in errors
    # a broken key_from is reported once: its sources are not also reported for lacking the key
    assert "is not a column of orders" not in errors


def test_a_grouped_key_is_not_required_in_the_sources_and_the_on_column_is() -> None:
    parse_ruleset(textwrap.dedent(_with_key_from("group_id", "{table: shops, on: shop_id}")), "g.yaml")
    # without key_from, group_id must be a column of every source, as any key
    errors = _errors(
        _with_key_from("group_id", "{table: shops, on: shop_id}").replace(
            "key_from: {table: shops, on: shop_id}", "title: t"
        )
    )
    assert "the scorecard's key 'group_id' is not a column of orders" in errors


def test_bundled_groups_example_checks() -> None:
    ruleset = load_ruleset(GROUPS)
    assert ruleset.name == "chuanliu-2023-groups"
    assert ruleset.scorecard("merchant").key == "group_id"
    assert [sc.name for sc in ruleset.scorecards] == ["merchant", "promoter", "product"]


# --- the grouped query against hand-written SQL --------------------------------------------------------------


@pytest.fixture
def tiny() -> Iterator[Any]:
    """A database with two grouped shops, a shop whose group_id is NULL, one whose group_id is empty, and
    one not in shops at all; a promoter selling for the group."""
    from chuanliu_cli.store.database import memory_database

    db = memory_database()
    con = db.con
    con.execute(
        "INSERT INTO shops VALUES ('s1', '甲店', '女装', 'G'), ('s2', '乙店', '女装', 'G'), "
        "('s3', '丙店', '母婴', NULL), ('s4', NULL, NULL, '')"
    )
    orders = [
        ("o1", "s1", "b1", "p1", "2023-05-02 10:00:00", 10, "paid"),
        ("o2", "s2", "b1", "p1", "2023-05-03 10:00:00", 20, "paid"),
        ("o3", "s2", "b2", None, "2023-05-04 10:00:00", 30, "closed"),
        ("o4", "s3", "b3", None, "2023-05-05 10:00:00", 40, "paid"),
        ("o5", "s4", "b4", None, "2023-05-06 10:00:00", 50, "paid"),
        ("o6", "s5", "b5", "p2", "2023-05-07 10:00:00", 60, "paid"),
        ("o7", "s1", "b6", None, "2023-04-30 23:00:00", 70, "paid"),  # April: outside the period
    ]
    con.executemany(
        "INSERT INTO orders (order_id, shop_id, buyer_id, promoter_id, order_time, paid_amount, status, "
        "sale_mode, carrier, quantity, refund_amount, net_amount) "
        "VALUES (?, ?, ?, ?, CAST(? AS TIMESTAMP), ?, ?, 'self', 'live', 1, 0, 0)",
        orders,
    )
    con.execute(
        "INSERT INTO livestreams (live_id, shop_id, host_type, start_time, duration_minutes) VALUES "
        "('l1', 's1', 'self', '2023-05-02 20:00:00', 60), ('l2', 's2', 'self', '2023-05-02 21:00:00', 60), "
        "('l3', 's2', 'self', '2023-05-09 21:00:00', 60)"
    )
    con.execute(
        "INSERT INTO reviews (review_id, order_id, shop_id, quality_score, review_time) VALUES "
        "('r1', 'o1', 's1', 5, '2023-05-10 10:00:00'), ('r2', 'o4', 's3', 4, '2023-05-10 10:00:00')"
    )
    yield con
    db.con.close()


#: The grouped metrics of GROUPED written by hand: each row belongs to its shop's group_id, a shop without
#: one (NULL, empty, or not in shops) to itself.
HAND = """
WITH owned AS (
  SELECT o.*, coalesce(nullif(s.group_id, ''), o.shop_id) AS g
  FROM orders o LEFT JOIN shops s USING (shop_id)
  WHERE o.order_time >= TIMESTAMP '2023-05-01' AND o.order_time < TIMESTAMP '2023-06-01'
), lives AS (
  SELECT coalesce(nullif(s.group_id, ''), l.shop_id) AS g, count(DISTINCT CAST(l.start_time AS DATE)) AS days
  FROM livestreams l LEFT JOIN shops s USING (shop_id)
  WHERE l.start_time >= TIMESTAMP '2023-05-01' AND l.start_time < TIMESTAMP '2023-06-01' GROUP BY 1
), revs AS (
  SELECT coalesce(nullif(s.group_id, ''), r.shop_id) AS g, count(*) AS n
  FROM reviews r LEFT JOIN shops s USING (shop_id)
  WHERE r.review_time >= TIMESTAMP '2023-05-01' AND r.review_time < TIMESTAMP '2023-06-01' GROUP BY 1
), o AS (
  SELECT g, coalesce(sum(paid_amount) FILTER (WHERE status <> 'closed'), 0) AS gmv,
         count(DISTINCT buyer_id) AS buyers
  FROM owned GROUP BY g
), everyone AS (SELECT g FROM o UNION SELECT g FROM lives UNION SELECT g FROM revs)
SELECT e.g AS group_id, coalesce(o.gmv, 0)::DOUBLE AS gmv, coalesce(o.buyers, 0)::DOUBLE AS buyers,
       coalesce(lives.days, 0)::DOUBLE AS live_days, coalesce(revs.n, 0)::DOUBLE AS reviews
FROM everyone e LEFT JOIN o USING (g) LEFT JOIN lives USING (g) LEFT JOIN revs USING (g)
ORDER BY 1
"""


def test_grouped_metrics_match_a_hand_written_query(tiny: Any) -> None:
    ruleset = parse_ruleset(GROUPED, "g.yaml")
    compiled = compile_scorecard(ruleset, "merchant", MAY)
    got = tiny.sql(compiled.sql).pl().sort("group_id")
    expected = tiny.sql(HAND).pl()
    assert got.rows() == expected.rows()
    assert got.rows() == [
        ("G", 30.0, 2.0, 2.0, 1.0),  # s1 + s2: o3 closed (no gmv), b1 bought in both shops, two distinct days
        ("s3", 40.0, 1.0, 0.0, 1.0),  # NULL group_id: its own group
        ("s4", 50.0, 1.0, 0.0, 0.0),  # empty group_id: its own group
        ("s5", 60.0, 1.0, 0.0, 0.0),  # not in shops: its own group
    ]


def test_later_scorecard_reads_a_grouped_one_through_the_shops(tiny: Any) -> None:
    from chuanliu_cli.scoring.pipeline import score_period

    run = score_period(tiny, parse_ruleset(GROUPED, "g.yaml"), MAY)
    merchant = run.scorecards["merchant"].frame
    assert merchant.filter(merchant["group_id"] == "G")["name"].to_list() == ["甲店 等2店"]
    assert dict(zip(merchant["group_id"], merchant["name"], strict=True))["s3"] == "丙店"
    promoters = run.scorecards["promoter"].frame.sort("promoter_id")
    # every group is eligible (one tier from 0): p1 carried o1 + o2 of group G, p2 o6 of s5 (not in shops)
    assert promoters.select("promoter_id", "carried").rows() == [("p1", 30.0), ("p2", 60.0)]


@pytest.fixture(scope="module")
def sample_con() -> Iterator[Any]:
    """The sample data loaded into an in-memory database."""
    from chuanliu_cli.ingest.loader import LoadOptions, discover, load_files
    from chuanliu_cli.store.database import memory_database

    db = memory_database()
    load_files(db, discover(SAMPLE), LoadOptions())
    yield db.con
    db.con.close()


def test_groups_example_on_the_sample_matches_hand_written_sums(sample_con: Any) -> None:
    """Per group: the metrics summed or distinct-counted over its shops' rows (the sample's groups are of
    three shops or one)."""
    ruleset = load_ruleset(GROUPS)
    got = sample_con.sql(compile_scorecard(ruleset, "merchant", MAY).sql).pl().sort("group_id")
    hand = sample_con.sql(
        """
        WITH owned AS (SELECT o.*, coalesce(nullif(s.group_id, ''), o.shop_id) AS g
                       FROM orders o LEFT JOIN shops s USING (shop_id))
        SELECT g AS group_id,
          coalesce(sum(net_amount) FILTER (WHERE status NOT IN ('pending', 'closed')
            AND sale_mode = 'distribution' AND order_time >= '2023-05-01'), 0)::DOUBLE AS distribution_gmv,
          count(DISTINCT promoter_id) FILTER (WHERE status NOT IN ('pending', 'closed')
            AND sale_mode = 'distribution' AND order_time >= '2023-05-01')::DOUBLE AS distribution_promoters,
          count(*) FILTER (WHERE status NOT IN ('pending', 'closed') AND sale_mode = 'distribution'
            AND order_time >= TIMESTAMP '2023-06-01' - INTERVAL 90 DAY)::DOUBLE AS distribution_orders_90d
        FROM owned WHERE order_time < '2023-06-01' GROUP BY g ORDER BY g
        """
    ).pl()
    lives = sample_con.sql(
        """
        SELECT coalesce(nullif(s.group_id, ''), l.shop_id) AS group_id,
               count(DISTINCT CAST(start_time AS DATE)) FILTER (WHERE host_type = 'self'
                 AND duration_minutes >= 30)::DOUBLE AS live_days
        FROM livestreams l LEFT JOIN shops s USING (shop_id)
        WHERE start_time >= '2023-05-01' AND start_time < '2023-06-01' GROUP BY 1 ORDER BY 1
        """
    ).pl()
    columns = ["group_id", "distribution_gmv", "distribution_promoters", "distribution_orders_90d"]
    joined = got.select(columns).join(hand, on="group_id", how="inner", suffix="_hand")
    assert joined.height == got.height > 40  # every group of the scorecard has orders
    for column in columns[1:]:
        assert joined[column].round(6).to_list() == joined[f"{column}_hand"].round(6).to_list(), column
    by_group = dict(zip(got["group_id"], got["live_days"], strict=True))
    assert {g: by_group[g] for g in lives["group_id"]} == dict(
        zip(lives["group_id"], lives["live_days"], strict=True)
    )
    three = sample_con.sql("SELECT group_id FROM shops GROUP BY 1 HAVING count(*) = 3").pl()["group_id"]
    assert set(three) <= set(got["group_id"]) and len(three) == 6
    assert not set(got["group_id"]) & set(sample_con.sql("SELECT shop_id FROM shops").pl()["shop_id"])


# --- outputs and --id / --group ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The sample data loaded once into a database file (the commands below read it, recording nothing)."""
    from typer.testing import CliRunner

    from chuanliu_cli.cli.app import app

    path = str(tmp_path_factory.mktemp("groups") / "sample.duckdb")
    result = CliRunner().invoke(app, ["-q", "--db", path, "load", "--dir", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    return path


def _ok(result: Any) -> str:
    assert result.exit_code == 0, result.output
    return str(result.stdout)


def test_shop_outputs_carry_group_and_category(invoke: Callable[..., Any], db: str) -> None:
    doc = json.loads(
        _ok(invoke("eligible", "--month", "2023-05", "--db", db, "--no-record", "--format", "json", "--all"))
    )
    by_shop = {e["shop_id"]: e for e in doc["entities"]}
    assert list(by_shop["ks700001"])[:5] == ["shop_id", "name", "group_id", "category", "rank"]
    assert (by_shop["ks700001"]["group_id"], by_shop["ks700001"]["category"]) == ("zt880001", "珠宝文玩")
    # a shop listed without activity in May has its group too
    assert by_shop["ks700060"]["group_id"] == "zt880060"


def test_group_and_category_are_null_without_shops(invoke: Callable[..., Any], may_only: Path) -> None:
    data = may_only.parent / "no-shops"
    data.mkdir(exist_ok=True)
    for name in ("orders", "reviews", "livestreams"):
        (data / f"{name}.csv").write_bytes((may_only / f"{name}.csv").read_bytes())
    text = _ok(invoke("score", "--month", "2023-05", "--data", str(data), "--format", "csv", "--top", "3"))
    rows = list(csv.DictReader(text.splitlines()))
    assert len(rows) == 3 and all(
        r["group_id"] == "" and r["category"] == "" and r["name"] == "" for r in rows
    )


@pytest.mark.parametrize("command", ["eligible", "score"])
def test_group_lists_one_owners_shops(invoke: Callable[..., Any], db: str, command: str) -> None:
    text = _ok(
        invoke(
            command, "--month", "2023-05", "--db", db, "--no-record", "--format", "csv", "--group", "zt880001"
        )
    )
    rows = list(csv.DictReader(text.splitlines()))
    assert sorted(r["shop_id"] for r in rows) == ["ks700001", "ks700002", "ks700003"]
    assert {r["group_id"] for r in rows} == {"zt880001"}
    # listed eligible or not: the group's ineligible shop is there with its reasons
    assert any(r["eligible"] == "false" and r["reasons"] for r in rows)


def test_eligible_id_lists_the_entities_asked_for(invoke: Callable[..., Any], db: str) -> None:
    args = ("eligible", "--month", "2023-05", "--db", db, "--no-record", "--format", "jsonl")
    rows = [json.loads(x) for x in _ok(invoke(*args, "--id", "ks700003", "--id", "ks700055")).splitlines()]
    assert [r["shop_id"] for r in rows] == ["ks700055", "ks700003"]  # in rank order
    unknown = invoke(*args, "--id", "ks700555")
    assert unknown.exit_code == 4
    assert "unknown shop_id 'ks700555'" in unknown.output and "nearest known" in unknown.output


def test_unknown_group_and_a_scorecard_without_groups_are_refused(
    invoke: Callable[..., Any], db: str
) -> None:
    args = ("eligible", "--month", "2023-05", "--db", db, "--no-record")
    unknown = invoke(*args, "--group", "zt880002")
    assert unknown.exit_code == 4, unknown.output
    assert "unknown group_id 'zt880002'" in unknown.output and "zt880001" in unknown.output
    promoters = invoke(*args, "--scorecard", "promoter", "--group", "zt880001")
    assert promoters.exit_code == 2 and "keyed by promoter_id" in promoters.output


def test_group_of_a_grouped_scorecard_is_its_row(invoke: Callable[..., Any], db: str) -> None:
    args = (
        "eligible",
        "--month",
        "2023-05",
        "--db",
        db,
        "--no-record",
        "--rules",
        str(GROUPS),
        "--format",
        "csv",
    )
    rows = list(csv.DictReader(_ok(invoke(*args, "--group", "zt880001")).splitlines()))
    assert [(r["group_id"], r["name"]) for r in rows] == [("zt880001", "云源珠宝文玩旗舰店 等3店")]
    assert "group_id,name,rank" in _ok(invoke(*args, "--top", "1"))  # the key is group_id: no second one
    assert invoke(*args, "--group", "zt88000").exit_code == 4


def test_report_group_lists_the_shops_in_full(invoke: Callable[..., Any], db: str, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    args = ("report", "--month", "2023-05", "--db", db, "-o", str(out), "--top", "0")
    _ok(invoke(*args, "--group", "zt880011"))
    html = out.read_text(encoding="utf-8")
    assert all(shop in html for shop in ("ks700011", "ks700012", "ks700013"))
    assert invoke(*args, "--group", "nope").exit_code == 4


# --- sample --late-refunds ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def late_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from chuanliu_cli.api import write_sample

    out = tmp_path_factory.mktemp("late")
    write_sample(out, late_refunds=True)
    return out


def test_late_refunds_leave_the_dataset_as_it_was(late_sample: Path) -> None:
    for name in ("orders", "reviews", "livestreams", "shops"):
        assert (late_sample / f"{name}.csv").read_bytes() == (SAMPLE / f"{name}.csv").read_bytes(), name


def test_late_refunds_refund_one_rewarded_merchants_last_month_in_full(late_sample: Path) -> None:
    with (late_sample / "late" / "orders_late_refunds.csv").open(encoding="utf-8", newline="") as f:
        late = list(csv.DictReader(f))
    with (SAMPLE / "orders.csv").open(encoding="utf-8", newline="") as f:
        before = {r["order_id"]: r for r in csv.DictReader(f)}
    golden = list(csv.DictReader((REPO / "tests/golden/sample-2023-05-merchant.csv").open(encoding="utf-8")))
    grants = {r["shop_id"]: int(r["grant"] or 0) for r in golden}
    assert late, "one rewarded merchant's orders"
    assert len({r["shop_id"] for r in late}) == 1 and grants[late[0]["shop_id"]] > 0

    def open_live(r: dict[str, str]) -> bool:  # a valid May self live-room order without a refund
        return (
            r["order_time"].startswith("2023-05")
            and (r["sale_mode"], r["carrier"]) == ("self", "live")
            and r["status"] not in ("pending", "closed", "refunded")
            and r["refund_amount"] in ("", "0.00")
        )

    counts = {shop: 0 for shop, grant in grants.items() if grant > 0}
    for r in before.values():
        if r["shop_id"] in counts and open_live(r):
            counts[r["shop_id"]] += 1
    chosen = min(counts, key=lambda shop: (counts[shop], shop))  # the fewest such orders, ties by shop_id
    assert late[0]["shop_id"] == chosen
    assert {r["order_id"] for r in late} == {
        k for k, r in before.items() if r["shop_id"] == chosen and open_live(r)
    }, "all of them, each once"
    assert len(late) == counts[chosen]
    for row in late:
        was = before[row["order_id"]]
        assert row["order_time"].startswith("2023-05") and (was["sale_mode"], was["carrier"]) == (
            "self",
            "live",
        )
        assert was["status"] not in ("pending", "closed", "refunded") and was["refund_amount"] in ("", "0.00")
        assert (row["status"], row["refund_amount"]) == ("refunded", was["paid_amount"])
        changed = {k for k in row if row[k] != was[k]}
        assert changed == {"status", "refund_amount", "refund_reason"}


@pytest.mark.slow
def test_late_refunds_restate_a_recorded_run(late_sample: Path, tmp_path: Path) -> None:
    """The walkthrough of the README: a recorded May list, the late refunds loaded, runs diff."""
    from chuanliu_cli.api import Session

    with Session(db=tmp_path / "late.duckdb") as s:
        s.load(directory=late_sample)
        run = s.eligible("2023-05", "merchant")
        s.load("orders", [late_sample / "late" / "orders_late_refunds.csv"])
        diff = s.runs_diff(int(run.run_id or 0))
    late_shop = next(csv.DictReader((late_sample / "late" / "orders_late_refunds.csv").open()))["shop_id"]
    changed = diff.frame.filter(diff.frame["shop_id"] == late_shop)
    assert changed.height == 1


# --- Spark: the same grouped results --------------------------------------------------------------------------


@pytest.mark.spark
def test_grouped_reward_lists_on_spark_match_duckdb(sample_con: Any) -> None:
    """The groups example (a grouped merchant scorecard, and promoters reading its eligibility through the
    shops) scores the same on Spark: keys, names, metrics, gates, tiers and grants."""
    import math

    from chuanliu_cli.engines.duckdb import DuckDBEngine
    from chuanliu_cli.engines.spark import SparkEngine, SparkSettings, spark_session
    from chuanliu_cli.scoring.pipeline import score_period

    ruleset = load_ruleset(GROUPS)
    session = spark_session("local[2]")
    try:
        with SparkEngine.open(SparkSettings(data=str(SAMPLE)), session) as engine:
            spark_runs = {
                name: score_period(engine, ruleset, MAY, upto=name) for name in ("merchant", "promoter")
            }
        duck_engine = DuckDBEngine(sample_con)
        duck_runs = {
            name: score_period(duck_engine, ruleset, MAY, upto=name) for name in ("merchant", "promoter")
        }
    finally:
        session.stop()
    for name in ("merchant", "promoter"):
        duck_run, spark_run = duck_runs[name], spark_runs[name]
        duck, spark = duck_run.scorecards[name].frame, spark_run.scorecards[name].frame
        assert duck.columns == spark.columns and duck.height == spark.height > 0, name
        for column in duck.columns:
            left, right = duck[column].to_list(), spark[column].to_list()
            if duck.schema[column].is_float():
                pairs = zip(left, right, strict=True)
                assert all(
                    (a is None and b is None)
                    or (a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9))
                    for a, b in pairs
                ), (name, column)
            else:
                assert left == right, (name, column)
        assert duck_run.scorecards[name].totals() == spark_run.scorecards[name].totals(), name
    assert "云源珠宝文玩旗舰店 等3店" in spark_runs["merchant"].scorecards["merchant"].frame["name"].to_list()


@pytest.mark.slow
def test_runs_diff_of_a_grouped_run_names_the_loads_behind_a_group(tmp_path: Path) -> None:
    """Refunds of a one-shop group's May live-room orders, loaded after a recorded grouped run: the group
    leaves the list and the load is named behind it (matched through the shops, not a group_id column)."""
    from chuanliu_cli.api import Session

    with Session(db=tmp_path / "g.duckdb") as s:
        s.load(directory=SAMPLE)
        run = s.eligible("2023-05", "merchant", rules=GROUPS)
        frame = run.frame
        group = next(g for g in frame["group_id"] if g == "zt880055")
        with (SAMPLE / "orders.csv").open(encoding="utf-8", newline="") as f:
            rows = [
                r
                for r in csv.DictReader(f)
                if r["shop_id"] == "ks700055"
                and r["order_time"].startswith("2023-05")
                and (r["sale_mode"], r["carrier"]) == ("self", "live")
            ]
        for r in rows:
            r.update(status="refunded", refund_amount=r["paid_amount"], refund_reason="协商一致退款")
        late = tmp_path / "late.csv"
        with late.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        s.load("orders", [late])
        diff = s.runs_diff(int(run.run_id or 0), rules=GROUPS)
    row = diff.frame.filter(diff.frame["group_id"] == group).to_dicts()
    assert len(row) == 1 and row[0]["eligible_after"] is False
    assert "late.csv" in str(row[0]["loads"])
