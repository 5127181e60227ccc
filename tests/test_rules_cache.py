"""The ruleset cache: a hit gives what the work would give, anything odd is a miss, never another answer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chuanliu_cli.errors import RulesetError
from chuanliu_cli.periods import parse_period
from chuanliu_cli.rules import cache
from chuanliu_cli.rules.files import default_ruleset_path, load_ruleset_cached
from chuanliu_cli.rules.parser import load_ruleset


@pytest.fixture
def fresh(private_cache: Path) -> Path:
    return private_cache


def _entries(where: Path, kind: str) -> list[Path]:
    return sorted(where.glob(f"{kind}-*.pickle"))


def test_a_cached_ruleset_is_the_parsed_one(fresh: Path) -> None:
    first = load_ruleset_cached(default_ruleset_path(), check=True)
    assert len(_entries(fresh, "ruleset")) == 1 and len(_entries(fresh, "checked")) == 1
    again = load_ruleset_cached(default_ruleset_path(), check=True)
    assert again == first == load_ruleset(default_ruleset_path())
    assert repr(again) == repr(first)
    assert os.stat(fresh).st_mode & 0o777 == 0o700


def test_an_edited_file_is_parsed_again_and_its_errors_are_raised(fresh: Path, tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    text = default_ruleset_path().read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    load_ruleset_cached(path, check=True)
    path.write_text(text.replace("period: month", "period: fortnight", 1), encoding="utf-8")
    with pytest.raises(RulesetError, match="fortnight"):
        load_ruleset_cached(path, check=True)
    with pytest.raises(RulesetError, match="fortnight"):  # an error is never cached as a success
        load_ruleset_cached(path, check=True)


def test_a_ruleset_the_schema_check_refuses_is_never_cached_as_checked(fresh: Path, tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    text = default_ruleset_path().read_text(encoding="utf-8")
    # parses, but the schema check refuses it: a text metric
    path.write_text(text.replace("value: sum(net_amount)", "value: max(shop_id)", 1), encoding="utf-8")
    for _ in range(2):
        with pytest.raises(RulesetError, match="VARCHAR, not a number"):
            load_ruleset_cached(path, check=True)
    assert _entries(fresh, "checked") == []
    load_ruleset_cached(path, check=False)  # parsing alone is fine, and may be cached


def test_a_damaged_or_foreign_entry_is_a_miss(fresh: Path) -> None:
    first = load_ruleset_cached(default_ruleset_path(), check=False)
    (entry,) = _entries(fresh, "ruleset")
    entry.write_bytes(b"not a pickle")
    assert load_ruleset_cached(default_ruleset_path(), check=False) == first
    # an entry stored under another key (a file renamed by hand) is not taken for this one
    other = cache.key("something else")
    (fresh / f"ruleset-{other}.pickle").write_bytes(entry.read_bytes())
    assert cache.get("ruleset", other) is None or cache.get("ruleset", other) != first


def test_a_directory_others_may_write_is_not_used(fresh: Path) -> None:
    fresh.mkdir(mode=0o777)
    fresh.chmod(0o777)
    cache.directory.cache_clear()
    assert cache.directory() is None
    assert load_ruleset_cached(default_ruleset_path(), check=True).name  # works, uncached
    assert list(fresh.iterdir()) == []


def test_the_cache_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUANLIU_CACHE_DIR", "off")
    cache.directory.cache_clear()
    try:
        assert cache.directory() is None
        cache.put("x", "y", 1)
        assert cache.get("x", "y") is None
    finally:
        cache.directory.cache_clear()


def test_compiled_queries_follow_the_model_not_the_file(fresh: Path) -> None:
    """A ruleset changed in code keeps its file's sha256; its queries are compiled for what it now says."""
    from dataclasses import replace

    from chuanliu_cli.rules.compiler import compile_scorecard
    from chuanliu_cli.scoring.pipeline import metric_sql

    rules = load_ruleset_cached(default_ruleset_path(), check=False)
    may = parse_period("2023-05", "month")
    assert metric_sql(rules, "merchant", may, "duckdb") == compile_scorecard(rules, "merchant", may).sql
    merchant = rules.scorecard("merchant")
    fewer = replace(merchant, metrics=merchant.metrics[:3])
    changed = replace(rules, scorecards=(fewer, *rules.scorecards[1:]))
    assert changed.sha256 == rules.sha256
    assert metric_sql(changed, "merchant", may, "duckdb") == compile_scorecard(changed, "merchant", may).sql
    assert metric_sql(changed, "merchant", may, "duckdb") != metric_sql(rules, "merchant", may, "duckdb")
    april = parse_period("2023-04", "month")
    assert metric_sql(rules, "merchant", april, "duckdb") == compile_scorecard(rules, "merchant", april).sql


def test_an_entry_that_is_a_link_is_a_miss(fresh: Path) -> None:
    """rules/cache.trusted: a link in the cache directory is never read, even to a good entry."""
    first = load_ruleset_cached(default_ruleset_path(), check=False)
    (entry,) = _entries(fresh, "ruleset")
    kind, _, rest = entry.stem.partition("-")
    real = entry.with_name("elsewhere.pickle")
    entry.rename(real)
    entry.symlink_to(real)
    assert cache.get(kind, rest) is None
    entry.unlink()
    real.rename(entry)
    assert cache.get(kind, rest) == first
