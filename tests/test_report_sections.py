"""The report's sections after the movers: integrity (default), sensitivity and impact (when asked)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chuanliu_cli.api import Session

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def session() -> Session:
    return Session(data=REPO / "sample_data")


def test_the_integrity_section_is_in_the_report_by_default(session: Session) -> None:
    html = session.report("2023-05").html
    assert 'id="integrity"' in html and "Threshold bunching" in html
    assert html.index('id="integrity"') < html.index('id="entities"')
    assert 'id="integrity"' not in session.report("2023-05", integrity=False).html


def test_sensitivity_and_impact_sections_when_asked(session: Session) -> None:
    html = session.report("2023-05", integrity=False, sensitivity=True, impact=True).html
    assert 'id="sensitivity"' in html and "reward.pool" in html  # the tornado chart's knobs
    assert 'id="impact"' in html and "the grants of 2023-04 on self_live_gmv" in html
    assert "Traffic is zero-sum" in html  # the caveats go with the plots


def test_the_impact_section_has_the_estimates_table_and_every_warning_once(session: Session) -> None:
    """The numbers of `chuanliu impact` (the same cells), and each warning once beside the table: an RD
    estimate's under its plot, the others above the plots."""
    from html import escape

    from chuanliu_cli.present.impact_tables import COLUMNS, estimate_cells

    html = session.report("2023-05", integrity=False, impact=True).html
    start = html.index('id="impact"')
    section = html[start : html.index("</section>", start)]
    effect = session.impact("2023-04")
    table = section[section.index("<table>") : section.index("</table>")]
    cells = [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row) for row in re.findall(r"<tr>(.*?)</tr>", table)]
    assert cells[0] == [escape(name) for name in COLUMNS]
    assert cells[1:] == [[escape(c) for c in row] for row in estimate_cells(effect)]
    assert [row[0] for row in cells[1:]] == ["rd", "rd", "rd", "rd", "did"]
    assert effect.warnings
    rest = section.replace(table, "")  # (a check may repeat a warning in the table: the C row's note)
    for warning in effect.warnings:
        assert rest.count(escape(warning)) == 1, warning


def test_threshold_labels_stay_inside_and_apart() -> None:
    """A threshold in the chart's right half is labelled leftwards from its line (inside the chart); tier
    bounds close together are labelled on lines of their own (the halo is the stylesheet's)."""
    import re

    from chuanliu_cli.present.charts import histogram

    svg = histogram(
        [1, 2, 3, 4], 0.0, 100.0, [("tier C", 35.0), ("tier B", 50.0), ("tier A", 65.0), ("x", 200.0)]
    )
    labels = re.findall(r'<text ([^>]*) class="thr">([^<]*)</text>', svg)
    assert [text for _, text in labels] == ["tier C 35", "tier B 50", "tier A 65"]  # 200 is off the chart
    anchors = ['text-anchor="end"' in attrs for attrs, _ in labels]
    assert anchors == [False, False, True]
    ys = [re.search(r'y="([0-9.]+)"', attrs).group(1) for attrs, _ in labels]  # type: ignore[union-attr]
    assert len(set(ys)) == 3
    from tests.conftest import REPO

    css = (REPO / "chuanliu_cli" / "data" / "report.html.j2").read_text(encoding="utf-8")
    assert re.search(r"text\.thr \{[^}]*paint-order: stroke; stroke: #fff", css)
