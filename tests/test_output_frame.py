"""score/eligible outputs written from the frame (issue #21): the same bytes as the row writers for every
format, on hostile values (formulas, quotes, newlines, NaN, tiny floats, nulls), formula-safety and the
repr of floats as polars expressions, and the fallback to rows for columns the frame writers do not know."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import replace
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chuanliu_cli.present.documents import (
    Document,
    EntityDocument,
    columns_of,
    flat_rows,
    run_document,
    scores_document,
)
from chuanliu_cli.present.writers import float_text, render, repr_columns, safe_cell, safe_text
from chuanliu_cli.scoring.pipeline import RunResult
from tests.conftest import REPO, as_bytes

FORMATS = ["csv", "json", "jsonl", "parquet"]


@pytest.fixture(scope="module")
def sample_run() -> RunResult:
    from chuanliu_cli.api import Session

    with Session(data=REPO / "sample_data") as s:
        return s.eligible("2023-05", "merchant", include_ineligible=True, record=False).run


def _rows_document(run: RunResult, scorecard: str, include_ineligible: bool = True) -> Document:
    """The document as the row writers built it before issue #21 (one dict per entity)."""
    doc = run_document(run, scorecard, include_ineligible)
    res = run.scorecards[scorecard]
    frame_doc = scores_document(run, scorecard, include_ineligible)
    assert isinstance(frame_doc, EntityDocument)
    return Document(doc, doc["entities"], flat_rows(doc["entities"]), columns_of(res), frame_doc.types)


HOSTILE_TEXT = [
    '=HYPERLINK("http://x","y")',
    "+cmd|' /C calc'!A0",
    "-5",
    "-2+3",
    "@SUM(A1)",
    "\tTAB",
    'say "hi", then\nleave',
    "back\\slash / and \u2028 \x00 \x1f é 普通店铺 😀",
    "",
    None,
]
HOSTILE_FLOATS = [1e-05, -1.5e-07, 1e16, 0.1 + 0.2, float("nan"), float("inf"), -0.0, None, 5e-324, 27.0]


def _hostile(run: RunResult) -> RunResult:
    """The sample's merchant result with hostile names, tiers, notes, gate lists and floats."""
    res = run.scorecards["merchant"]
    sc = res.scorecard
    n = res.frame.height
    gate_ids = [g.id for g in sc.gates]
    score = sc.scores[0].name
    metric = sc.metrics[0].name
    frame = res.frame.with_columns(
        pl.Series("name", [HOSTILE_TEXT[i % len(HOSTILE_TEXT)] for i in range(n)], dtype=pl.String),
        pl.Series("tier", [["=S", None, "A"][i % 3] for i in range(n)], dtype=pl.String),
        pl.Series("grant_note", [["@note", "", None, "-1e5"][i % 4] for i in range(n)], dtype=pl.String),
        pl.Series(score, [HOSTILE_FLOATS[i % len(HOSTILE_FLOATS)] for i in range(n)], dtype=pl.Float64),
        pl.Series(
            metric, [HOSTILE_FLOATS[(i + 3) % len(HOSTILE_FLOATS)] for i in range(n)], dtype=pl.Float64
        ),
        pl.Series("failed_gates", [gate_ids[: i % 3] or None for i in range(n)], dtype=pl.List(pl.String)),
        pl.Series("eligible", [[True, False, None][i % 3] for i in range(n)], dtype=pl.Boolean),
    )
    return replace(run, scorecards={**run.scorecards, "merchant": replace(res, frame=frame)})


@pytest.mark.parametrize("include_ineligible", [True, False])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("hostile", [False, True], ids=["sample", "hostile"])
def test_frame_writers_give_the_row_writers_bytes(
    sample_run: RunResult, fmt: str, include_ineligible: bool, hostile: bool
) -> None:
    run = _hostile(sample_run) if hostile else sample_run
    doc = scores_document(run, "merchant", include_ineligible)
    assert isinstance(doc, EntityDocument)
    got = render(fmt, doc)  # type: ignore[arg-type]
    want = as_bytes(render(fmt, _rows_document(run, "merchant", include_ineligible)))  # type: ignore[arg-type]
    if fmt == "csv" and hostile:
        # the one chosen difference: a text cell with a CR is quoted (none of the hostile names has one)
        assert b"\r" not in want
    assert got == want


def _text(data: str | bytes) -> str:
    return data.decode() if isinstance(data, bytes) else data


def test_csv_quotes_a_carriage_return_that_python_left_bare(sample_run: RunResult) -> None:
    """Python's csv module wrote `a\\rb` unquoted, and its own reader split the row there; polars quotes."""
    res = sample_run.scorecards["merchant"]
    frame = res.frame.with_columns(pl.lit("a\rb").alias("name"))
    run = replace(sample_run, scorecards={"merchant": replace(res, frame=frame)})
    text = _text(render("csv", scores_document(run, "merchant")))
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == frame.height + 1 and {r[1] for r in rows[1:]} == {"a\rb"}


def test_hostile_values_read_back(sample_run: RunResult) -> None:
    """What the files say, read back: formulas quoted, NaN and inf null, tiny floats exact, keys in order."""
    run = _hostile(sample_run)
    doc = scores_document(run, "merchant", True)
    text = _text(render("json", doc))
    entities = json.loads(text)["entities"]
    assert list(json.loads(text)) == ["ruleset", "scorecard", "period", "data_window", "assumptions",
                                      "entities", "totals", "population", "warnings"]  # fmt: skip
    score = run.scorecards["merchant"].scorecard.scores[0].name
    values = [e["scores"][score] for e in entities[: len(HOSTILE_FLOATS)]]
    expected = [None if v is None or not math.isfinite(v) else v for v in HOSTILE_FLOATS]
    assert values == expected
    assert [e["name"] for e in entities[: len(HOSTILE_TEXT)]] == HOSTILE_TEXT
    rows = list(csv.reader(io.StringIO(_text(render("csv", doc)), newline="")))
    names = [r[1] for r in rows[1 : len(HOSTILE_TEXT) + 1]]
    assert names[:5] == ["'" + HOSTILE_TEXT[0], "'" + HOSTILE_TEXT[1], "-5", "'-2+3", "'@SUM(A1)"]
    assert names[-2:] == ["", ""]


def test_empty_list_writes_like_the_rows(sample_run: RunResult) -> None:
    res = sample_run.scorecards["merchant"]
    run = replace(sample_run, scorecards={"merchant": replace(res, frame=res.frame.clear())})
    for fmt in FORMATS:
        got = render(fmt, scores_document(run, "merchant"))  # type: ignore[arg-type]
        assert got == as_bytes(render(fmt, _rows_document(run, "merchant")))  # type: ignore[arg-type]


def test_unknown_column_types_fall_back_to_rows(sample_run: RunResult) -> None:
    """A metric the frame writers do not know (a date) is written row by row, as before: never guessed."""
    import datetime as dt

    res = sample_run.scorecards["merchant"]
    metric = res.scorecard.metrics[0].name
    frame = res.frame.with_columns(pl.lit(dt.date(2023, 5, 1)).alias(metric))
    run = replace(sample_run, scorecards={"merchant": replace(res, frame=frame)})
    doc = scores_document(run, "merchant")
    assert isinstance(doc, Document)
    assert json.loads(str(render("jsonl", doc)).splitlines()[0])["metrics"][metric] == "2023-05-01"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text(alphabet=st.sampled_from(list("=+-@\t\r \n0123456789._eEinfa٣\u3000\x1c")), max_size=8))
)
def test_safe_text_is_safe_cell(values: list[str]) -> None:
    got = pl.DataFrame({"s": values}, schema={"s": pl.String}).select(safe_text(pl.col("s")))["s"]
    assert got.to_list() == [safe_cell(v) for v in values]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False)))
def test_float_text_is_repr(values: list[float]) -> None:
    got = pl.DataFrame({"x": values}, schema={"x": pl.Float64}).select(float_text(pl.col("x")))["x"]
    assert got.to_list() == [repr(v) for v in values]


@pytest.mark.parametrize(
    "value",
    [1e-05, -1e-05, 1.5e-05, 9.999999999999999e-05, 1e-04, 1e-07, -2.5e-09, 1e-10, 1e16, 1e15, 5e-324, -0.0],
)
def test_float_text_at_the_edges(value: float) -> None:
    got: Any = pl.DataFrame({"x": [value]}).select(float_text(pl.col("x"))).item()
    assert got == repr(value)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1))
def test_csv_writes_floats_as_repr_with_or_without_rewriting(values: list[float]) -> None:
    """The csv writer leaves a float column to polars unless it holds a value between 0 and 1e-4: the
    bytes are repr's either way (the guard if polars changes how it writes floats)."""
    frame = pl.DataFrame({"x": values}, schema={"x": pl.Float64})
    tiny = any(0 < abs(v) < 1e-4 for v in values)
    assert repr_columns(frame) == ({"x"} if tiny else set())
    out = io.BytesIO()
    (frame.select(float_text(pl.col("x"))) if tiny else frame).write_csv(
        out, include_header=False, line_terminator="\n"
    )
    assert out.getvalue().decode().splitlines() == [repr(v) for v in values]


def test_csv_floats_rewritten_only_where_needed() -> None:
    """Only the Float64 columns holding a tiny value (and any narrower float) go through `float_text`."""
    frame = pl.DataFrame(
        {"plain": [1.5, 1e16, -0.0], "tiny": [1.0, 2e-05, 0.0], "narrow": [0.5, 1.0, 2.0], "n": [1, 2, 3]},
        schema={"plain": pl.Float64, "tiny": pl.Float64, "narrow": pl.Float32, "n": pl.Int64},
    )
    assert repr_columns(frame) == {"tiny", "narrow"}
    assert repr_columns(frame.select("n")) == set()
