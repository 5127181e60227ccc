"""The report's sections after the movers: integrity (default), sensitivity and impact (when asked)."""

from __future__ import annotations

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
