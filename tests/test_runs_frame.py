"""`runs --id N` written from the columns of the run's results (FrameDocument), not a dict per entity: the
same bytes as the row writers in csv, json and jsonl, the same values in parquet and xlsx (issue #21)."""

from __future__ import annotations

import io
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import pytest

from chuanliu_cli.api import Session
from chuanliu_cli.present.documents import Document, run_detail_document
from chuanliu_cli.present.writers import render, write_document
from chuanliu_cli.store.runs import RUN_RESULT_TYPES
from tests.conftest import as_bytes, workbook_cells

REPO = Path(__file__).resolve().parent.parent
COLUMNS = list(RUN_RESULT_TYPES)
RUN = {
    "run_id": 7,
    "started_at": datetime(2023, 6, 1, 8, 30, 5, 123456),
    "command": 'chuanliu eligible --month 2023-05 --rules "a b.yaml"',
    "period": "2023-05",
    "complete": True,
    "entities": 6,
}

# the cells a writer can get wrong: formula starts (and numbers that look like them), quotes, commas, line
# breaks, tabs, backslashes, control characters, empty text and NULL, tiny and large floats
TRICKY = pl.DataFrame(
    {
        "entity": ["=1+2", "-5", "a,b", 'say "hi"', "line\nbreak", "tab\tand\\slash"],
        "name": ["店铺 A", None, "", "@home", "+3.5", "bell\x07"],
        "rank": [1, 2, 3, None, None, None],
        "eligible": [True, True, True, False, False, False],
        "failed_gates": ["", "", "", "store_experience", "store_experience;reputation", ""],
        "tier": ["gold", "silver", None, None, None, None],
        "score": [99.5, 1e-05, 12345678.125, None, 0.0, -2.5e-07],
        "grant": [1_000_000, 5, 0, None, None, None],
    },
    schema={
        c: {"str": pl.Utf8, "int": pl.Int64, "bool": pl.Boolean, "float": pl.Float64}[t]
        for c, t in RUN_RESULT_TYPES.items()
    },
)


def _old(run: dict[str, Any], frame: pl.DataFrame) -> Document:
    """The document `runs --id` wrote before: one dict per entity."""
    rows = list(frame.iter_rows(named=True))
    return Document({"run": run, "results": rows}, rows, rows, COLUMNS)


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
@pytest.mark.parametrize("labels", ["en", "zh"])
@pytest.mark.parametrize("rows", [6, 1, 0], ids=["rows", "one", "empty"])
def test_the_columns_give_the_bytes_of_the_rows(fmt: str, labels: str, rows: int) -> None:
    frame = TRICKY.head(rows)
    new = run_detail_document(RUN, frame)
    expected = as_bytes(render(fmt, _old(RUN, frame), labels))  # type: ignore[arg-type]
    assert render(fmt, new, labels) == expected  # type: ignore[arg-type]
    into = io.BytesIO()
    write_document(into, fmt, new, labels)  # type: ignore[arg-type]
    assert into.getvalue() == expected


class _Pipe(io.RawIOBase):
    """A stream written once, front to back, as a pipe is: no seek, no truncate."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.writes = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.data += bytes(b)
        self.writes += 1
        return len(b)


def test_a_json_document_is_written_straight_into_its_stream() -> None:
    # 2.7M products are 1.3 GB of json: written as made, never gathered in memory and gone back over
    doc = run_detail_document(RUN, TRICKY)
    pipe = _Pipe()
    write_document(pipe, "json", doc)  # type: ignore[arg-type]
    assert bytes(pipe.data) == as_bytes(render("json", _old(RUN, TRICKY)))  # type: ignore[arg-type]
    assert not pipe.seekable()
    assert pipe.writes >= 3, "the head, the rows and the tail as they were made, not one finished copy"


def test_a_carriage_return_is_quoted_and_nan_is_null() -> None:
    # the two differences from the row writers, both fixes: Python's csv module left a CR bare (a reader
    # splits the row there), and json.dumps wrote NaN, which is not JSON
    frame = TRICKY.head(1).with_columns(pl.lit("a\rb").alias("name"), pl.lit(math.nan).alias("score"))
    doc = run_detail_document(RUN, frame)
    csv_text = as_bytes(render("csv", doc)).decode()
    assert '"a\rb"' in csv_text and csv_text.split("\n")[1].endswith(",gold,,1000000")
    record = as_bytes(render("jsonl", doc)).decode()
    assert '"score": null' in record and "NaN" not in record


def test_parquet_keeps_each_column_its_type_and_every_value() -> None:
    table = pq.read_table(io.BytesIO(as_bytes(render("parquet", run_detail_document(RUN, TRICKY)))))
    assert table.column_names == COLUMNS
    assert [str(t) for t in table.schema.types] == [
        "string", "string", "int64", "bool", "string", "string", "double", "int64"
    ]  # fmt: skip
    assert table.to_pylist() == list(TRICKY.iter_rows(named=True))
    zh = pq.read_table(io.BytesIO(as_bytes(render("parquet", run_detail_document(RUN, TRICKY), "zh"))))
    assert zh.column_names[:3] == ["主体ID", "名称", "排名"]


def test_xlsx_says_what_the_rows_said() -> None:
    assert workbook_cells(run_detail_document(RUN, TRICKY)) == workbook_cells(_old(RUN, TRICKY))


def test_runs_id_reads_the_run_as_columns(tmp_path: Path) -> None:
    session = Session(db=str(tmp_path / "r.duckdb"))
    session.load(directory=REPO / "sample_data")
    reward = session.eligible("2023-05", scorecard="product")
    assert reward.run_id is not None
    detail = session.runs(reward.run_id)
    assert detail.table is not None and detail.table.schema == TRICKY.schema
    assert detail.table.height == reward.result.frame.height
    assert detail.frame is detail.table
    assert detail.results == tuple(detail.table.iter_rows(named=True))
    listed = reward.result.frame.filter(pl.col("rank").is_not_null())
    assert detail.table["entity"].head(listed.height).to_list() == listed["item_id"].to_list()
