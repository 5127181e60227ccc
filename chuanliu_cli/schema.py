"""Canonical tables, column types, aliases and value maps of the data contract (SPEC §2): data, not logic."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ColumnType = Literal["text", "enum", "timestamp", "amount", "integer", "number", "score", "boolean"]

#: DuckDB storage type of each column type.
SQL_TYPES: dict[ColumnType, str] = {
    "text": "VARCHAR",
    "enum": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "amount": "DECIMAL(14,2)",
    "integer": "BIGINT",
    "number": "DOUBLE",
    "score": "TINYINT",
    "boolean": "BOOLEAN",
}


@dataclass(frozen=True)
class Column:
    """One canonical column: its type, whether a file must have it, and the headers that map to it."""

    name: str
    type: ColumnType
    required: bool = False
    aliases: tuple[str, ...] = ()
    values: dict[str, str] = field(default_factory=dict)  # enum/boolean: raw value -> canonical value
    default: str | None = None  # canonical value used when the column is absent or the cell is empty
    minimum: float | None = None
    maximum: float | None = None
    derived: bool = False  # computed by the loader, never read from a file


@dataclass(frozen=True)
class Table:
    """One canonical table, its primary key and the column holding each row's time."""

    name: str
    key: str
    columns: tuple[Column, ...]
    time_column: str | None
    file_prefixes: tuple[str, ...]
    optional: bool = False

    def column(self, name: str) -> Column:
        """The column called `name`; KeyError if there is none."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        """Every column name, derived ones included, in storage order."""
        return tuple(c.name for c in self.columns)


ORDER_STATUS = {
    "pending": "pending",
    "paid": "paid",
    "shipped": "shipped",
    "received": "received",
    "completed": "completed",
    "closed": "closed",
    "refunded": "refunded",
    "待付款": "pending",
    "待发货": "paid",
    "已付款": "paid",
    "已发货": "shipped",
    "待收货": "shipped",
    "已收货": "received",
    "交易成功": "completed",
    "已结算": "completed",
    "已完成": "completed",
    "已关闭": "closed",
    "已失效": "closed",
    "交易关闭": "closed",
    "退款成功": "refunded",
    "已退款": "refunded",
    # Kuaishou open-platform order status codes
    "10": "pending",
    "30": "paid",
    "40": "shipped",
    "50": "received",
    "70": "completed",
    "80": "closed",
}

SALE_MODE = {
    "self": "self",
    "distribution": "distribution",
    "自营成交": "self",
    "自营": "self",
    "自卖": "self",
    "达人合作成交": "distribution",
    "达人合作": "distribution",
    "超级链接成交": "distribution",
    "分销": "distribution",
    "普通订单": "self",
    "分销订单": "distribution",
    "1": "self",
    "2": "distribution",
}

CARRIER = {
    "live": "live",
    "video": "video",
    "card": "card",
    "other": "other",
    "直播间": "live",
    "直播间成交": "live",
    "直播": "live",
    "短视频": "video",
    "短视频成交": "video",
    "商品卡": "card",
    "商品卡成交": "card",
    "其他": "other",
    "其他成交": "other",
}

HOST_TYPE = {
    "self": "self",
    "promoter": "promoter",
    "经营号": "self",
    "店铺号": "self",
    "自播": "self",
    "商家自播": "self",
    "合作达人": "promoter",
    "达人": "promoter",
    "达人直播": "promoter",
}

#: The yes/no values every boolean column reads.
_YES_NO = {
    "true": "true",
    "false": "false",
    "yes": "true",
    "no": "false",
    "1": "true",
    "0": "false",
    "是": "true",
    "否": "false",
}

COMPLAINT = {
    **_YES_NO,
    "通过": "true",
    "投诉成立": "true",
    "暂无投诉": "false",
    "无": "false",
    "驳回": "false",
    "处理中": "false",
    "撤销": "false",
}

#: A review's cheat/invalid marker (SPEC §11): the open platform's cheatStatus (0 is none) or an export's
#: 是否作弊 / 无效评价 column; a marked review is `suspicious`.
CHEAT = {
    **_YES_NO,
    "作弊": "true",
    "无效": "true",
    "无效评价": "true",
    "正常": "false",
    "有效": "false",
}

#: Refund reasons that make a refund a quality return (品质退货), canonical lower-case English included.
QUALITY_REFUND_REASONS: frozenset[str] = frozenset(
    {
        "与商品描述不符",
        "质量问题",
        "卖家发错货",
        "三无产品",
        "假冒产品",
        "not as described",
        "quality issue",
        "quality problem",
        "wrong item sent",
        "no brand or license",
        "counterfeit",
    }
)

#: Headers that say their bare numbers are seconds, not minutes (`4800` under 直播时长(秒) is 80 minutes).
#: They are aliases of the column like any other, listed last (a minutes header of the same file wins).
SECONDS_ALIASES: dict[str, tuple[str, ...]] = {
    "duration_minutes": (
        "直播时长（秒）",
        "直播时长(秒)",
        "时长（秒）",
        "时长(秒)",
        "duration_seconds",
    ),
}

ORDERS = Table(
    name="orders",
    key="order_id",
    time_column="order_time",
    file_prefixes=("orders", "order", "订单"),
    columns=(
        Column("order_id", "text", True, ("订单号", "订单编号", "快手订单编号", "订单ID", "orderId", "oid")),
        Column("shop_id", "text", True, ("店铺ID", "商家ID", "sellerId", "shopId")),
        Column("buyer_id", "text", True, ("买家ID", "用户ID", "buyerId", "buyerOpenId")),
        Column("item_id", "text", False, ("商品ID", "productId", "itemId")),
        Column("item_name", "text", False, ("商品名称", "订单商品名称", "productName", "itemTitle")),
        Column("promoter_id", "text", False, ("达人ID", "分销商ID", "推广者ID", "distributorId", "talentId")),
        Column("sale_mode", "enum", True, ("售卖方式", "订单类型", "cpsType"), SALE_MODE),
        Column("carrier", "enum", False, ("售卖载体", "成交载体"), CARRIER, default="other"),
        Column(
            "order_time",
            "timestamp",
            True,
            ("下单时间", "支付时间", "创建时间", "orderCreateTime", "createTime", "payTime"),
        ),
        Column(
            "paid_amount",
            "amount",
            True,
            ("实付金额", "实付款", "支付金额", "商家实收", "成交金额", "actualPayAmount", "payAmount"),
            minimum=0,
        ),
        Column(
            "quantity",
            "integer",
            False,
            ("商品数量", "购买数量", "productNum", "num"),
            default="1",
            minimum=1,
        ),
        Column("status", "enum", True, ("订单状态", "交易状态", "orderStatus"), ORDER_STATUS),
        Column("refund_amount", "amount", False, ("退款金额", "refundAmount"), minimum=0),
        Column("refund_reason", "text", False, ("退款原因", "售后原因", "refundReason")),
        Column("commission", "amount", False, ("预估佣金", "结算佣金", "commissionAmount"), minimum=0),
        # Derived at load time so that rulesets and reports agree on one definition (SPEC §2).
        Column("net_amount", "amount", derived=True),
        Column("quality_return", "boolean", derived=True),
        # the promoter scorecard's display name (added in schema version 2, hence after the derived columns)
        Column("promoter_name", "text", False, ("达人昵称", "达人名称", "分销商名称", "distributorName")),
    ),
)

REVIEWS = Table(
    name="reviews",
    key="review_id",
    time_column="review_time",
    file_prefixes=("reviews", "review", "comments", "评价"),
    columns=(
        Column("review_id", "text", True, ("评价ID", "commentId")),
        Column("order_id", "text", True, ("订单号", "订单编号", "快手订单编号", "orderId", "oid")),
        Column("shop_id", "text", True, ("店铺ID", "商家ID", "sellerId", "shopId")),
        Column("item_id", "text", False, ("商品ID", "productId", "itemId")),
        Column("promoter_id", "text", False, ("达人ID", "distributorId")),
        Column(
            "quality_score", "score", True, ("商品质量评分", "商品评分", "qualityScore"), minimum=1, maximum=5
        ),
        Column("logistics_score", "score", False, ("物流评分", "logisticsScore"), minimum=1, maximum=5),
        Column("service_score", "score", False, ("服务评分", "serviceScore"), minimum=1, maximum=5),
        Column("review_time", "timestamp", True, ("评价时间", "commentTime", "createTime")),
        Column("complaint", "boolean", False, ("是否投诉", "投诉状态", "complainStatus"), COMPLAINT, "false"),
        # the export's cheat/invalid marker (added in schema version 6, hence last)
        Column("cheat", "boolean", False, ("是否作弊", "作弊状态", "cheatStatus"), CHEAT, "false"),
    ),
)

LIVESTREAMS = Table(
    name="livestreams",
    key="live_id",
    time_column="start_time",
    file_prefixes=("livestreams", "livestream", "lives", "直播"),
    columns=(
        Column("live_id", "text", True, ("直播ID", "场次ID", "liveId")),
        Column("shop_id", "text", True, ("店铺ID", "商家ID", "sellerId", "shopId")),
        Column("host_type", "enum", True, ("账号类型", "主播类型"), HOST_TYPE),
        Column("promoter_id", "text", False, ("达人ID", "快手ID", "distributorId")),
        Column("start_time", "timestamp", True, ("开播时间", "开始时间", "startTime")),
        Column("end_time", "timestamp", False, ("下播时间", "结束时间", "endTime")),
        Column(
            "duration_minutes",
            "number",
            False,
            ("直播时长（分钟）", "直播时长(分钟)", "直播时长", *SECONDS_ALIASES["duration_minutes"]),
            minimum=0,
        ),
        Column("viewers", "integer", False, ("累计观看人数", "观看人数"), minimum=0),
        Column("new_followers", "integer", False, ("涨粉数", "转粉数", "新增粉丝"), minimum=0),
        Column("gmv", "amount", False, ("成交金额", "直播成交金额"), minimum=0),
    ),
)

SHOPS = Table(
    name="shops",
    key="shop_id",
    time_column=None,
    file_prefixes=("shops", "shop", "店铺"),
    optional=True,
    columns=(
        Column("shop_id", "text", True, ("店铺ID", "商家ID", "sellerId", "shopId")),
        Column("shop_name", "text", False, ("店铺名称", "商家名称", "shopName")),
        Column("category", "text", False, ("类目", "主营类目", "category")),
        Column("group_id", "text", False, ("主体ID", "groupId")),
    ),
)

TABLES: dict[str, Table] = {t.name: t for t in (ORDERS, REVIEWS, LIVESTREAMS, SHOPS)}
#: Columns the database keeps on orders beside the canonical ones (schema version 6): each order's integrity
#: flags, set by every load (store/brushing.py) and read by queries compiled with `marks` (rules/integrity).
BRUSHING_MARK = "brushing_mark"
SELF_PURCHASE_MARK = "self_purchase_mark"
REQUIRED_TABLES: tuple[str, ...] = ("orders", "reviews", "livestreams")


def table_ddl(table: Table, name: str | None = None) -> str:
    """`CREATE TABLE` for a canonical table (identifiers are fixed names, not input).

    The primary key `table.key` is kept unique by the loader's upsert (and checked by the tests), not by a
    DuckDB constraint: a PRIMARY KEY builds an in-memory ART index that made bulk loads ~10× slower and
    needs memory proportional to the table, which a 100-million-order store under 4 GB cannot afford.
    """
    cols = ",\n    ".join(f'"{c.name}" {SQL_TYPES[c.type]}' for c in table.columns)
    target = name or table.name
    return f'CREATE TABLE IF NOT EXISTS "{target}" (\n    {cols}\n)'


def vocabulary(table: str) -> dict[str, frozenset[str]]:
    """The enumerated columns of `table` and the canonical values they hold after loading.

    A `--mapping` value map only maps raw values onto these (the mapping loader refuses any other target),
    so they are every value a rule can meaningfully compare such a column with.
    """
    return {
        c.name: frozenset(c.values.values()) for c in TABLES[table].columns if c.type == "enum" and c.values
    }
