"""xlsx output (present/xlsx.py): every cell equals the csv of the same command, typed and formatted; the
facts sheet; -o suffix inference and mismatch; --labels zh headers; LibreOffice opens the workbook."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chuanliu_cli.present.writers import safe_cell

#: A shop name a spreadsheet would run as a formula: an xlsx text cell holds it as text.
HOSTILE = '=HYPERLINK("http://x","y")'
#: Shop names that are markup, or look like Excel's own escapes: each cell holds them as they are
#: (xlsxwriter would have written the first into the XML unescaped).
MARKUP = {
    "金坊滋补保健专营店": "<r><t>evil</t></r>",
    "山记家居日用官方店": "A&B <b>_x0041_</b>",
}
COMMANDS = {
    "eligible": ["eligible", "--month", "2023-05", "--all"],
    "explain": ["explain", "ks700001", "--month", "2023-05"],
    "compare": ["compare", "--month", "2023-05", "--against-month", "2023-04", "--all"],
    "runs": ["runs", "--id", "1"],
    "status": ["status"],
}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, may_only: Path) -> str:
    """The sample's May exports (an incomplete period: missing history, warnings), a shop's name a
    formula and two others markup, loaded once."""
    from typer.testing import CliRunner

    from chuanliu_cli.cli.app import app

    tmp = tmp_path_factory.mktemp("xlsx")
    data = tmp / "data"
    shutil.copytree(may_only, data)
    shops = (data / "shops.csv").read_text(encoding="utf-8")
    shops = shops.replace("云源珠宝文玩旗舰店", HOSTILE.replace('"', '""').join('""'))
    for name, markup in MARKUP.items():
        shops = shops.replace(name, f'"{markup}"')
    (data / "shops.csv").write_text(shops, encoding="utf-8")
    db = str(tmp / "x.duckdb")
    runner = CliRunner()
    loaded = runner.invoke(app, ["-q", "--db", db, "load", *sorted(str(p) for p in data.glob("*.csv"))])
    assert loaded.exit_code == 0, loaded.output
    return db


@pytest.fixture(scope="module")
def outputs(db: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Each command's csv and xlsx files (eligible records run 1)."""
    from typer.testing import CliRunner

    from chuanliu_cli.cli.app import app

    tmp = tmp_path_factory.mktemp("xlsx-out")
    runner = CliRunner()
    files = {}
    for name, args in COMMANDS.items():
        pair = (tmp / f"{name}.csv", tmp / f"{name}.xlsx")
        for out in pair:
            result = runner.invoke(app, ["-q", "--db", db, *args, "-o", str(out)])
            assert result.exit_code == 0, result.output
        files[name] = pair
    return files


def _csv_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def _sheet_rows(path: Path, sheet: int = 0) -> list[list[Any]]:
    """A sheet's values, text with Excel's _xHHHH_ escapes read back (openpyxl leaves them as they are)."""
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True)
    try:
        return [[_unescape(v) for v in r] for r in book.worksheets[sheet].iter_rows(values_only=True)]
    finally:
        book.close()


def _unescape(value: Any) -> Any:
    import re

    if not isinstance(value, str):
        return value
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), value)


def _same_cell(value: Any, text: str) -> bool:
    """An xlsx value equals a csv cell: blank as empty, booleans as true/false, numbers exactly (the
    same shortest round-trip digits), text as the csv writes it (formula-safe)."""
    if value is None:
        return text == ""
    if isinstance(value, bool):
        return text == ("true" if value else "false")
    if isinstance(value, int | float):
        return value == float(text)
    return safe_cell(value) == text


@pytest.mark.parametrize("command", COMMANDS)
def test_every_cell_equals_the_csv(outputs: dict[str, tuple[Path, Path]], command: str) -> None:
    csv_path, xlsx_path = outputs[command]
    want = _csv_rows(csv_path)
    got = _sheet_rows(xlsx_path)
    assert len(got) == len(want) > 1
    assert got[0] == want[0]  # the header row
    for r, (row, expected) in enumerate(zip(got, want, strict=True)):
        assert len(row) == len(expected), r
        for value, text in zip(row, expected, strict=True):
            assert _same_cell(value, text), (r, value, text)


def test_cells_are_typed_and_formatted(outputs: dict[str, tuple[Path, Path]]) -> None:
    import openpyxl

    sheet = openpyxl.load_workbook(outputs["eligible"][1]).worksheets[0]
    header = [c.value for c in sheet[1]]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:{sheet.cell(1, len(header)).column_letter}{sheet.max_row}"
    assert all(c.font.b for c in sheet[1])
    row = {h: c for h, c in zip(header, sheet[2], strict=True)}
    assert row["shop_id"].data_type == "s" and row["shop_id"].number_format == "@"
    assert row["rank"].value == 1 and row["rank"].number_format == "0"
    assert isinstance(row["grant"].value, int) and row["grant"].number_format == "#,##0"
    assert isinstance(row["total"].value, float) and row["total"].number_format == "#,##0.00"
    assert row["negative_rate_90d"].number_format == "0.00%"  # a rate: a fraction shown as a percentage
    assert row["live_days"].number_format == "#,##0"  # whole numbers: no decimals
    assert row["eligible"].value is True
    widths = [sheet.column_dimensions[sheet.cell(1, i + 1).column_letter].width for i in range(len(header))]
    assert all(6 < w < 52 for w in widths)
    # the formula-looking shop name is a text cell, not a formula
    names = [r[1] for r in sheet.iter_rows(min_row=2)]
    hostile = [c for c in names if c.value == HOSTILE]
    assert hostile and hostile[0].data_type == "s"
    assert {_unescape(c.value) for c in names} >= set(MARKUP.values())


def test_the_second_sheet_holds_the_footer_facts(
    outputs: dict[str, tuple[Path, Path]], invoke: Callable[..., Any], db: str
) -> None:
    import openpyxl

    book = openpyxl.load_workbook(outputs["eligible"][1], read_only=True)
    assert book.sheetnames == ["data", "about"]
    facts = {r[0]: r[1] for r in _sheet_rows(outputs["eligible"][1], 1)[1:]}
    result = invoke("--db", db, "eligible", "--month", "2023-05", "--no-record", "--all", "--format", "json")
    doc = json.loads(result.stdout)
    assert facts["ruleset.name"] == doc["ruleset"]["name"] == "chuanliu-2023"
    assert facts["ruleset.sha256"] == doc["ruleset"]["sha256"]
    assert facts["period.label"] == "2023-05" and facts["period.complete"] is False
    assert facts["totals.pool"] == doc["totals"]["pool"] and isinstance(facts["totals.pool"], int)
    assert facts["totals.allocated"] == doc["totals"]["allocated"]
    assert facts["assumptions"] == doc["assumptions"]
    assert facts["population.entities"] == doc["population"]["entities"]
    assert json.loads(facts["period.missing_history"]) == doc["period"]["missing_history"]
    assert facts["warnings"] == "; ".join(doc["warnings"]) and "incomplete" in facts["warnings"]


def test_labels_zh_in_csv_xlsx_and_parquet(invoke: Callable[..., Any], db: str, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    headers = {}
    for suffix in ("csv", "xlsx", "parquet", "json"):
        out = tmp_path / f"list.{suffix}"
        args = ("--db", db, "eligible", "--month", "2023-05", "--no-record", "--labels", "zh", "-o", str(out))
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        if suffix == "csv":
            headers[suffix] = _csv_rows(out)[0]
        elif suffix == "xlsx":
            headers[suffix] = _sheet_rows(out)[0]
        elif suffix == "parquet":
            headers[suffix] = pq.read_table(out).column_names
        else:
            assert "shop_id" in json.loads(out.read_text(encoding="utf-8"))["entities"][0]  # keys stay
    assert headers["csv"] == headers["xlsx"] == headers["parquet"]
    head = headers["csv"]
    assert head[:2] == ["店铺ID", "名称"]
    assert {"排名", "合格", "档位", "流量奖励", "总分", "自播天数", "分销GMV", "差评率"} <= set(head)
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in h) for h in head)  # no English name left
    assert len(set(head)) == len(head)


def test_labels_zh_says_the_grant_notes_in_chinese(
    invoke: Callable[..., Any], db: str, tmp_path: Path
) -> None:
    """csv, xlsx and parquet under --labels zh: every grant note in Chinese, the same in the three; json
    keeps the English notes (stable values for programs); the eligible table too."""
    import pyarrow.parquet as pq

    from chuanliu_cli.present.documents import zh_notes

    notes = {}
    for suffix in ("csv", "xlsx", "parquet", "json"):
        out = tmp_path / f"all.{suffix}"
        args = ("--db", db, "eligible", "--month", "2023-05", "--all", "--no-record", "--labels", "zh")
        result = invoke(*args, "-o", str(out))
        assert result.exit_code == 0, result.output
        if suffix == "csv":
            rows = _csv_rows(out)
            notes[suffix] = [r[rows[0].index("奖励说明")] or None for r in rows[1:]]
        elif suffix == "xlsx":
            rows = _sheet_rows(out)
            notes[suffix] = [r[rows[0].index("奖励说明")] or None for r in rows[1:]]
        elif suffix == "parquet":
            notes[suffix] = pq.read_table(out).column("奖励说明").to_pylist()
        else:
            notes[suffix] = [e["grant_note"] for e in json.loads(out.read_text(encoding="utf-8"))["entities"]]
    assert notes["csv"] == notes["xlsx"] == notes["parquet"]
    assert notes["csv"] == [None if n is None else zh_notes()[n] for n in notes["json"]]
    assert "不合格" in notes["csv"] and "not eligible" in notes["json"]
    table = invoke(
        "--db",
        db,
        "eligible",
        "--month",
        "2023-05",
        "--all",
        "--no-record",
        "--labels",
        "zh",
        "--format",
        "table",
    )
    english = invoke(
        "--db", db, "eligible", "--month", "2023-05", "--all", "--no-record", "--format", "table"
    )
    assert "not in the population" in english.stdout  # (the database lists shops without activity)
    assert table.exit_code == 0 and "not in the population" not in table.stdout
    assert zh_notes()["not in the population: no activity in the period"] in table.stdout


def test_labels_zh_on_the_table(invoke: Callable[..., Any], db: str) -> None:
    result = invoke(
        "--db", db, "eligible", "--month", "2023-05", "--no-record", "--labels", "zh", "--format", "table"
    )
    assert result.exit_code == 0, result.output
    for head in ("排名", "店铺ID", "名称", "档位", "总分", "流量奖励"):
        assert head in result.stdout


@pytest.mark.parametrize(
    ("command", "heads"),
    [
        ("runs", ("排名", "主体ID", "名称", "档位", "总分", "流量奖励")),
        ("status", ("表", "行数", "最早时间", "月份")),
        ("explain", ("指标", "数值", "分数", "权重", "门槛")),
        ("compare", ("店铺ID", "档位 A→B", "A总分", "流量奖励变化")),
    ],
)
def test_labels_zh_on_the_other_tables(
    invoke: Callable[..., Any],
    outputs: dict[str, tuple[Path, Path]],
    db: str,
    command: str,
    heads: tuple[str, ...],
) -> None:
    result = invoke("--db", db, *COMMANDS[command], "--labels", "zh", "--format", "table")
    assert result.exit_code == 0, result.output
    header_lines = [line for line in result.stdout.splitlines() if "┃" in line]
    for head in heads:
        assert any(head in line for line in header_lines), head


@pytest.mark.parametrize(
    ("fmt", "suffix"), [("csv", "xlsx"), ("xlsx", "csv"), ("json", "jsonl"), ("parquet", "json")]
)
def test_a_format_the_suffix_contradicts_is_exit_2(
    invoke: Callable[..., Any], db: str, tmp_path: Path, fmt: str, suffix: str
) -> None:
    out = tmp_path / f"list.{suffix}"
    result = invoke(
        "--db", db, "eligible", "--month", "2023-05", "--no-record", "--format", fmt, "-o", str(out)
    )
    assert result.exit_code == 2, result.output
    assert f"--format {fmt} disagrees with -o {out}, whose name says {suffix}" in result.output
    assert not out.exists()


def test_the_suffix_implies_xlsx_and_a_pipe_takes_it(
    invoke: Callable[..., Any], db: str, tmp_path: Path
) -> None:
    out = tmp_path / "list.XLSX"
    result = invoke("--db", db, "eligible", "--month", "2023-05", "--no-record", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:2] == b"PK" and [p.name for p in tmp_path.iterdir()] == [out.name]
    piped = invoke("--db", db, "eligible", "--month", "2023-05", "--no-record", "--format", "xlsx")
    assert piped.exit_code == 0, piped.output
    (tmp_path / "piped.xlsx").write_bytes(piped.stdout_bytes)
    assert _sheet_rows(tmp_path / "piped.xlsx") == _sheet_rows(out)


def test_xlsx_is_refused_on_a_terminal(
    invoke: Callable[..., Any], db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # Rich: stdout is a terminal
    result = invoke("--db", db, "eligible", "--month", "2023-05", "--no-record", "--format", "xlsx")
    assert result.exit_code == 2, result.output
    assert "xlsx is binary: write it to a file with -o FILE" in result.output


def test_what_a_sheet_cannot_hold_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chuanliu_cli.errors import UsageError
    from chuanliu_cli.present import xlsx
    from chuanliu_cli.present.documents import Document

    long = Document({}, [], [{"raw": "x" * 40_000}], ["raw"])
    with pytest.raises(UsageError, match="at most 32,767 characters in a cell; row 2, column raw"):
        xlsx.write_xlsx(io.BytesIO(), long)
    monkeypatch.setattr(xlsx, "MAX_ROWS", 3)
    many = Document({}, [], [{"n": i} for i in range(3)], ["n"])
    with pytest.raises(UsageError, match="at most 2 rows on a sheet; this result has 3"):
        xlsx.write_xlsx(io.BytesIO(), many)


def test_big_integers_and_non_finite_numbers_stay_exact(tmp_path: Path) -> None:
    from chuanliu_cli.present.documents import Document
    from chuanliu_cli.present.writers import render
    from chuanliu_cli.present.xlsx import write_xlsx

    rows = [{"id": 2**60 + 1, "x": float("nan")}, {"id": 7, "x": 0.5}]
    doc = Document({}, rows, rows, ["id", "x"])
    out = tmp_path / "big.xlsx"
    with out.open("wb") as f:
        write_xlsx(f, doc)
    got = _sheet_rows(out)
    want = list(csv.reader(io.StringIO(str(render("csv", doc)))))
    assert got[1] == [str(2**60 + 1), "nan"] and want[1] == got[1]
    assert got[2] == [7, 0.5]


def test_any_text_is_escaped_and_reads_back_as_it_was(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET
    import zipfile

    from chuanliu_cli.present.documents import Document
    from chuanliu_cli.present.xlsx import write_xlsx

    texts = ["<r><t>evil</t></r>", "a&b<c>", "x\x01y\x00", "_x0041_", " lead", "trail ", "tab\tnl\ncr\r"]
    texts += ["\ufffe\uffff", "普通", "]]>", '"quoted"', "=1+2"]
    rows = [{"text": t, "n": i} for i, t in enumerate(texts)]
    doc = Document({"note": "<r>x</r> & _x0001_"}, rows, rows, ["text", "n"])
    out = tmp_path / "text.xlsx"
    with out.open("wb") as f:
        write_xlsx(f, doc)
    with zipfile.ZipFile(out) as z:
        for name in z.namelist():
            if name.endswith(".xml"):
                ET.fromstring(z.read(name))  # well-formed, every part
    assert [r[0] for r in _sheet_rows(out)[1:]] == texts
    assert dict(_sheet_rows(out, 1)[1:])["note"] == "<r>x</r> & _x0001_"


def test_libreoffice_opens_the_workbook(outputs: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    assert shutil.which("soffice"), (
        "needs LibreOffice Calc: apt-get install libreoffice-calc-nogui (as .ci/run)"
    )
    csv_path, xlsx_path = outputs["eligible"]
    # raw values, not as shown (44 = comma, 34 = quote, 76 = UTF-8, from line 1; token 9 false)
    filt = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false"
    done = subprocess.run(
        [
            "soffice",
            "--headless",
            "--norestore",
            f"-env:UserInstallation=file://{tmp_path / 'profile'}",
            "--convert-to",
            filt,
            "--outdir",
            str(tmp_path),
            str(xlsx_path),
        ],
        capture_output=True,
        timeout=180,
    )
    converted = tmp_path / "eligible.csv"
    assert converted.exists(), done.stderr.decode(errors="replace")
    got = _csv_rows(converted)
    want = _csv_rows(csv_path)
    assert len(got) == len(want) and got[0] == want[0]
    for row, expected in zip(got[1:], want[1:], strict=True):
        for text, csv_text in zip(row, expected, strict=True):
            if text in ("TRUE", "FALSE"):
                assert csv_text == text.lower()
            elif text.endswith("%"):  # a rate column: LibreOffice writes the percentage
                assert math.isclose(float(text[:-1]) / 100, float(csv_text), rel_tol=1e-12, abs_tol=1e-15)
            elif csv_text and _number(csv_text):
                assert math.isclose(float(text), float(csv_text), rel_tol=1e-14), (text, csv_text)
            else:
                assert safe_cell(text) == csv_text


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@pytest.mark.slow
def test_500k_rows_are_written_in_bounded_memory(tmp_path: Path) -> None:
    """500,000 entities: the sheet's XML (about a gigabyte) is never held whole, a slice of rows at a
    time: the writer's peak memory stays far below it."""
    import resource
    import zipfile

    from chuanliu_cli.present.documents import scores_document
    from chuanliu_cli.present.xlsx import write_xlsx
    from tests.test_report_scale import synthetic_run

    doc = scores_document(synthetic_run(500_000), "merchant")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out = tmp_path / "500k.xlsx"
    with out.open("wb") as f:
        write_xlsx(f, doc)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    with zipfile.ZipFile(out) as z:
        xml_size = z.getinfo("xl/worksheets/sheet1.xml").file_size
    print(f"sheet XML {xml_size / 2**20:.0f} MB; peak memory grew {grown / 2**20:.0f} MB while writing")
    assert xml_size > 500 * 2**20 and grown < xml_size / 2


def test_labels_zh_with_json_says_the_keys_stay_english(invoke: Callable[..., Any], tmp_path: Path) -> None:
    result = invoke("runs", "--db", str(tmp_path / "none.duckdb"), "--format", "json", "--labels", "zh")
    assert "--labels zh: json keeps its stable English keys" in result.output
