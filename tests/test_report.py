"""`chuanliu report`: a self-contained HTML file that loads in headless Chromium with charts and no errors."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

ARTIFACTS = REPO / "test-artifacts"
_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise AssertionError("headless Chromium is required (apt-get install -y chromium); .ci/run installs it")


def load_page(html: Path, tmp_path: Path) -> tuple[str, list[str]]:
    """The page's DOM after its scripts ran, and the console messages Chromium logged."""
    done = subprocess.run(
        [
            _chromium(),
            *_FLAGS,
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=3000",
            "--dump-dom",
            html.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, console


def screenshot(html: Path, png: Path, tmp_path: Path) -> None:
    """Save a screenshot of the page (a test artifact for people to look at)."""
    png.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            _chromium(),
            *_FLAGS,
            f"--user-data-dir={tmp_path / 'chromium-shot'}",
            "--window-size=1280,2400",
            f"--screenshot={png}",
            html.resolve().as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from typer.testing import CliRunner

    from chuanliu_cli.cli.app import app

    out = tmp_path_factory.mktemp("report") / "report.html"
    args = ["report", "--month", "2023-05", "--data", str(REPO / "sample_data"), "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return out


def test_report_is_self_contained(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", html, re.IGNORECASE)
    assert "@import" not in html and "url(" not in html
    assert "Content-Security-Policy" in html


def test_report_contents(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    for text in (
        "chuanliu-2023",
        "Reward list 奖励名单",
        "和语数码家电旗舰店",
        "勤奋度 diligence",
        "Gates 门槛通过率",
        "Pool by tier 流量池分配",
        "Month-over-month 环比变化 (2023-04 → 2023-05)",
        'id="e-ks700017"',
        "requires reviews_90d ≥ 20",
        "tier S 80",
        "gate store_experience 4",
    ):
        assert text in html, text
    # one per score, gates, pool; then the integrity section's flag bars and a chart per threshold
    assert integrity_charts(html) == 1 + 9  # 4 gate comparisons + live_weeks, 4 tiers: 9 thresholds
    assert html.count('<svg class="chart"') == 5 + 2 + integrity_charts(html)


def integrity_charts(html: str) -> int:
    start = html.index('<section class="integrity">')
    return html[start : html.index("</section>", start)].count('<svg class="chart"')


def test_report_loads_in_chromium_with_charts_and_no_errors(report: Path, tmp_path: Path) -> None:
    dom, console = load_page(report, tmp_path)
    assert console == []
    assert 'data-violations="0"' in dom and 'data-resources="0"' in dom
    charts = re.search(r'data-charts="(\d+)"', dom)
    assert charts and int(charts.group(1)) == 7 + integrity_charts(report.read_text(encoding="utf-8"))
    png = ARTIFACTS / "report-2023-05.png"
    screenshot(report, png, tmp_path)
    assert png.stat().st_size > 10_000


def test_page_checker_sees_console_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>console.error('boom'); missing();</script></body></html>")
    _, console = load_page(bad, tmp_path)
    assert any("boom" in line for line in console) and any(
        "missing is not defined" in line for line in console
    )


def test_report_requires_output(invoke: Callable[..., Any]) -> None:
    result = invoke("report", "--month", "2023-05", "--data", str(REPO / "sample_data"))
    assert result.exit_code == 2


def test_report_says_what_history_is_missing_and_every_warning(
    invoke: Callable[..., Any], tmp_path: Path, may_only: Path
) -> None:
    """Only May's exports: the report names the missing history and the other warnings under its header."""
    out = tmp_path / "r.html"
    result = invoke("report", "--month", "2023-05", "--data", str(may_only), "-o", str(out))
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "⚠ Partial period: needs orders from 2023-03-03 (90-day windows); data from 2023-05-01" in html


# --- which entities are listed (issue #21) ------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic() -> Any:
    from tests.test_report_scale import synthetic_run

    return synthetic_run(3000)


def test_report_lists_the_top_and_the_ids_and_counts_everyone(synthetic: Any) -> None:
    import polars as pl

    from chuanliu_cli.present.report import build_report, gate_rates

    res = synthetic.scorecards["merchant"]
    keys = res.frame["shop_id"].to_list()
    ids = [keys[-1], keys[1500], keys[3]]  # the last, one in the middle, one already in the top
    html = build_report(synthetic, "merchant", None, "test", top=40, ids=ids)
    shown = re.findall(r'<section class="entity" id="e-([^"]+)"', html)
    assert shown == [*keys[:40], keys[1500], keys[-1]]  # rank order
    assert re.findall(r'<a href="#e-([^"]+)"', html) == shown
    assert (
        "3,000 entities; 42 listed here in full</b> (the top 40 in rank order, and 2 more asked for by id)"
        in html
    )
    assert "--list-out FILE" in html and "2,958 more entities are not listed" in html
    failed = res.frame["failed_gates"].to_list()
    for rate in gate_rates(synthetic, "merchant"):
        assert rate.failed == sum(rate.id in f for f in failed)
        assert rate.alone == sum(f == [rate.id] for f in failed)
        assert rate.passed == 3000 - rate.failed
    for tier, n in res.totals()["per_tier"].items():
        granted = res.frame.filter(pl.col("eligible") & (pl.col("tier") == tier))["grant"].sum()
        assert f"{tier} ({n})" in html and f"{granted:,}" in html
    scored = res.frame["store_experience"].is_not_null().sum()
    assert f"({scored} scored, {3000 - scored} without a value)" in html


def test_a_small_report_lists_everyone() -> None:
    from chuanliu_cli.present.report import build_report
    from tests.test_report_scale import synthetic_run

    html = build_report(synthetic_run(40), "merchant", None, "test", top=5000)
    assert html.count('<section class="entity"') == 40
    assert "All 40 entities are listed here in full" in html and "--list-out" not in html


def test_report_with_no_breakdowns(synthetic: Any) -> None:
    from chuanliu_cli.present.report import build_report

    html = build_report(synthetic, "merchant", None, "test", top=0)
    assert '<section class="entity"' not in html and "How each score is built" not in html
    assert "3,000 entities; 0 listed here in full" in html


def test_report_refuses_an_unknown_id(synthetic: Any) -> None:
    from chuanliu_cli.errors import DataError
    from chuanliu_cli.present.report import build_report

    with pytest.raises(DataError, match="unknown shop_id 'ks9999999'"):
        build_report(synthetic, "merchant", None, "test", top=10, ids=["ks9999999"])


def test_breakdowns_are_those_of_explain(synthetic: Any) -> None:
    """explain_listed explains the listed entities all at once: each exactly as explain_entity alone."""
    from chuanliu_cli.present.report import explain_listed
    from chuanliu_cli.scoring.explain import explain_entity

    keys = synthetic.scorecards["merchant"].frame["shop_id"].to_list()
    chosen = [*keys[:6], *keys[200:202], keys[-1]]  # tiered and ineligible entities
    listed = explain_listed(synthetic, "merchant", chosen)
    assert listed == [explain_entity(synthetic, "merchant", k) for k in chosen]
    assert any(ex.suggestions for ex in listed) and any(not ex.eligible for ex in listed)
