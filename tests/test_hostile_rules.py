"""Hostile rulesets (SPEC §4, §7): every attack exits 3 with a located FILE:LINE:COL message and runs nothing."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from chuanliu_cli.exit_codes import ExitCode
from chuanliu_cli.ingest.loader import LoadOptions, discover, load_files
from chuanliu_cli.store.database import disable_external_access, memory_database, open_database

REPO = Path(__file__).resolve().parent.parent
SENTINEL = "SENTINEL"  # replaced by a path in the test's directory that no attack may create

# Line numbers of the slots: where 11, value 12, formula 14, when 23.
TEMPLATE = """\
version: 1
name: attack
filters:
  valid_order: status not in ('pending', 'closed')
scorecards:
  merchant:
    key: shop_id
    metrics:
      gmv:
        from: orders
        where: {where}
        value: {value}
      half:
        formula: {formula}
    scores:
      total:
        parts:
          - {{metric: gmv, weight: 1, normalize: {{linear: [0, 100]}}}}
          - {{metric: half, weight: 1, normalize: {{linear: [0, 100]}}}}
    gates:
      - id: some
        reason: at least one order
        when: {when}
"""
SLOTS = {"where": 11, "value": 12, "formula": 14, "when": 23}
DEFAULTS = {"where": "valid_order", "value": "sum(net_amount)", "formula": "gmv / 2", "when": "gmv > 0"}


def ruleset(**slots: str) -> str:
    """The template with some slots replaced by expressions (written as YAML double-quoted scalars)."""
    values = {k: json.dumps(slots.get(k, v), ensure_ascii=False) for k, v in DEFAULTS.items()}
    return TEMPLATE.format(**values)


@dataclass(frozen=True)
class Attack:
    name: str
    text: str  # the ruleset; SENTINEL stands for a path no attack may create
    line: int  # where the (first) error must point
    message: str  # a regex the first error must match


def expression(name: str, slot: str, expr: str, message: str) -> Attack:
    return Attack(name, ruleset(**{slot: expr}), SLOTS[slot], message)


DEEP_YAML = "version: 1\nname: deep\nscorecards: " + "[" * 10_000 + "]" * 10_000 + "\n"
LAUGHS = "version: 1\nname: lol\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8)
)
CYCLE = TEMPLATE.replace(
    "half:\n        formula: {formula}",
    "half:\n        formula: twice / 2\n      twice:\n        formula: half * 2",
).format(where='"valid_order"', value='"sum(net_amount)"', formula="", when='"gmv > 0"')
SCORE_CYCLE = ruleset().replace(
    "          - {metric: half, weight: 1, normalize: {linear: [0, 100]}}\n",
    "          - {score: other, weight: 1}\n      other:\n        parts:\n          - {score: total, weight: 1}\n",
)

ATTACKS = [
    expression("read_csv", "value", "(select count(*) from read_csv('/etc/passwd'))", r"subquer|not allowed"),
    expression("read_text", "where", "read_text('/etc/passwd') is not null", r"table function read_text"),
    expression("glob", "value", "count(*) + length(glob('/*'))", r"table function glob"),
    expression("subquery", "where", "shop_id in (select shop_id from shops)", r"IN takes a list of literal"),
    expression("exists", "where", "exists (select 1 from orders)", r"subquer|unknown function exists"),
    expression(
        "attach", "where", f"attach '{SENTINEL}' as evil", r"SQL statements are not allowed \(ATTACH\)"
    ),
    expression(
        "copy", "value", f"copy (select 1) to '{SENTINEL}'", r"SQL statements are not allowed \(COPY\)"
    ),
    expression(
        "copy-after-value", "value", f"count(*)); copy orders to '{SENTINEL}' --", r"`;` is not allowed"
    ),
    expression("install", "where", "install httpfs", r"SQL statements are not allowed \(INSTALL\)"),
    expression("load-extension", "formula", "load 'httpfs'", r"SQL statements are not allowed \(LOAD\)"),
    expression("chained", "where", "status = 'paid'; drop table orders", r"`;` is not allowed"),
    expression("line-comment", "where", "status = 'paid' -- and shop_id = 'x'", r"SQL comments \(--\)"),
    expression(
        "block-comment",
        "value",
        "count(*) /* ) from read_csv('/etc/passwd') */",
        r"SQL comments \(/\* \*/\)",
    ),
    expression(
        "set", "where", "set enable_external_access = true", r"SQL statements are not allowed \(SET\)"
    ),
    expression("pragma", "formula", "pragma version", r"SQL statements are not allowed \(PRAGMA\)"),
    expression("getenv", "where", "getenv('HOME') = ''", r"unknown function getenv"),
    expression(
        "current_setting", "when", "current_setting('threads') = '1'", r"unknown function current_setting"
    ),
    expression("concat-path", "where", "status = '/etc/' || 'passwd'", r"operator \|\| is not allowed"),
    expression("parameter", "where", "status = $1", r"parameters are not allowed|not allowed"),
    expression(
        "lambda", "where", "list_filter([1, 2], x -> x > 1) is not null", r"not allowed|unknown function"
    ),
    expression("window", "value", "sum(net_amount) over ()", r"window functions"),
    expression("qualified-table", "where", '"main"."orders"."shop_id" = \'x\'', r"only plain names"),
    expression("fullwidth-semicolon", "where", "status = 'paid'；drop table orders", r"cannot (read|parse)"),
    expression(
        "greek-question-mark", "where", "status = 'paid'\u037edrop table orders", r"cannot (read|parse)"
    ),
    expression("deep-nesting", "formula", "(" * 300 + "gmv" + ")" * 300, r"nested more than 100 levels"),
    expression("long-expression", "where", "status = '" + "x" * 3000 + "'", r"longer than 2000 characters"),
    Attack("billion-laughs", LAUGHS, 3, r"YAML anchors \(&a\) are not allowed"),
    Attack(
        "python-object",
        ruleset().replace("name: attack", f"name: !!python/object/apply:os.system ['touch {SENTINEL}']"),
        2,
        r"YAML tag !!python/object/apply:os.system is not allowed",
    ),
    Attack(
        "python-name",
        ruleset().replace("name: attack", "name: !!python/name:os.system"),
        2,
        r"YAML tag !!python/name:os.system is not allowed",
    ),
    Attack("deep-yaml", DEEP_YAML, 3, r"nested more than 32 levels"),
    Attack(
        "10mb-expression",
        ruleset(where="status = '" + "x" * 10_000_000 + "'"),
        1,
        r"larger than 1,000,000 bytes",
    ),
    Attack("formula-cycle", CYCLE, 13, r"cycle: half -> twice -> half"),
    Attack("score-cycle", SCORE_CYCLE, 16, r"cycle: total -> other -> total"),
    Attack(
        "key-injection",
        ruleset().replace("key: shop_id", 'key: "shop_id\\"; drop table orders; --"'),
        7,
        r"must be a name",
    ),
    Attack(
        "timezone-injection",
        ruleset().replace("name: attack", "name: attack\ntimezone: \"Asia/Shanghai'; copy orders to 'x'\""),
        3,
        r"unknown timezone",
    ),
    Attack(
        "source-injection",
        ruleset().replace("from: orders", 'from: "orders; drop table orders"'),
        10,
        r"unknown source",
    ),
    Attack(
        "window-injection",
        ruleset().replace("from: orders", 'from: orders\n        window: "90d\'); --"'),
        11,
        r"unknown window",
    ),
]

ROBUSTNESS = [
    Attack("400-digit-weight", ruleset().replace("weight: 1,", "weight: 1" + "0" * 400 + ","), 18, r"weight"),
    Attack("5000-digit-version", ruleset().replace("version: 1", "version: 1" + "0" * 5000), 1, r"version"),
    Attack(
        "pool-beyond-64-bits", ruleset() + "    reward: {pool: 4" + "0" * 40 + "}\n", 24, r"pool is too large"
    ),
    Attack("lone-surrogate", ruleset().replace("name: attack", 'name: "\\ud800x"'), 2, r"name"),
    Attack("not-utf8", "version: 1\nname: caf\xe9\n", 2, r"not UTF-8"),
    Attack("control-character", ruleset().replace("name: attack", 'name: "a\\x07b"\nx: "\x07"'), 3, r"."),
]


def ids(item: Any) -> str:
    return str(item.name)


@pytest.fixture(scope="module")
def scoring_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("rules") / "sample.duckdb"
    with open_database(str(db), "write") as handle:
        load_files(handle, discover(REPO / "sample_data"), LoadOptions())
    return db


def write_ruleset(tmp_path: Path, attack: Attack) -> tuple[Path, Path]:
    sentinel = tmp_path / "created-by-attack"
    path = tmp_path / "attack.yaml"
    text = attack.text.replace(SENTINEL, str(sentinel))
    if attack.name == "not-utf8":
        path.write_bytes(text.encode("latin-1"))
    else:
        path.write_text(text, encoding="utf-8")
    return path, sentinel


def check_refused(result: Any, path: Path, attack: Attack) -> None:
    assert result.exit_code == 3, f"exit {result.exit_code}: {result.output}"
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    first = result.stderr.splitlines()[0]
    located = re.match(rf"Error: {re.escape(str(path))}:(\d+):(\d+): (.+)", first)
    assert located is not None, f"not located as FILE:LINE:COL: {first!r}"
    line, col, message = int(located.group(1)), int(located.group(2)), located.group(3)
    assert line == attack.line and col >= 1, (
        f"{attack.name}: points at {line}:{col}, expected line {attack.line}"
    )
    assert re.search(attack.message, message), f"{attack.name}: {message!r}"


@pytest.mark.parametrize("attack", ATTACKS + ROBUSTNESS, ids=ids)
def test_rules_check_refuses(attack: Attack, tmp_path: Path, cli: Callable[..., Any]) -> None:
    path, sentinel = write_ruleset(tmp_path, attack)
    check_refused(cli("rules", "check", str(path)), path, attack)
    assert not sentinel.exists()


@pytest.mark.parametrize("attack", ATTACKS, ids=ids)
def test_scoring_refuses_and_runs_nothing(
    attack: Attack, tmp_path: Path, scoring_db: Path, cli: Callable[..., Any]
) -> None:
    path, sentinel = write_ruleset(tmp_path, attack)
    for command in (["eligible", "--month", "2023-05"], ["explain", "ks700001", "--month", "2023-05"]):
        result = cli("--db", str(scoring_db), *command, "--rules", str(path))
        check_refused(result, path, attack)
        assert result.stdout == ""
    assert not sentinel.exists()
    con = duckdb.connect(str(scoring_db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM runs").fetchall() == [(0,)]
    finally:
        con.close()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        # the metric query itself would fail on it: the schema check, run first, explains why
        ("value: sum(net_amount)", "value: sum(shop_id)", "does not compile: Binder Error"),
        # the gates fail on it
        ("when: distribution_orders_90d >= 1", "when: distribution_orders_90d + 1", "must be a condition"),
        # a time where a number belongs: the cast of the metric rows fails
        ("value: sum(net_amount)", "value: max(order_time)", "is TIMESTAMP, not a number"),
    ],
    ids=["query-fails", "gates-fail", "cast-fails"],
)
def test_type_errors_stop_scoring_with_exit_3(
    tmp_path: Path, scoring_db: Path, cli: Callable[..., Any], old: str, new: str, message: str
) -> None:
    path = tmp_path / "typed.yaml"
    path.write_text((REPO / "rules" / "chuanliu.yaml").read_text(encoding="utf-8").replace(old, new, 1))
    copy = tmp_path / "db.duckdb"
    shutil.copy(scoring_db, copy)
    for command in (["eligible", "--month", "2023-05"], ["score", "--month", "2023-05", "--format", "json"]):
        result = cli("--db", str(copy), *command, "--rules", str(path))
        assert result.exit_code == ExitCode.INVALID_RULESET, result.output
        assert result.stdout == "" and message in result.stderr and f"{path}:" in result.stderr
    con = duckdb.connect(str(copy), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM runs").fetchall() == [(0,)]  # nothing recorded
    finally:
        con.close()


def test_pool_beyond_64_bits_never_reaches_scoring(
    tmp_path: Path, scoring_db: Path, cli: Callable[..., Any]
) -> None:
    path = tmp_path / "pool.yaml"
    path.write_text(ruleset() + "    reward: {pool: 4" + "0" * 40 + "}\n")
    result = cli(
        "--db", str(scoring_db), "eligible", "--month", "2023-05", "--no-record", "--rules", str(path)
    )
    assert result.exit_code == 3, result.output


def test_sql_inside_string_literals_is_only_data(
    tmp_path: Path, scoring_db: Path, cli: Callable[..., Any]
) -> None:
    """Quotes, `;` and comment markers inside a string literal are text: valid, and nothing runs."""
    sentinel = tmp_path / "created-by-attack"
    literal = f"x'); copy orders to '{sentinel}'; -- /* "
    path = tmp_path / "literal.yaml"
    path.write_text(ruleset(where="item_name is null or item_name <> '" + literal.replace("'", "''") + "'"))
    assert cli("rules", "check", str(path)).exit_code == 0
    copy = tmp_path / "db.duckdb"
    copy.write_bytes(scoring_db.read_bytes())
    result = cli(
        "--db", str(copy), "eligible", "--month", "2023-05", "--rules", str(path), "--format", "json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["totals"]["entities"] > 0
    assert not sentinel.exists()


# --- scoring connections have external access disabled ---------------------------------------------------


def test_disable_external_access_blocks_files_and_cannot_be_undone(tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    db = memory_database()
    try:
        con = db.con
        assert con.execute(f"SELECT count(*) FROM read_csv('{secret}')").fetchall() == [(1,)]
        disable_external_access(con)
        settings = dict(
            con.execute(
                "SELECT name, value FROM duckdb_settings() WHERE name IN "
                "('enable_external_access', 'lock_configuration')"
            ).fetchall()
        )
        assert settings == {"enable_external_access": "false", "lock_configuration": "true"}
        for sql in (
            f"SELECT * FROM read_csv('{secret}')",
            f"SELECT * FROM read_text('{secret}')",
            f"COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'",
            f"ATTACH '{tmp_path / 'other.duckdb'}' AS other",
            "SET enable_external_access = true",
            "RESET enable_external_access",
            "SET lock_configuration = false",
            "INSTALL httpfs",
        ):
            with pytest.raises(duckdb.Error):
                con.execute(sql)
        assert not (tmp_path / "out.csv").exists() and not (tmp_path / "other.duckdb").exists()
        # The data already in stays usable.
        assert con.execute("SELECT count(*) FROM orders").fetchall() == [(0,)]
    finally:
        db.con.close()


@pytest.mark.parametrize(
    "command",
    [
        ["eligible", "--month", "2023-05", "--no-record", "--format", "json"],
        ["score", "--month", "2023-05", "--no-record", "--format", "json"],
        ["explain", "ks700001", "--month", "2023-05"],
        ["--data", "eligible", "--month", "2023-05", "--format", "json"],
    ],
    ids=["eligible", "score", "explain", "eligible --data"],
)
def test_scoring_connection_runs_without_external_access(
    command: list[str], scoring_db: Path, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import chuanliu_cli.scoring.pipeline as scoring

    seen: list[tuple[Any, ...]] = []
    real = scoring.score_period

    def spy(con: duckdb.DuckDBPyConnection, *args: Any, **kwargs: Any) -> Any:
        access = con.execute("SELECT current_setting('enable_external_access')").fetchall()[0][0]
        locked = con.execute("SELECT current_setting('lock_configuration')").fetchall()[0][0]
        try:
            con.execute("SELECT * FROM read_csv('/etc/passwd')").fetchall()
            read = True
        except duckdb.Error:
            read = False
        seen.append((access, locked, read))
        return real(con, *args, **kwargs)

    monkeypatch.setattr(scoring, "score_period", spy)
    if command[0] == "--data":
        args = [*command[1:], "--data", str(REPO / "sample_data")]
    else:
        args = ["--db", str(scoring_db), *command]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert seen and all(s == (False, True, False) for s in seen), seen
