"""--csv-encoding: utf-8 (the default), utf-8-sig (a BOM, for Excel) and gb18030 (older Excel/WPS on Chinese
Windows) round-trip the Chinese names, to a file and to stdout; refused for any other format than csv."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from chuanliu_cli.present.writers import encode_csv

NAME = "云源珠宝文玩旗舰店"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, may_only: Path) -> tuple[str, str]:
    """The May exports loaded once, and their reward list as csv (UTF-8, the default): the text every
    encoding holds."""
    from typer.testing import CliRunner

    from chuanliu_cli.cli.app import app

    tmp = tmp_path_factory.mktemp("enc")
    db, out = str(tmp / "enc.duckdb"), tmp / "utf8.csv"
    runner = CliRunner()
    loaded = runner.invoke(app, ["-q", "--db", db, "load", *sorted(str(p) for p in may_only.glob("*.csv"))])
    assert loaded.exit_code == 0, loaded.output
    result = runner.invoke(app, ["-q", "--db", db, "eligible", "--month", "2023-05", "--all", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return db, out.read_text(encoding="utf-8")


def _eligible(invoke: Callable[..., Any], db: str, *extra: str) -> Any:
    result = invoke("-q", "--db", db, "eligible", "--month", "2023-05", "--no-record", "--all", *extra)
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize(
    ("encoding", "bom"), [("utf-8", b""), ("utf-8-sig", b"\xef\xbb\xbf"), ("gb18030", b"")]
)
def test_each_encoding_round_trips_the_chinese_names(
    invoke: Callable[..., Any], reference: tuple[str, str], tmp_path: Path, encoding: str, bom: bytes
) -> None:
    data, text = reference
    out = tmp_path / "list.csv"
    _eligible(invoke, data, "--csv-encoding", encoding, "-o", str(out))
    raw = out.read_bytes()
    assert raw.startswith(bom) and not raw[len(bom) :].startswith(b"\xef\xbb\xbf")
    assert raw.decode(encoding) == text
    assert NAME in text
    if encoding == "gb18030":
        assert NAME.encode("gb18030") in raw and NAME.encode("utf-8") not in raw


def test_stdout_takes_the_encoding_and_the_chinese_headers(
    invoke: Callable[..., Any], reference: tuple[str, str]
) -> None:
    data, text = reference
    result = _eligible(invoke, data, "--format", "csv", "--csv-encoding", "gb18030", "--labels", "zh")
    rows = list(csv.reader(io.StringIO(result.stdout_bytes.decode("gb18030"))))
    english = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["店铺ID", "名称", "主体ID"] and len(rows[0]) == len(english[0])
    # the same cells under Chinese headers, the grant notes in Chinese
    from chuanliu_cli.present.documents import zh_notes

    note = english[0].index("grant_note")
    for row in english[1:]:
        row[note] = zh_notes().get(row[note], row[note])
    assert rows[1:] == english[1:]


def test_a_document_command_takes_the_encoding(
    invoke: Callable[..., Any], reference: tuple[str, str], tmp_path: Path
) -> None:
    data, _ = reference
    out = tmp_path / "explain.csv"
    args = ("explain", "ks700001", "--month", "2023-05", "--csv-encoding", "utf-8-sig")
    result = invoke("-q", "--db", data, *args, "-o", str(out))
    assert result.exit_code == 0, result.output
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfkey,section,name,value,passed,detail\n")


@pytest.mark.parametrize("fmt", ["json", "jsonl", "parquet", "xlsx", "table"])
def test_refused_for_another_format(invoke: Callable[..., Any], tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "out.bin"
    args = ("eligible", "--month", "2023-05", "--data", str(tmp_path), "--format", fmt, "-o", str(out))
    result = invoke(*args, "--csv-encoding", "gb18030")
    assert result.exit_code == 2, result.output
    assert f"--csv-encoding gb18030 applies to csv output, and this output is {fmt}" in result.output
    assert not out.exists()


def test_refused_when_the_output_is_a_table_by_default(invoke: Callable[..., Any], tmp_path: Path) -> None:
    result = invoke("runs", "--db", str(tmp_path / "none.duckdb"), "--csv-encoding", "utf-8-sig")
    assert result.exit_code == 2, result.output
    assert "this output is table" in result.output and "add --format csv" in result.output


def test_an_unknown_encoding_is_a_usage_error(invoke: Callable[..., Any], tmp_path: Path) -> None:
    result = invoke("eligible", "--month", "2023-05", "--data", str(tmp_path), "--csv-encoding", "gbk")
    assert result.exit_code == 2, result.output


@given(st.text(st.characters(blacklist_categories=("Cs",))), st.integers(1, 9))
@example("\U0010ffff\ue5e5€𠀀a", 1)
def test_gb18030_encodes_every_character_in_any_chunking(text: str, chunk: int) -> None:
    for data in (text, text.encode("utf-8")):  # text, or the UTF-8 bytes of the frame writers
        encoded = b"".join(encode_csv(data, "gb18030", chunk=chunk))
        assert encoded.decode("gb18030") == text
    assert b"".join(encode_csv(text, "utf-8-sig")).decode("utf-8-sig") == text
