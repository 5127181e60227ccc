"""The report and the movers at 500,000 entities (issue #21): a synthetic scored month, built without data.

`synthetic_run` is shared with tests/test_report.py and tests/test_compare.py (small sizes there).
"""

from __future__ import annotations

import re
import time

import pytest

from chuanliu_cli.scoring.pipeline import RunResult

#: The issue's limit for the page at 500,000 entities.
MAX_BYTES = 10 * 1024 * 1024


def synthetic_run(entities: int, month: int = 5, seed: int = 1, drop_every: int = 0) -> RunResult:
    """The default ruleset's merchant scorecard scored on random metrics for `entities` shops (ks0000000,
    ks0000001, …; with `drop_every` k, every k-th shop is left out), through finish_scorecard: the same
    scores, gates, tiers, ranks and grants as a real run, without a database."""
    import numpy as np
    import polars as pl

    from chuanliu_cli.api import load_rules
    from chuanliu_cli.periods import month_period
    from chuanliu_cli.scoring.pipeline import finish_scorecard

    ruleset = load_rules(None)
    sc = next(s for s in ruleset.scorecards if s.name == "merchant")
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {sc.key: [f"ks{i:07d}" for i in range(entities)]}
    for m in sc.metrics:
        if "rate" in m.name or "share" in m.name:
            values = rng.uniform(0, 0.1, entities)
        elif "avg" in m.name:
            values = rng.uniform(3, 5, entities)
        elif m.name == "live_days":
            values = rng.integers(0, 31, entities).astype(float)
        elif m.name == "live_weeks":
            values = rng.integers(0, 6, entities).astype(float)
        elif "growth" in m.name:
            values = rng.uniform(-0.5, 1.5, entities)
        else:
            values = np.floor(rng.lognormal(5, 2, entities))
        if "avg" in m.name:  # no reviews, no average: NULL, as the metric query gives it
            columns[m.name] = pl.Series(m.name, values).set(pl.Series(rng.random(entities) < 0.05), None)
        else:
            columns[m.name] = values
    metrics = pl.DataFrame(columns)
    if drop_every:
        metrics = metrics.filter(pl.int_range(pl.len()) % drop_every != 0)
    period = month_period(2023, month)
    result = finish_scorecard(sc, period, metrics)
    return RunResult(ruleset, period, {sc.name: result}, True, ())


@pytest.mark.slow
def test_report_of_500k_entities_is_small_and_lists_the_top() -> None:
    from chuanliu_cli.present.report import DEFAULT_TOP, build_report, gate_rates
    from chuanliu_cli.scoring.compare import Side, compare_results

    before, run = synthetic_run(500_000, 4, seed=1), synthetic_run(500_000, 5, seed=2)
    res = run.scorecards["merchant"]
    last = str(res.frame["shop_id"][-1])  # ineligible, far below the top: its breakdown only by id
    started = time.perf_counter()
    movers = compare_results(
        Side("2023-04", before, before.scorecards["merchant"]), Side("2023-05", run, res)
    )
    compared = time.perf_counter() - started
    started = time.perf_counter()
    html = build_report(run, "merchant", movers, "test", ids=[last])
    built = time.perf_counter() - started
    size = len(html.encode("utf-8"))
    assert size <= MAX_BYTES, f"{size / 1e6:.1f} MB"
    # (times are measured in benchmarks/, not asserted here: compare ~1 s, build ~2.5 s at 500k)
    print(f"compare {compared:.1f} s, build_report {built:.1f} s")
    assert html.count('<section class="entity"') == DEFAULT_TOP + 1
    assert f'id="e-{last}"' in html and html.count('<a href="#e-') == DEFAULT_TOP + 1
    assert "500,000 entities; 2,001 listed here in full" in html and "--list-out FILE" in html
    # the counts are over everyone: gate rates, the histogram's scored count, the movers summary
    for rate in gate_rates(run, "merchant"):
        assert rate.passed + rate.failed == 500_000
    assert f"({res.frame['total'].is_not_null().sum()} scored" in html
    summary = movers.summary()
    assert f"entrants {summary['entrants']} · leavers {summary['leavers']}" in html
    assert len(re.findall(r"<tr><td>ks\d{7}</td>", html)) == 50  # the 50 largest moves
