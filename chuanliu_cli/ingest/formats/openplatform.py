"""Saved responses of the 快手电商开放平台 (Kuaishou e-commerce open platform) read as export rows (SPEC §2).

A file holds one response (a JSON document), one response a line (JSON lines), or a JSON array of
responses. The envelope is `{"result": 1, "data": {…}}`; any other `result` is an error response saved by
mistake and refuses the file with its `error_msg`. The method is recognised by the shape of `data`, never by
the file's name:

- `open.order.cursor.list`: `data.orderList[]` → orders;
- `open.seller.order.cps.list`: `data.cpsOrderList[]` → marks orders as distribution orders with their
  promoter (the loader keeps them in `cps_marks` and applies them to the orders, stored and loaded later);
- `open.comment.list.get`: `data.rootComment[]` → reviews.

Each element becomes one row of text cells under the canonical column names, as a CSV export would hold
them, and goes through the same canonicalization as every export (`ingest.canonical`): ids, epoch
milliseconds, status codes, cpsType and amounts are parsed there, amounts with the scale 0.01 of their
columns (integer fen → yuan, exact decimals). Only what this format alone knows is done here: where each
field is, payTime else createTime, refunds summed in integer fen with the reason of the largest, fen that are
not whole numbers refused, and a comment's cheatStatus (≠ 0) or valid (false) kept as its cheat marker (such a
review is `suspicious`, SPEC §11: it stays in the table, and rulesets leave it out of the review metrics).
A row's number (`__line`) is `response * 1_000_000 + element`, so that rows keep the file's order and a
rejected row is located by its line (JSON lines) and JSON path, `data.orderList[3].orderBaseInfo.oid`.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from chuanliu_cli.errors import DataError
from chuanliu_cli.ingest.formats.base import Batch, FileReader, text_batch
from chuanliu_cli.ingest.mapping import TableMapping
from chuanliu_cli.schema import Table

#: The extensions a saved response may have (its content decides).
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson", ".txt")
#: Elements one response may hold (a page holds at most 100; the row numbers leave room for this many).
PER_RESPONSE = 1_000_000
#: A file holding one JSON document is parsed whole: larger ones must be JSON lines.
MAX_DOCUMENT_BYTES = 512 << 20
BATCH_ROWS = 50_000

Cells = dict[str, str | None]


@dataclass(frozen=True)
class Flat:
    """One element as a row: its cells, or why it is refused (`error`)."""

    cells: Cells
    error: str | None = None


@dataclass(frozen=True)
class Method:
    """An API method whose responses `load` reads: where its rows are and how each becomes cells."""

    name: str
    table: str  # the table its rows feed (the cps list updates orders)
    list_key: str  # data.<list_key>[] holds the rows
    fields: dict[str, str]  # canonical column -> the field of an element it comes from
    amounts: tuple[str, ...]  # columns in fen
    flatten: Callable[[dict[str, Any]], Flat]
    key_field: str  # the element's id, for messages

    @property
    def columns(self) -> list[str]:
        """The canonical columns of its rows (the reader's headers)."""
        return list(self.fields)

    @property
    def marks_orders(self) -> bool:
        """Whether its rows update stored orders instead of being rows of their own (the cps list)."""
        return self.list_key == "cpsOrderList"


# --- values ----------------------------------------------------------------------------------------------


class JsonFloat(Decimal):
    """A JSON number written with a fraction or an exponent: its exact value, and its text as written."""

    text: str

    def __new__(cls, text: str) -> JsonFloat:
        number = super().__new__(cls, text)
        number.text = text
        return number


def _text(value: Any) -> str | None:
    """A JSON value as the text a CSV export would hold; ids keep every digit (ints print as digits, and
    numbers with a fraction or exponent are read as Decimal, so their text is the file's)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _absent(value: Any) -> bool:
    """No value: missing, null, empty, or the platform's 0 for "none" (an unpaid order's payTime)."""
    return value is None or value == "" or (not isinstance(value, bool) and value in (0, "0"))


_WHOLE = re.compile(r"-?[0-9]+")


def _fen(value: Any, where: str) -> tuple[int | None, str | None]:
    """An amount in fen as an integer (None when absent), or why it is not one."""
    if value is None or value == "":
        return None, None
    if isinstance(value, int) and not isinstance(value, bool):
        return value, None
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value), None
    if isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        return int(value.strip()), None
    return None, f"{where}: {_shown(value)} is not a whole number of fen (1999 fen = 19.99 yuan)"


def _as_written(value: Any) -> str:
    """A JSON number read as Decimal, as the file wrote it (for a rejected row's raw record)."""
    return value.text if isinstance(value, JsonFloat) else str(value)


def _shown(value: Any) -> str:
    if isinstance(value, JsonFloat):
        return value.text
    return json.dumps(value, ensure_ascii=False, default=str)[:60]


def _id(value: Any, where: str, errors: list[str]) -> str | None:
    """An id's text; one written as a floating-point number (a fraction or an exponent) is refused: the
    program that wrote it may have rounded its digits (a 19-digit oid does not fit a double)."""
    if isinstance(value, JsonFloat):
        errors.append(
            f"{where}: {value.text} is a floating-point number, so its digits may have been rounded; "
            "save ids as JSON integers or strings"
        )
        return None
    if isinstance(value, dict | list):
        errors.append(f"{where}: {_shown(value)} is not an id")
        return None
    return None if _absent(value) and not isinstance(value, str) else _text(value)


def _object(value: Any, where: str) -> tuple[dict[str, Any], str | None]:
    if value is None:
        return {}, None
    if isinstance(value, dict):
        return value, None
    return {}, f"{where} is not a JSON object"


# --- the methods -----------------------------------------------------------------------------------------


def _order(el: dict[str, Any]) -> Flat:
    """An element of data.orderList: orderBaseInfo, orderItemInfo, orderCpsInfo, orderRefundList."""
    base, e1 = _object(el.get("orderBaseInfo"), "orderBaseInfo")
    raw_item = el.get("orderItemInfo")
    if isinstance(raw_item, list):
        if len(raw_item) > 1:
            return Flat({}, f"orderItemInfo holds {len(raw_item)} items; an order row is one item")
        raw_item = raw_item[0] if raw_item else None
    item, e2 = _object(raw_item, "orderItemInfo")
    cps, e3 = _object(el.get("orderCpsInfo"), "orderCpsInfo")
    refunds = el.get("orderRefundList") or []
    error = e1 or e2 or e3
    if not isinstance(refunds, list):
        error = error or "orderRefundList is not a JSON array"
        refunds = []
    paid, e4 = _fen(base.get("totalFee"), "orderBaseInfo.totalFee")
    error = error or e4
    refund_total: int | None = None
    largest: tuple[int, Any] | None = None
    for j, refund in enumerate(refunds):
        entry, e5 = _object(refund, f"orderRefundList[{j}]")
        fee, e6 = _fen(entry.get("refundFee"), f"orderRefundList[{j}].refundFee")
        error = error or e5 or e6
        if fee is None:
            continue
        refund_total = (refund_total or 0) + fee
        reason = entry.get("refundReason")
        if not isinstance(reason, str) and isinstance(entry.get("refundReasonDesc"), str):
            reason = entry.get("refundReasonDesc")  # a reason code, with its text beside it
        if largest is None or fee > largest[0]:
            largest = (fee, reason)
    time = base.get("payTime")
    if _absent(time):
        time = base.get("createTime")
    ids: list[str] = []
    promoter = _id(cps.get("distributorId"), "orderCpsInfo.distributorId", ids)
    cells: Cells = {
        "order_id": _id(base.get("oid"), "orderBaseInfo.oid", ids),
        "shop_id": _id(base.get("sellerId"), "orderBaseInfo.sellerId", ids),
        "buyer_id": _id(base.get("buyerOpenId"), "orderBaseInfo.buyerOpenId", ids),
        "item_id": _id(item.get("itemId"), "orderItemInfo.itemId", ids),
        "item_name": _text(item.get("itemTitle")),
        "promoter_id": None if _absent(promoter) else promoter,
        "promoter_name": _text(cps.get("distributorName")) if not _absent(promoter) else None,
        "sale_mode": _text(base.get("cpsType")),
        "order_time": None if _absent(time) else _text(time),
        "paid_amount": None if paid is None else str(paid),
        "quantity": _text(item.get("num")),
        "status": _text(base.get("status")),
        "refund_amount": None if refund_total is None else str(refund_total),
        "refund_reason": _text(largest[1]) if largest is not None else None,
    }
    return Flat(cells, (ids[0] if ids else None) or error)


def _cps(el: dict[str, Any]) -> Flat:
    """An element of data.cpsOrderList: the order it marks and its promoter (distributorId, else
    promoterId: the 达人 the orders' own orderCpsInfo.distributorId names), with distributorName if any."""
    ids: list[str] = []
    promoter = _id(el.get("distributorId"), "distributorId", ids)
    if _absent(promoter):
        promoter = _id(el.get("promoterId"), "promoterId", ids)
    order = _id(el.get("oid"), "oid", ids)
    named = not _absent(promoter) and isinstance(el.get("distributorName"), str)
    cells: Cells = {
        "order_id": order,
        "promoter_id": None if _absent(promoter) else promoter,
        "promoter_name": (el.get("distributorName") or None) if named else None,
    }
    return Flat(cells, *ids[:1])


_FALSE = (False, 0, "0", "false", "False")


def _comment(el: dict[str, Any]) -> Flat:
    """An element of data.rootComment; the platform's cheatStatus (≠ 0) or valid (false) is its `cheat`
    marker (SPEC §11): the review is kept and flagged `suspicious`."""
    ids: list[str] = []
    valid, cheat = el.get("valid"), el.get("cheatStatus")
    marked = (valid is not None and valid in _FALSE) or (
        cheat is not None and cheat != "" and cheat not in _FALSE
    )
    cells: Cells = {
        "review_id": _id(el.get("commentId"), "commentId", ids),
        "order_id": _id(el.get("orderId"), "orderId", ids),
        "shop_id": _id(el.get("sellerId"), "sellerId", ids),
        "item_id": _id(el.get("itemId"), "itemId", ids),
        "quality_score": _text(el.get("qualityScore")),
        "service_score": _text(el.get("serviceScore")),
        "logistics_score": _text(el.get("logisticsScore")),
        "review_time": None if _absent(el.get("createTime")) else _text(el.get("createTime")),
        "complaint": _text(el.get("complainStatus")),
        "cheat": "true" if marked else "false",
    }
    return Flat(cells, *ids[:1])


ORDERS = Method(
    "open.order.cursor.list",
    "orders",
    "orderList",
    {
        "order_id": "orderBaseInfo.oid",
        "shop_id": "orderBaseInfo.sellerId",
        "buyer_id": "orderBaseInfo.buyerOpenId",
        "item_id": "orderItemInfo.itemId",
        "item_name": "orderItemInfo.itemTitle",
        "promoter_id": "orderCpsInfo.distributorId",
        "promoter_name": "orderCpsInfo.distributorName",
        "sale_mode": "orderBaseInfo.cpsType",
        "order_time": "orderBaseInfo.payTime (else createTime)",
        "paid_amount": "orderBaseInfo.totalFee",
        "quantity": "orderItemInfo.num",
        "status": "orderBaseInfo.status",
        "refund_amount": "orderRefundList[].refundFee",
        "refund_reason": "orderRefundList[].refundReason",
    },
    ("paid_amount", "refund_amount"),
    _order,
    "orderBaseInfo.oid",
)
CPS = Method(
    "open.seller.order.cps.list",
    "orders",
    "cpsOrderList",
    {"order_id": "oid", "promoter_id": "distributorId (else promoterId)", "promoter_name": "distributorName"},
    (),
    _cps,
    "oid",
)
COMMENTS = Method(
    "open.comment.list.get",
    "reviews",
    "rootComment",
    {
        "review_id": "commentId",
        "order_id": "orderId",
        "shop_id": "sellerId",
        "item_id": "itemId",
        "quality_score": "qualityScore",
        "service_score": "serviceScore",
        "logistics_score": "logisticsScore",
        "review_time": "createTime",
        "complaint": "complainStatus",
        "cheat": "cheatStatus",
    },
    (),
    _comment,
    "commentId",
)
METHODS = (ORDERS, CPS, COMMENTS)
#: The methods `load` reads, for messages.
KNOWN = ", ".join(m.name for m in METHODS)


def marks_mapping(orders: TableMapping) -> TableMapping:
    """The rows of a cps list as a table of their own, canonicalized like the orders' columns they name: the
    order (order_id, required), its promoter and the promoter's name."""
    columns = tuple(orders.table.column(c) for c in ("order_id", "promoter_id", "promoter_name"))
    table = Table("cps_marks", "order_id", columns, None, ())
    return TableMapping(table, {c.name: [c.name] for c in columns}, {})


def method_of(data: Any) -> Method | None:
    """The method whose response `data` is, by its shape (the list it holds)."""
    if isinstance(data, dict):
        for method in METHODS:
            if method.list_key in data:
                return method
    return None


# --- reading responses -------------------------------------------------------------------------------------

Mode = Literal["lines", "document", "array"]


def _loads(text: str) -> Any:
    """JSON with exact numbers: a number with a fraction or exponent is a Decimal (its text as written)."""

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    return json.loads(text, parse_float=JsonFloat, parse_constant=constant)


def is_envelope(obj: Any) -> bool:
    """Whether a JSON value is an open-platform response: an object with `result` and `data` or an error."""
    return isinstance(obj, dict) and "result" in obj and ("data" in obj or "error_msg" in obj)


def _ok(obj: dict[str, Any]) -> bool:
    result = obj.get("result")
    return (isinstance(result, int) and not isinstance(result, bool) and result == 1) or result == "1"


def _where(mode: Mode, slot: int) -> str:
    """Where response `slot` (from 1) is: `line 3`, `[2]` of an array, nothing for a single document."""
    return {"lines": f"line {slot}", "array": f"[{slot - 1}]", "document": ""}[mode]


def _join(where: str, path: str) -> str:
    if not where:
        return path
    return f"{where}.{path}" if where.startswith("[") else f"{where}, {path}"


def _head(path: Path, size: int = 4096) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(size)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None


def looks_like_json(path: Path) -> bool:
    """A file whose extension a response may have and whose first character opens a JSON object or array."""
    if path.suffix.lower() not in JSON_SUFFIXES:
        return False
    head = _head(path)
    for bom in (codecs.BOM_UTF8,):
        head = head.removeprefix(bom)
    return head.lstrip().startswith((b"{", b"["))


def _encoding(path: Path, encoding: str | None) -> str:
    from chuanliu_cli.ingest.readers import detect_encoding
    from chuanliu_cli.ingest.readers import head_bytes as sample

    return encoding or detect_encoding(path, sample(path))


def responses(path: Path, encoding: str | None = None) -> Iterator[tuple[Mode, int, Any]]:
    """Every JSON value of a file of responses: (mode, slot from 1, value). JSON lines are read line by line;
    a file whose first line is not a whole JSON value is one document (an object, or an array of them)."""
    from chuanliu_cli.ingest.readers import decoded_lines

    enc = _encoding(path, encoding)
    lines = decoded_lines(path, enc)
    number = 0
    for line in lines:
        number += 1
        if line.strip():
            break
    else:
        raise DataError(f"{path}: the file is empty")
    try:
        first = _loads(line.lstrip("\ufeff"))
    except (ValueError, RecursionError):
        first = None
    if isinstance(first, dict):
        yield "lines", number, first
        for line in lines:
            number += 1
            if not line.strip():
                continue
            try:
                value = _loads(line)
            except (ValueError, RecursionError) as exc:
                raise DataError(
                    f"{path}: line {number}: not valid JSON ({_json_error(exc)}); a response cut short? "
                    "nothing was loaded",
                    hint="save one whole response a line, or request the page again",
                ) from None
            yield "lines", number, value
        return
    size = path.stat().st_size
    if size > MAX_DOCUMENT_BYTES:
        raise DataError(
            f"{path}: a JSON document of {size >> 20} MiB; larger than {MAX_DOCUMENT_BYTES >> 20} MiB",
            hint="save one response a line (JSON lines)",
        )
    try:
        text = path.read_bytes().decode(enc).lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: byte offset {exc.start}: invalid {enc} byte sequence "
            f"{exc.object[exc.start : exc.start + 4]!r}",
            hint="JSON is UTF-8; if the file is in another encoding, give the encoding",
        ) from None
    try:
        doc = _loads(text)
    except (ValueError, RecursionError) as exc:
        raise DataError(f"{path}: not valid JSON ({_json_error(exc)})") from None
    if isinstance(doc, list):
        for k, value in enumerate(doc, start=1):
            yield "array", k, value
    else:
        yield "document", 1, doc


def _json_error(exc: ValueError | RecursionError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)


def refuse_error(path: Path, mode: Mode, slot: int, obj: dict[str, Any]) -> DataError:
    """The error for an error response saved by mistake (result ≠ 1), naming its error_msg."""
    message = obj.get("error_msg") or obj.get("msg") or obj.get("sub_msg") or ""
    code = f", code {obj['code']!r}" if obj.get("code") not in (None, "") else ""
    where = _where(mode, slot)
    return DataError(
        f"{path}{': ' + where if where else ''}: an error response of the open platform, not data "
        f"(result {obj.get('result')!r}{code}, error_msg {str(message)!r}); nothing was loaded",
        hint="request that page again and save its successful response (result 1), or remove this one",
    )


def _unknown(obj: dict[str, Any]) -> str:
    data = obj.get("data")
    keys = ", ".join(list(data)[:8]) if isinstance(data, dict) else type(data).__name__
    return (
        f"an open-platform response of an unknown method (data holds: {keys or 'nothing'}); "
        f"chuanliu reads {KNOWN}"
    )


@dataclass(frozen=True)
class Sniffed:
    """What a file of responses holds: its method, or why it is not read (an unknown method)."""

    method: Method | None
    why: str
    mode: Mode = "document"


def sniff(path: Path, encoding: str | None = None) -> Sniffed | None:
    """The method of a file of saved responses, from its first response; None when the file is not one (not
    JSON, or JSON rows that are not an envelope: flat JSON lines). An error response raises DataError."""
    if not looks_like_json(path):
        return None
    try:
        mode, slot, obj = next(responses(path, encoding))
    except (DataError, StopIteration):
        return None  # not readable JSON: the other readers say why
    if not is_envelope(obj):
        return None
    if not _ok(obj):
        raise refuse_error(path, mode, slot, obj)
    method = method_of(obj.get("data"))
    if method is None:
        return Sniffed(None, _unknown(obj), mode)
    return Sniffed(method, f"open-platform response {method.name}", mode)


def open_responses(path: Path, encoding: str | None = None) -> FileReader:
    """A reader of a file of responses: the canonical columns of its method, rows in file order."""
    enc = _encoding(path, encoding)
    found = sniff(path, enc)
    if found is None:
        raise DataError(f"{path}: not an open-platform response")
    if found.method is None:
        raise DataError(f"{path}: {found.why}", hint="load only the responses of those methods")
    method = found.method
    mode: list[Mode] = [found.mode]
    fr = FileReader(
        path,
        "openplatform",
        method.columns,
        "row",
        encoding=enc,
        method=method.name,
        scale={c: 0.01 for c in method.amounts},
    )

    def locate(n: int, reason: str) -> str:
        slot, index = divmod(n, PER_RESPONSE)
        element = f"data.{method.list_key}[{index - 1}]"
        column = re.match(r"column (\w+):", reason)
        field = method.fields.get(column.group(1)) if column else None
        if column is None and (named := _FIELD.match(reason)) is not None:
            field = named.group(1)  # a reason of this module names the field itself
        if field is not None:
            element += "." + field.split(" ")[0]
        return _join(_where(mode[0], slot), element)

    def batches(selected: list[int]) -> Iterator[Batch]:
        return _batches(path, enc, method, selected, fr.notes, mode)

    fr.locate = locate
    fr._open = batches
    return fr


#: The field a reason of this module starts with (`orderRefundList[1].refundFee: ...`).
_FIELD = re.compile(r"([A-Za-z]\w*(?:\[\d+\])?(?:\.\w+(?:\[\d+\])?)*)(?::| is| holds)")


def _batches(
    path: Path, enc: str, method: Method, selected: list[int], notes: list[str], mode_out: list[Mode]
) -> Iterator[Batch]:
    rows: list[list[str]] = []
    lines: list[int] = []
    raws: list[str] = []
    shape: dict[int, str] = {}
    headers = method.columns
    for mode, slot, obj in responses(path, enc):
        mode_out[0] = mode
        where = _where(mode, slot)
        if not is_envelope(obj):
            raise DataError(
                f"{path}: {where or 'the document'}: not an open-platform response (no result and data); "
                "one file holds the responses of one method",
            )
        if not _ok(obj):
            raise refuse_error(path, mode, slot, obj)
        data = obj.get("data")
        found = method_of(data)
        if found is not method:
            what = found.name if found else _unknown(obj)
            raise DataError(
                f"{path}: {where}: {what}, after responses of {method.name}; one file holds one method",
                hint="save the responses of each method in files of their own",
            )
        assert isinstance(data, dict)
        elements = data.get(method.list_key) or []
        if not isinstance(elements, list):
            raise DataError(f"{path}: {_join(where, 'data.' + method.list_key)}: not a JSON array")
        if len(elements) >= PER_RESPONSE:
            raise DataError(f"{path}: {where}: more than {PER_RESPONSE - 1} rows in one response")
        for i, el in enumerate(elements):
            number = slot * PER_RESPONSE + i + 1
            flat = method.flatten(el) if isinstance(el, dict) else Flat({}, "not a JSON object")
            if flat.error is not None:
                shape[len(rows)] = flat.error
            rows.append(["" if (v := flat.cells.get(h)) is None else v for h in headers])
            lines.append(number)
            raws.append(json.dumps(el, ensure_ascii=False, default=_as_written))
            if len(rows) >= BATCH_ROWS:
                yield _batch(rows, lines, selected, shape, raws)
                rows, lines, raws, shape = [], [], [], {}
    if rows:
        yield _batch(rows, lines, selected, shape, raws)


def _batch(
    rows: list[list[str]], lines: list[int], selected: list[int], shape: dict[int, str], raws: list[str]
) -> Batch:
    batch = text_batch(rows, lines, selected, shape)
    batch.raws = raws
    return batch
