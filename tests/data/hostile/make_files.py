"""Regenerate the small hostile export files of this directory (`python tests/data/hostile/make_files.py`)."""

from __future__ import annotations

import datetime as dt
import io
import random
import zipfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEADER = "order_id,shop_id,buyer_id,sale_mode,order_time,paid_amount,status\n"
GOOD = "1,ks1,b1,self,2023-05-01 10:00:00,10,completed\n"


def order(i: int, *, time: str = "2023-05-01 10:00:00", amount: str = "10", status: str = "completed") -> str:
    return f'{i},ks1,b{i},self,"{time}","{amount}",{status}\n'


def text_files() -> dict[str, bytes]:
    rng = random.Random(7)
    gbk_row = "2,ks1,买家二,self,2023-05-01 10:00:00,1,completed\n"
    utf8_row = "1,ks1,买家一,self,2023-05-01 10:00:00,1,completed\n"
    files = {
        "empty.csv": b"",
        "whitespace_only.csv": b"   \n\n\t \n",
        "bom_only.csv": b"\xef\xbb\xbf",
        "only_header.csv": HEADER.encode(),
        "blank_rows_only.csv": (HEADER + "\n" * 300 + ",,,,,,\n" * 100).encode(),
        "garbage.csv": bytes(rng.randrange(256) for _ in range(4096)),
        "nul_bytes.csv": (HEADER + "1,ks1,b1,self,2023-05-01 10:00:00,1\x00\x00,completed\n").encode(),
        "utf16le_no_bom.csv": (HEADER + GOOD).encode("utf-16-le"),
        "mixed_utf8_then_gbk.csv": (HEADER + utf8_row).encode() + gbk_row.encode("gbk"),
        "mixed_gbk_then_utf8.csv": (HEADER + gbk_row).encode("gbk") + utf8_row.encode(),
        "truncated_gb18030.csv": (HEADER + gbk_row + "3,ks1,买家").encode("gb18030")[:-1],
        "unterminated_quote.csv": (
            HEADER + '1,ks1,b1,self,2023-05-01 10:00:00,"12.5,completed\n' + GOOD
        ).encode(),
        "newline_in_value.csv": (HEADER + '1,ks1,b1,self,2023-05-01 10:00:00,10,"paid\nand more"\n').encode(),
        "ansi_escape_in_value.csv": (HEADER + order(1, status="\x1b[2J\x1b]0;owned\x07done")).encode(),
        "duplicate_headers.csv": (
            b"order_id,order_id,shop_id,buyer_id,sale_mode,order_time,paid_amount,status\n"
            b"1,2,ks1,b1,self,2023-05-01 10:00:00,10,completed\n"
        ),
        "duplicate_alias_headers.csv": (
            "order_id,订单号,shop_id,buyer_id,sale_mode,order_time,paid_amount,status\n"
            "1,2,ks1,b1,self,2023-05-01 10:00:00,10,completed\n"
        ).encode(),
        "missing_required_column.csv": (
            b"order_id,shop_id,buyer_id,sale_mode,order_time,status\n1,ks1,b1,self,2023-05-01 10:00:00,paid\n"
        ),
        "json_named_csv.csv": b'[{"order_id": 1, "paid_amount": 2}]\n',
        "wrong_field_counts.csv": (
            HEADER + "1,ks1,b1,self,2023-05-01 10:00:00,10\n2,ks1,b2,self,2023-05-01 10:00:00,10,paid,x,y\n"
        ).encode(),
        "negative_amounts.csv": (HEADER + order(1, amount="-5") + order(2, amount="¥-1,000.00")).encode(),
        "huge_amounts.csv": (
            HEADER
            + "".join(
                order(i, amount=a)
                for i, a in enumerate(["1e308", "9" * 40, "1e400", "NaN", "Infinity", "1.2万万", "1e13"])
            )
        ).encode(),
        "huge_refund_amount.csv": (
            HEADER.strip() + ",refund_amount\n" + order(1).strip() + ",10000000000000000\n"
        ).encode(),
        "huge_negative_amount.csv": (HEADER + order(1, amount="-100000000000000000")).encode(),
        "huge_amount_in_wan.csv": (HEADER + order(1, amount="9" * 32 + "万")).encode(),
        "dates_year_9999.csv": (
            HEADER
            + order(1, time="9999-12-31 23:59:59")
            + order(2, time="9999999999999")
            + order(3, time="99999")
        ).encode(),
        "dates_before_1970.csv": (
            HEADER
            + order(1, time="1969-12-31 23:59:59")
            + order(2, time="0001-01-01 00:00:00")
            + order(3, time="-86400000")
            + order(4, time="00000")
        ).encode(),
        "impossible_dates.csv": (
            HEADER + order(1, time="2023-02-30 10:00:00") + order(2, time="2023-05-01T25:00:00+08:00")
        ).encode(),
        "bad_utc_offset.csv": (HEADER + order(1, time="2023-05-01T10:00:00+99:99")).encode(),
        "sql_in_values.csv": (
            HEADER
            + order(1, status="completed'); DROP TABLE orders; --")
            + order(2, amount="1; DELETE FROM loads")
        ).encode(),
        "reviews_bad_scores.csv": (
            b"review_id,order_id,shop_id,quality_score,review_time\n"
            b"r1,1,ks1,0,2023-05-01 10:00:00\nr2,1,ks1,6,2023-05-01 10:00:00\n"
            b"r3,1,ks1,2.5,2023-05-01 10:00:00\nr4,1,ks1,1e20,2023-05-01 10:00:00\n"
        ),
        "livestreams_bad.csv": (
            b"live_id,shop_id,host_type,start_time,end_time,viewers\n"
            b"l1,ks1,self,2023-05-01 10:00:00,2023-05-01 09:00:00,10\n"
            b"l2,ks1,promoter,2023-05-01 10:00:00,2023-05-01 11:00:00,-3\n"
            b"l3,ks1,alien,2023-05-01 10:00:00,2023-05-01 11:00:00,99999999999999999999\n"
        ),
    }
    return files


def xlsx_files() -> dict[str, bytes]:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "orders"
    ws.append(HEADER.strip().split(","))
    ws.append(["1", "ks1", "b1", "self", "2023-05-01 10:00:00", "=1+1", "completed"])
    ws.append(
        ["2", "ks1", "b2", "self", "2023-05-01 10:00:00", '=WEBSERVICE("http://127.0.0.1/")', "completed"]
    )
    ws.append(["3", "ks1", "b3", "self", "2023-05-01 10:00:00", "=cmd|' /C calc'!A0", "completed"])
    ws.append(["4", "ks1", "b4", "self", "2023-05-01 10:00:00", 5, "completed"])
    ws.append(["5", "ks1", "b5", "self", "2023-05-01 10:00:00", 6, "completed"])
    ws.merge_cells("B5:C6")
    buffer = io.BytesIO()
    wb.save(buffer)
    good = buffer.getvalue()

    def rewrite(member: str, change: Callable[[bytes], bytes]) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
            for info in src.infolist():
                data = src.read(info.filename)
                dst.writestr(info.filename, change(data) if info.filename == member else data)
        return out.getvalue()

    entities = b'<!ENTITY lol "lol">' + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    laughs = rewrite(
        "xl/worksheets/sheet1.xml",
        lambda x: b"<!DOCTYPE lolz [" + entities + b"]>" + x.replace(b">ks1<", b">&lol9;<"),
    )
    xxe = rewrite(
        "xl/worksheets/sheet1.xml",
        lambda x: (
            b'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/hostname">]>' + x.replace(b">ks1<", b">&xxe;<")
        ),
    )
    not_workbook = io.BytesIO()
    with zipfile.ZipFile(not_workbook, "w") as z:
        z.writestr("readme.txt", "a zip archive, but no workbook")
    return {
        "formulas_and_merged_cells.xlsx": good,
        "legacy_ole_or_encrypted.xlsx": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1024),
        "html_table_named_xlsx.xlsx": b"<html><table><tr><td>order_id</td></tr></table></html>\n",
        "truncated.xlsx": good[: len(good) // 2],
        "zip_without_workbook.xlsx": not_workbook.getvalue(),
        "billion_laughs.xlsx": laughs,
        "external_entity.xlsx": xxe,
    }


def parquet_files() -> dict[str, bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    base: dict[str, pa.Array] = {
        "order_id": pa.array(["1", "2", "3"]),
        "shop_id": pa.array(["ks1"] * 3),
        "buyer_id": pa.array(["b1", "b2", "b3"]),
        "sale_mode": pa.array(["self"] * 3),
        "order_time": pa.array(["2023-05-01 10:00:00"] * 3),
        "paid_amount": pa.array(["10"] * 3),
        "status": pa.array(["completed"] * 3),
    }

    def table(**columns: pa.Array) -> bytes:
        out = io.BytesIO()
        pq.write_table(pa.table({**base, **columns}), out)
        return out.getvalue()

    good = table()
    inf, nan = float("inf"), float("nan")
    # a whole footer over data pages that no longer decompress (a disk or a copy went wrong)
    many = io.BytesIO()
    n = 5000
    pq.write_table(
        pa.table({k: pa.array([f"{k}-{i}" for i in range(n)]) for k in base}), many, compression="zstd"
    )
    damaged = bytearray(many.getvalue())
    for i in range(100, 1100):
        damaged[i] = (damaged[i] * 7 + 13) % 256
    return {
        "truncated.parquet": good[: len(good) // 2],
        "damaged_pages.parquet": bytes(damaged),
        "garbage_after_magic.parquet": b"PAR1" + bytes(random.Random(3).randrange(256) for _ in range(2000)),
        "double_amounts.parquet": table(paid_amount=pa.array([nan, inf, 1e300])),
        "double_times.parquet": table(order_time=pa.array([1e300, nan, 1.683e12])),
        "decimal38_amounts.parquet": table(paid_amount=pa.array([10**37, 1, None], pa.decimal128(38, 0))),
        "struct_amounts.parquet": table(paid_amount=pa.array([{"yuan": 1}, {"yuan": 2}, None])),
        "duration_times.parquet": table(order_time=pa.array([1, 2, 3], pa.duration("s"))),
        "far_dates.parquet": table(
            order_time=pa.array([dt.date(9999, 12, 31), dt.date(1, 1, 1), dt.date(1969, 12, 31)])
        ),
    }


def main() -> None:
    for name, data in {**text_files(), **xlsx_files(), **parquet_files()}.items():
        (HERE / name).write_bytes(data)


if __name__ == "__main__":
    main()
