"""The synthetic data generator behind `chuanliu sample` (SPEC §6): four export tables with realistic shapes.

The dataset is a pure function of the options: a seeded planning generator draws every merchant's
parameters, then one seeded numpy generator per merchant draws its rows (so the chunking never changes a
row); no wall clock, no set iteration order, and file writers with fixed settings (Parquet compression
and row groups, XLSX document dates). Generation is
vectorized per merchant and written in chunks of whole merchants, so ten million orders take minutes and
bounded memory.

The first 60 merchants follow a fixed cast of archetypes (stars, merchants failing exactly one gate, a lapsed
merchant failing several, small new stores with too few reviews, a shop with no activity at all, and
regulars of graded strength) so that the default sample exercises every gate and tier of the default
ruleset; larger samples repeat the cast with jitter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from chuanliu_cli.errors import UsageError
from chuanliu_cli.periods import Period, parse_period
from chuanliu_cli.schema import TABLES, Table

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import polars as pl

    Array = npt.NDArray[Any]
    Rng = np.random.Generator

Headers = Literal["en", "zh"]
Encoding = Literal["utf-8", "gb18030"]
Format = Literal["csv", "parquet", "xlsx"]

#: Output file stems per header language; the loader recognises both (SPEC §3 `load --dir`).
FILE_STEMS: dict[Headers, dict[str, str]] = {
    "en": {"orders": "orders", "reviews": "reviews", "livestreams": "livestreams", "shops": "shops"},
    "zh": {"orders": "订单", "reviews": "评价", "livestreams": "直播", "shops": "店铺"},
}

#: Canonical enumeration values, in the code order used by the generator's integer arrays.
SALE_MODES = ("self", "distribution")
CARRIERS = ("live", "video", "card", "other")
STATUSES = ("pending", "paid", "shipped", "received", "completed", "closed", "refunded")
HOST_TYPES = ("self", "promoter")
COMPLAINTS = ("false", "true")

#: The Chinese value written for each canonical value under `--headers zh`. Chosen to look like the
#: merchant backend's exports; each one maps back through the schema's value maps (a test checks it).
ZH_VALUES: dict[str, dict[str, str]] = {
    "sale_mode": {"self": "自营成交", "distribution": "达人合作成交"},
    "carrier": {"live": "直播间成交", "video": "短视频成交", "card": "商品卡成交", "other": "其他成交"},
    "status": {
        "pending": "待付款",
        "paid": "待发货",
        "shipped": "已发货",
        "received": "已收货",
        "completed": "交易成功",
        "closed": "已关闭",
        "refunded": "退款成功",
    },
    "host_type": {"self": "店铺号", "promoter": "合作达人"},
    "complaint": {"true": "通过", "false": "暂无投诉"},
}

QUALITY_REASONS = ("与商品描述不符", "质量问题", "卖家发错货", "三无产品", "假冒产品")
OTHER_REASONS = ("不想要了", "拍错了/多拍了", "七天无理由退货", "尺码不合适", "协商一致退款", "物流太慢")
#: Relative frequency of each quality reason (counterfeit and unlicensed goods are rare).
_QUALITY_REASON_WEIGHTS = (0.35, 0.35, 0.15, 0.1, 0.05)

# (name, typical price in yuan, product nouns). Prices differ by two orders of magnitude between
# categories, which is what makes merchant GMV heavy-tailed even at equal order counts.
CATEGORIES: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("女装", 89.0, ("纯棉短袖T恤", "冰丝阔腿裤", "法式碎花连衣裙", "针织开衫", "高腰牛仔裤", "防晒衣")),
    ("美妆护肤", 79.0, ("玻尿酸补水面膜", "雾面口红", "氨基酸洗面奶", "素颜霜", "眼霜", "防晒喷雾")),
    (
        "食品饮料",
        45.0,
        ("每日坚果礼盒", "柳州螺蛳粉", "手撕牛肉干", "云南小粒咖啡", "低糖饼干", "辣条大礼包"),
    ),
    ("珠宝文玩", 699.0, ("和田玉手镯", "淡水珍珠项链", "黄金转运珠", "翡翠吊坠", "南红手串", "银手镯")),
    ("家居日用", 59.0, ("纯棉四件套", "抽纸整箱", "收纳箱", "不粘锅", "洗衣凝珠", "乳胶枕")),
    ("母婴用品", 99.0, ("婴儿纸尿裤", "儿童保温杯", "宝宝辅食米粉", "婴儿湿巾", "儿童防晒衣", "奶瓶")),
    ("数码家电", 299.0, ("蓝牙耳机", "充电宝", "电动牙刷", "吹风机", "破壁机", "智能手表")),
    ("鞋靴箱包", 159.0, ("老爹鞋", "帆布包", "真皮小白鞋", "双肩包", "雪地靴", "拖鞋")),
    ("生鲜水果", 39.0, ("赣南脐橙", "阳光玫瑰葡萄", "海南芒果", "烟台苹果", "东北大米", "阳澄湖大闸蟹")),
    ("滋补保健", 259.0, ("即食燕窝", "阿胶糕", "枸杞原浆", "人参片", "蜂蜜", "灵芝孢子粉")),
)
_STAR_CATEGORIES = (3, 9)  # stars sell expensive goods: few orders, large GMV

_BRAND_HEADS = tuple("云金山禾锦悦良品鲜美优佳恒福瑞安康乐新盛华兴顺泰和宜嘉欣雅银")
_BRAND_TAILS = tuple("源坊记堂家居屋阁轩园庄号林町集选舍岚晴川峰溪月星辰语然漫湾谷")
_SHOP_SUFFIXES = ("旗舰店", "专营店", "官方店", "工厂店", "严选店", "小店")
_ITEM_VARIANTS = ("", "加量装", "礼盒装", "2件装", "新款", "直播专享")

# Relative order frequency per hour of day outside live sessions (evening peak, quiet small hours).
_HOUR_WEIGHTS = (
    1.0, 0.6, 0.4, 0.3, 0.3, 0.4, 0.8, 1.5, 2.0, 2.5, 3.0, 3.2,
    3.5, 3.0, 3.0, 3.0, 3.2, 3.5, 4.0, 5.0, 6.0, 6.5, 5.5, 3.0,
)  # fmt: skip

# Review score distributions (5 stars first) of a flawless and of a very bad merchant; a merchant's
# distribution is the mix given by its badness in [0, 1].
_GOOD_SCORES = (0.86, 0.11, 0.02, 0.005, 0.005)
_BAD_SCORES = (0.22, 0.18, 0.22, 0.16, 0.22)

#: The cast of the first 60 merchants: (archetype, strength in [0, 1]). Larger samples cycle through it.
#: `regular` strengths are graded so that the default ruleset's tiers S/A/B/C and "below C" are all used.
_CAST: tuple[tuple[str, float], ...] = (
    ("star", 1.0),  # the flagship; also carries the boundary rows (first second / last second)
    ("star", 0.95),
    ("no_distribution", 0.55),  # fails distribution_history only
    ("sporadic_live", 0.55),  # 5 live days a month plus short test streams: fails stable_live only
    ("two_weeks_live", 0.6),  # 11 live days inside two ISO weeks: fails stable_live (live_weeks) only
    ("poor_experience", 0.6),  # many bad reviews, complaints and quality returns: fails store_experience
    ("no_live_sales", 0.55),  # every live-room order of the end month refunded or closed: fails active
    ("lapsed", 0.35),  # stopped before the end month, never distributed: fails three gates
    ("card_only", 0.3),  # sells by product card and promoters, never live: fails stable_live and active
    ("short_sessions", 0.4),  # streams often but mostly under 30 minutes: fails stable_live
    ("new_store", 0.12),  # few orders, < 20 reviews: store_experience NULL, eligible, low score
    ("new_store", 0.18),
    *(("regular", round((j + 0.5) / 47, 4)) for j in range(47)),
    ("closed_store", 0.0),  # in shops only, no activity: not part of any scorecard population
)


#: Archetypes meant to fail exactly one gate of the default ruleset (poor_experience is the store one).
_ONE_GATE_KINDS = frozenset(
    {"no_distribution", "sporadic_live", "two_weeks_live", "no_live_sales", "short_sessions"}
)


_BAD_PROMOTER = -1  # index of the promoter with bad reviews (the least popular one)


@dataclass(frozen=True)
class _Month:
    """One calendar month of the dataset as epoch seconds of naive local time."""

    period: Period
    start: int
    end: int

    @property
    def days(self) -> int:
        return (self.end - self.start) // 86400


@dataclass(frozen=True)
class _Merchant:
    """Everything that shapes one merchant's rows; drawn once, up front, from the planning generator."""

    index: int
    kind: str
    strength: float
    shop_id: str
    shop_name: str
    category: int
    group_id: str
    brand: str
    self_orders: tuple[float, ...]  # expected self orders per month, oldest first
    dist_orders: tuple[float, ...]  # expected distribution orders per month
    live_share: float  # share of self orders placed in the live room when the merchant streams
    live_days: tuple[int, ...]  # days with a self session >= 30 min, per month
    two_weeks: bool  # squeeze the end month's live days into two ISO weeks
    short_sessions: tuple[int, ...]  # extra self sessions under 30 minutes, per month
    session_minutes: float  # median self session length
    followers_per_hour: float
    traffic: float  # viewers per live minute
    promoters: tuple[int, ...]  # promoter indices this merchant works with
    promoter_weights: tuple[float, ...]
    conversion: float  # chance a self order comes from an earlier distribution buyer
    review_rate: float
    badness: float  # 0 = flawless reviews, 1 = very bad
    complaint_rate: float
    refund_rate: float
    quality_share: float  # share of refunds with a quality reason
    void_live_end: bool  # every live-room order of the end month refunded or closed
    item_prices: tuple[float, ...]  # yuan, most popular item first
    item_offset: int  # index of the first item in the dataset's item list


@dataclass(frozen=True)
class _Promoter:
    """A 达人: how popular they are with merchants, and how badly their buyers rate what they bought."""

    promoter_id: str
    popularity: float
    badness: float


@dataclass(frozen=True)
class _Plan:
    """The whole dataset's skeleton: months, merchants, promoters, per-cell order counts, id offsets."""

    months: tuple[_Month, ...]
    merchants: tuple[_Merchant, ...]
    promoters: tuple[_Promoter, ...]
    self_counts: Array  # (merchants, months) int64
    dist_counts: Array
    buyer_offsets: Array  # first local buyer index of each merchant in the global buyer space
    shared_buyers: int  # platform-wide buyers who shop at many merchants
    item_names: tuple[str, ...]
    seed: int


def generate_sample(
    outdir: Path,
    merchants: int = 60,
    months: int = 3,
    end: str = "2023-05",
    seed: int = 42,
    headers: Headers = "en",
    encoding: Encoding = "utf-8",
    fmt: Format = "csv",
    orders: int | None = None,
) -> dict[str, Path]:
    """Write a deterministic synthetic dataset (orders, reviews, livestreams, shops) into `outdir`.

    The data covers the `months` calendar months ending with `end` (naive Asia/Shanghai times). With
    `orders`, the order count is exactly that number; reviews follow at about 0.19 per order, while live
    sessions follow the merchant count (about 27 self and promoter sessions per merchant and month), so
    the benchmark's 10M orders / 2M reviews / 200k sessions is `merchants=2500, orders=10_000_000`.
    `headers="zh"` writes the Chinese headers and values of the merchant backend and Chinese file names;
    `encoding` applies to CSV only. The same options always give byte-identical files. Returns table
    name → written file.
    """
    if merchants < 1:
        raise UsageError(f"--merchants must be at least 1, got {merchants}")
    if months < 1:
        raise UsageError(f"--months must be at least 1, got {months}")
    if orders is not None and orders < 0:
        raise UsageError(f"--orders must not be negative, got {orders}")
    if headers not in FILE_STEMS:
        raise UsageError(f"unknown --headers {headers!r}", hint="use en or zh")
    if encoding not in ("utf-8", "gb18030"):
        raise UsageError(f"unknown --encoding {encoding!r}", hint="use utf-8 or gb18030")
    if fmt not in ("csv", "parquet", "xlsx"):
        raise UsageError(f"unknown --format {fmt!r}", hint="use csv, parquet or xlsx")
    end_period = parse_period(end)
    month_list = tuple(_month(end_period.shift(k - months + 1)) for k in range(months))
    plan = _plan(merchants, month_list, seed, orders)
    if fmt == "xlsx" and int(plan.self_counts.sum() + plan.dist_counts.sum()) + 3 >= _XLSX_MAX_ROWS:
        raise UsageError(
            "an XLSX sheet holds at most 1,048,575 data rows; this sample has more orders",
            hint="use --format csv or --format parquet for large samples",
        )
    outdir.mkdir(parents=True, exist_ok=True)
    paths = {name: outdir / f"{FILE_STEMS[headers][name]}.{fmt}" for name in TABLES}
    writers = {
        name: _open_writer(paths[name], TABLES[name], headers, encoding, fmt, end_period.end)
        for name in TABLES
    }
    try:
        _write_all(plan, writers, headers)
    finally:
        for writer in writers.values():
            writer.close()
    return paths


# --------------------------------------------------------------------------------------------------
# Planning: who the merchants and promoters are and how many orders each month-cell gets.


def _month(period: Period) -> _Month:
    return _Month(period, _epoch(period.start), _epoch(period.end))


def _epoch(day: date) -> int:
    """Seconds since 1970-01-01 of local midnight of `day`; times stay naive local throughout."""
    return (day - date(1970, 1, 1)).days * 86400


def _plan(n: int, months: tuple[_Month, ...], seed: int, target: int | None) -> _Plan:
    import numpy as np

    rng = np.random.default_rng([seed, 0])
    n_promoters = max(12, n)
    promoters = _plan_promoters(n_promoters, rng)
    popularity = np.array([p.popularity for p in promoters])
    merchants: list[_Merchant] = []
    item_names: list[str] = []
    for i in range(n):
        kind, strength = _CAST[i % len(_CAST)]
        if i >= len(_CAST) and kind == "regular":
            strength = float(np.clip(strength + rng.normal(0, 0.05), 0.0, 1.0))
        merchant = _plan_merchant(i, kind, strength, len(months), len(item_names), popularity, rng)
        merchants.append(merchant)
        nouns = CATEGORIES[merchant.category][2]
        for j in range(len(merchant.item_prices)):
            variant = _ITEM_VARIANTS[(i + j) % len(_ITEM_VARIANTS)]
            item_names.append(f"{merchant.brand}{nouns[j % len(nouns)]}{variant}")
    expected = np.array([m.self_orders for m in merchants] + [m.dist_orders for m in merchants])
    # The flagship's boundary rows come on top of the drawn orders; `--orders` counts them too.
    total = round(float(expected.sum())) if target is None else max(0, target - _anchor_count(months))
    counts = _largest_remainder(expected.ravel(), total).reshape(expected.shape)
    self_counts, dist_counts = counts[:n], counts[n:]
    # Each merchant's local buyers: distribution buyers first, then self-only buyers (see _buyers).
    sizes = np.ceil(0.85 * dist_counts.sum(axis=1)) + np.ceil(0.75 * self_counts.sum(axis=1)) + 2
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    shared = max(50, int(counts.sum()) // 50)
    return _Plan(
        months,
        tuple(merchants),
        promoters,
        self_counts,
        dist_counts,
        offsets,
        shared,
        tuple(item_names),
        seed,
    )


def _plan_promoters(n: int, rng: Rng) -> tuple[_Promoter, ...]:
    import numpy as np

    # Zipf-like popularity: a few promoters carry for many merchants, most for one or two.
    popularity = 1.0 / (np.arange(n) + 2.0) ** 0.9
    badness = rng.uniform(0.0, 0.02, n)
    # The last promoter over-promises: its buyers rate badly, which sinks its 带货口碑分 below the
    # reputation gate. It works only for the poor_experience merchants (see _plan_merchant), so that it
    # collects enough reviews to be scored and spoils no other merchant's store experience.
    badness[_BAD_PROMOTER] = 0.6
    popularity[_BAD_PROMOTER] = 0.0
    ids = _scramble(np.arange(n, dtype=np.int64), *_PROMOTER_IDS)
    return tuple(_Promoter(f"dr{ids[p]:08d}", float(popularity[p]), float(badness[p])) for p in range(n))


def _plan_merchant(
    i: int, kind: str, s: float, n_months: int, item_offset: int, popularity: Array, rng: Rng
) -> _Merchant:
    """Turn an archetype and a strength into concrete parameters (noise drawn from the planning RNG)."""
    import numpy as np

    noise = float(rng.lognormal(0.0, 0.25))
    star = kind == "star"
    category = _STAR_CATEGORIES[i % 2] if star else int(rng.choice([c for c in range(10) if c != 3]))
    # Self orders in the end month: 10 (weak) to 250 (strong) at typical prices; stars sell more.
    end_self = (180.0 + 90 * s if star else 9.0 * 20.0**s) * noise
    growth = float(np.clip(-0.15 + 1.0 * s + rng.normal(0, 0.12), -0.5, 1.3))
    if star:
        growth = 0.9 + 0.3 * s
    self_orders = [end_self / (1.0 + growth) ** (n_months - 1 - k) for k in range(n_months)]
    dist_ratio = (1.4 if star else 0.2 + 1.2 * s) * float(rng.lognormal(0.0, 0.2))
    dist_orders = [x * dist_ratio for x in self_orders]
    base_days = 25 if star else round(7 + 19 * s + rng.normal(0, 1.5))
    live_days = [int(np.clip(base_days + rng.integers(-2, 3), 0, 27)) for _ in range(n_months)]
    short = [int(rng.integers(0, 3)) for _ in range(n_months)]
    live_share = float(rng.uniform(0.55, 0.8))
    n_prom = max(1, round(1 + 24 * s**2)) if not star else 28 + i % 5
    badness = float(rng.uniform(0.0, 0.03))
    complaint_rate = float(rng.uniform(0.0, 0.004))
    refund_rate = float(rng.uniform(0.05, 0.09))
    quality_share = float(rng.uniform(0.1, 0.25))
    review_rate = float(rng.uniform(0.18, 0.28))
    conversion = 0.6 if star else 0.05 + 0.45 * s
    void_live_end = two_weeks = False
    last = n_months - 1
    if kind in _ONE_GATE_KINDS:
        # Exemplary apart from their one flaw, so that they fail exactly one gate.
        badness, complaint_rate, refund_rate, quality_share = 0.0, 0.0, 0.05, 0.05
    if kind == "no_distribution":
        dist_orders = [0.0] * n_months
    elif kind == "sporadic_live":
        live_days = [5] * n_months
        short = [5] * n_months
    elif kind == "two_weeks_live":
        two_weeks = True
        live_days[last] = 11
    elif kind == "poor_experience":
        badness, complaint_rate, refund_rate, quality_share, review_rate = 0.7, 0.06, 0.14, 0.6, 0.3
    elif kind == "no_live_sales":
        void_live_end = True
    elif kind == "lapsed":
        dist_orders = [0.0] * n_months
        self_orders[last] = 0.0
        live_days[last] = 0
        short[last] = 0
    elif kind == "card_only":
        live_share = 0.0
        live_days = [0] * n_months
        short = [0] * n_months
    elif kind == "short_sessions":
        live_days = [6] * n_months
        short = [14] * n_months
    elif kind == "new_store":
        self_orders = [0.0] * (n_months - 1) + [14.0]
        dist_orders = [0.0] * (n_months - 1) + [6.0]
        live_days = [0] * (n_months - 1) + [10]
        short = [0] * n_months
    elif kind == "closed_store":
        self_orders = [0.0] * n_months
        dist_orders = [0.0] * n_months
        live_days = [0] * n_months
        short = [0] * n_months
    if kind == "no_distribution" or kind == "lapsed" or kind == "closed_store":
        promoters: tuple[int, ...] = ()
    elif kind == "poor_experience":
        promoters = (len(popularity) + _BAD_PROMOTER,)
    else:
        n_prom = min(n_prom, int(np.count_nonzero(popularity)))  # never the bad promoter
        p = popularity / popularity.sum()
        promoters = tuple(int(x) for x in rng.choice(len(popularity), n_prom, replace=False, p=p))
    weights = tuple(float(w) for w in rng.lognormal(0.0, 0.8, len(promoters)))
    n_items = 3 + round(12 * s) + (8 if star else 0)
    item_prices = CATEGORIES[category][1] * rng.lognormal(0.0, 0.55, n_items)
    brand = _BRAND_HEADS[i % 30] + _BRAND_TAILS[(i // 30 + i) % 30]
    if i >= 900:  # beyond the 900 two-character brands, number them to keep shop names unique
        brand += str(i // 900)
    cat_name = CATEGORIES[category][0]
    # Every tenth shop opens a second and third shop under the same owner (多店多号).
    group_no = i - i % 10 if i % 10 in (1, 2) else i
    return _Merchant(
        index=i,
        kind=kind,
        strength=s,
        shop_id=f"ks{700001 + i}",
        shop_name=f"{brand}{cat_name}{_SHOP_SUFFIXES[i % len(_SHOP_SUFFIXES)]}",
        category=category,
        group_id=f"zt{880001 + group_no}",
        brand=brand,
        self_orders=tuple(self_orders),
        dist_orders=tuple(dist_orders),
        live_share=live_share,
        live_days=tuple(live_days),
        two_weeks=two_weeks,
        short_sessions=tuple(short),
        session_minutes=(200.0 if star else 60.0 + 150.0 * s),
        followers_per_hour=(130.0 if star else 10.0 + 90.0 * s),
        traffic=20.0 + 300.0 * s,
        promoters=promoters,
        promoter_weights=weights,
        conversion=conversion,
        review_rate=review_rate,
        badness=badness,
        complaint_rate=complaint_rate,
        refund_rate=refund_rate,
        quality_share=quality_share,
        void_live_end=void_live_end,
        item_prices=tuple(float(x) for x in item_prices),
        item_offset=item_offset,
    )


def _largest_remainder(expected: Array, total: int) -> Array:
    """Integers proportional to `expected` summing exactly to `total` (ties to the lower index)."""
    import numpy as np

    weight = float(expected.sum())
    if weight <= 0 or total <= 0:
        return np.zeros(expected.shape, dtype=np.int64)
    exact = expected * (total / weight)
    counts = np.floor(exact).astype(np.int64)
    left = total - int(counts.sum())
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:left]] += 1
    return counts


def _scramble(seq: Array, digits: int, mult: int, add: int) -> Array:
    """A bijection of [0, 10**digits) that turns sequence numbers into random-looking identifiers.

    (seq × mult + add) mod 10**digits with mult coprime to 10, computed in two halves so that uint64
    never overflows for seq < 10**10.
    """
    import numpy as np

    mod = 10**digits
    s = seq.astype(np.uint64)
    if digits <= 8:
        out = (s * np.uint64(mult % mod) + np.uint64(add % mod)) % np.uint64(mod)
    else:
        high, low = divmod(mult % mod, 10**8)
        part = (s * np.uint64(high)) % np.uint64(10 ** (digits - 8)) * np.uint64(10**8)
        out = (part + s * np.uint64(low) + np.uint64(add % mod)) % np.uint64(mod)
    return out.astype(np.int64)


# --------------------------------------------------------------------------------------------------
# Generation: one merchant at a time, all months, so that buyers can convert across months.


@dataclass
class _Rows:
    """Column arrays of one batch of merchants; ids are assigned when the batch is written."""

    orders: dict[str, Array]
    reviews: dict[str, Array]  # `order` is the row index into `orders`
    sessions: dict[str, Array]


_NULL = -1  # integer arrays use -1 for "no value" (promoter, refund, reason, commission)
_XLSX_MAX_ROWS = 1_048_576
_CHUNK_ORDERS = 500_000  # orders per written batch: bounds memory (~0.6 GB) at any sample size

# Identifier schemes for _scramble: (digits, multiplier, offset). Order numbers have 16 digits, about
# one in ten with a leading zero, which is what breaks tools that read identifiers as numbers.
_ORDER_IDS = (16, 3_791_854_216_734_917, 4_830_129_377_205_611)
_REVIEW_IDS = (15, 91_487_326_651_391, 517_300_442_981_736)
_LIVE_IDS = (12, 615_820_749_373, 104_557_311_860)
_BUYER_IDS = (10, 7_340_041_927, 5_217_904_613)
_ITEM_IDS = (11, 52_708_183_337, 20_481_736_259)
_PROMOTER_IDS = (8, 48_271_939, 10_300_000)


def _write_all(plan: _Plan, writers: dict[str, _Writer], headers: Headers) -> None:
    """Generate merchants in order, flushing a batch whenever it holds enough orders."""
    counters = {"orders": 0, "reviews": 0, "livestreams": 0}
    batch: list[_Rows] = []
    size = 0
    for merchant in plan.merchants:
        rows = _merchant_rows(plan, merchant)
        batch.append(rows)
        size += len(rows.orders["time"]) if rows.orders else 0
        if size >= _CHUNK_ORDERS:
            _flush(plan, batch, writers, headers, counters)
            batch, size = [], 0
    _flush(plan, batch, writers, headers, counters)
    writers["shops"].write(_shops_frame(plan, headers))


def _merchant_rows(plan: _Plan, m: _Merchant) -> _Rows:
    import numpy as np

    rng = np.random.default_rng([plan.seed, 1, m.index])
    months = plan.months
    end = months[-1].end
    sessions: list[dict[str, Array]] = []
    dist_parts: list[dict[str, Array]] = []
    self_parts: list[dict[str, Array]] = []
    n_sessions = 0  # sessions get merchant-local keys 0, 1, … in the order they are concatenated
    for k, month in enumerate(months):
        last = m.index == 0 and k == len(months) - 1
        self_live = _self_sessions(m, k, month, n_sessions, rng, force_last_day=last)
        n_sessions += len(self_live["start"])
        n_dist = int(plan.dist_counts[m.index, k])
        n_self = int(plan.self_counts[m.index, k])
        dist = _distribution_orders(m, n_dist, month, rng)
        prom = _promoter_sessions(m, dist, month, n_sessions, rng)
        n_sessions += len(prom["start"]) if prom else 0
        self_ = _self_orders(m, n_self, month, self_live, rng)
        sessions += [self_live, prom]
        dist_parts.append(dist)
        self_parts.append(self_)
    dist = _concat(dist_parts)
    self_ = _concat(self_parts)
    _buyers(plan, m, dist, self_, rng)
    orders = _concat([dist, self_])
    _statuses(m, orders, end, months[-1].start, rng)
    reviews = _reviews(plan, m, orders, end, rng)
    if m.index == 0:
        orders = _concat([orders, _anchor_orders(m, months)])
        reviews = _concat([reviews, _anchor_review(orders, months[-1]), _first_review(orders)])
    all_sessions = _concat(sessions)
    _session_gmv(all_sessions, orders)
    all_sessions.pop("_key", None)
    orders.pop("_session", None)
    return _Rows(orders, reviews, all_sessions)


def _concat(parts: list[dict[str, Array]]) -> dict[str, Array]:
    import numpy as np

    parts = [p for p in parts if p]
    if not parts:
        return {}
    return {col: np.concatenate([p[col] for p in parts]) for col in parts[0]}


def _pick_days(n: int, month: _Month, rng: Rng, two_weeks: bool, force_last: bool) -> Array:
    """`n` distinct day offsets in the month (all inside two ISO weeks if `two_weeks`)."""
    import numpy as np

    if two_weeks:
        first = month.period.start
        monday = (7 - first.weekday()) % 7  # first Monday on or after the 1st
        pool = np.arange(monday, min(monday + 14, month.days))
        if len(pool) == 14 and n >= 2:
            # at least one day in each week, so live_weeks is exactly 2
            picks = [int(rng.integers(0, 7)), int(rng.integers(7, 14))]
            rest = np.setdiff1d(np.arange(14), picks)
            more = rng.choice(rest, min(n, 14) - 2, replace=False)
            return np.sort(pool[np.concatenate([picks, more]).astype(np.int64)])
    else:
        pool = np.arange(month.days)
    days = np.sort(rng.choice(pool, min(n, len(pool)), replace=False))
    if force_last and n > 0 and month.days - 1 not in days:
        days[0] = month.days - 1  # the flagship streams on the last day: the period is complete
        days = np.sort(days)
    return days


def _session_starts(
    day: Array, minutes: Array, month: _Month, rng: Rng, first: int = 540, last_end: int = 1439
) -> Array:
    """Start times from minute-of-day `first` on, ending by `last_end` (default 09:00–23:59), skewed late."""
    import numpy as np

    room = np.maximum(last_end - minutes - first, 0)
    start_min = first + np.floor(rng.beta(2.5, 1.3, len(day)) * room)
    return month.start + day * 86400 + start_min.astype(np.int64) * 60 + rng.integers(0, 60, len(day))


def _self_sessions(
    m: _Merchant, k: int, month: _Month, base: int, rng: Rng, force_last_day: bool
) -> dict[str, Array]:
    import numpy as np

    n_days = m.live_days[k]
    days = _pick_days(n_days, month, rng, m.two_weeks and k == len(m.live_days) - 1, force_last_day)
    # One live room never hosts two sessions at once, so each kind has its own time slot: the main
    # session from 13:00, a second morning session on some live days (09:00–12:30), and test streams
    # under 30 minutes (07:00–09:00) on any days, which count for live_hours but not for live_days.
    main = np.clip(np.round(rng.lognormal(math.log(m.session_minutes), 0.35, len(days))), 30, 360)
    second_days = days[rng.random(len(days)) < 0.15]
    second = np.clip(np.round(rng.lognormal(math.log(60), 0.4, len(second_days))), 30, 120)
    short_days = np.sort(rng.choice(month.days, min(m.short_sessions[k], month.days), replace=False))
    short = rng.integers(5, 30, len(short_days))
    day = np.concatenate([days, second_days, short_days]).astype(np.int64)
    minutes = np.concatenate([main, second, short]).astype(np.int64)
    start = np.concatenate(
        [
            _session_starts(days, main, month, rng, first=780),
            _session_starts(second_days, second, month, rng, first=540, last_end=750),
            _session_starts(short_days, short, month, rng, first=420, last_end=539),
        ]
    )
    n = len(day)
    viewers = np.round(minutes * m.traffic * rng.lognormal(0.0, 0.5, n)).astype(np.int64)
    followers = rng.poisson(minutes / 60.0 * m.followers_per_hour).astype(np.int64)
    return {
        "merchant": np.full(n, m.index, dtype=np.int64),
        "host": np.zeros(n, dtype=np.int64),
        "promoter": np.full(n, _NULL, dtype=np.int64),
        "start": start,
        "minutes": minutes,
        "viewers": viewers,
        "followers": followers,
        "gmv": np.zeros(n, dtype=np.int64),
        "_key": np.arange(n, dtype=np.int64) + base,  # links orders to their session, see _session_gmv
    }


def _random_times(n: int, month: _Month, rng: Rng) -> Array:
    """Order times outside live sessions: uniform days, the hour-of-day profile of a shopping app."""
    import numpy as np

    hours = np.array(_HOUR_WEIGHTS)
    hour = rng.choice(24, n, p=hours / hours.sum())
    return month.start + rng.integers(0, month.days, n) * 86400 + hour * 3600 + rng.integers(0, 3600, n)


def _in_sessions(n: int, start: Array, minutes: Array, rng: Rng) -> tuple[Array, Array]:
    """`n` order times inside the given sessions (longer sessions sell more); returns (times, session)."""
    weight = minutes / minutes.sum()
    session = rng.choice(len(start), n, p=weight)
    return start[session] + (rng.random(n) * minutes[session] * 60).astype("int64"), session


def _order_block(m: _Merchant, n: int, mode: int, rng: Rng) -> dict[str, Array]:
    """Items, amounts and quantities of `n` orders; times, carriers and buyers are filled by the caller."""
    import numpy as np

    prices = np.array(m.item_prices)
    popularity = 1.0 / (np.arange(len(prices)) + 1.0)
    item = rng.choice(len(prices), n, p=popularity / popularity.sum())
    quantity = rng.choice(3, n, p=[0.85, 0.11, 0.04]) + 1
    paid = np.round(prices[item] * quantity * rng.lognormal(0.0, 0.1, n) * 100).astype(np.int64)
    return {
        "merchant": np.full(n, m.index, dtype=np.int64),
        "time": np.zeros(n, dtype=np.int64),
        "buyer": np.zeros(n, dtype=np.int64),
        "item": item.astype(np.int64) + m.item_offset,
        "promoter": np.full(n, _NULL, dtype=np.int64),
        "mode": np.full(n, mode, dtype=np.int64),
        "carrier": np.zeros(n, dtype=np.int64),
        "paid": np.maximum(paid, 1),
        "quantity": quantity.astype(np.int64),
        "status": np.zeros(n, dtype=np.int64),
        "refund": np.full(n, _NULL, dtype=np.int64),
        "reason": np.full(n, _NULL, dtype=np.int64),
        "commission": np.full(n, _NULL, dtype=np.int64),
        "_session": np.full(n, _NULL, dtype=np.int64),
    }


def _distribution_orders(m: _Merchant, n: int, month: _Month, rng: Rng) -> dict[str, Array]:
    import numpy as np

    if n == 0 or not m.promoters:
        return {}
    block = _order_block(m, n, 1, rng)
    block["carrier"] = rng.choice(4, n, p=[0.55, 0.35, 0.07, 0.03])
    block["time"] = _random_times(n, month, rng)
    weights = np.array(m.promoter_weights)
    slot = rng.choice(len(m.promoters), n, p=weights / weights.sum())
    block["promoter"] = np.array(m.promoters, dtype=np.int64)[slot]
    block["_slot"] = slot
    return block


def _promoter_sessions(
    m: _Merchant, dist: dict[str, Array], month: _Month, base: int, rng: Rng
) -> dict[str, Array]:
    """Promoter live sessions selling this merchant's goods; live distribution orders move into them."""
    import numpy as np

    if not dist:
        return {}
    live = np.flatnonzero(dist["carrier"] == 0)
    slot = dist.pop("_slot")
    if len(live) == 0:
        return {}
    # Every promoter with live orders gets at least one session, so each order has a room to sit in;
    # about six orders a session, but at most three sessions per promoter, so that session counts follow
    # the merchant count rather than the order count in large samples.
    needed = np.unique(slot[live])
    n = min(max(1, round(len(live) / 6)), 3 * len(needed))
    weights = np.array(m.promoter_weights)
    sess_slot = rng.choice(len(m.promoters), n, p=weights / weights.sum())
    sess_slot = np.concatenate([needed, sess_slot[~np.isin(sess_slot, needed)]])
    n = len(sess_slot)
    minutes = np.clip(np.round(rng.lognormal(math.log(150), 0.4, n)), 30, 360)
    short = rng.random(n) < 0.06
    minutes[short] = rng.integers(10, 30, int(short.sum()))
    minutes = minutes.astype(np.int64)
    start = _session_starts(rng.integers(0, month.days, n), minutes, month, rng)
    for s in needed:
        rows = live[slot[live] == s]
        own = np.flatnonzero(sess_slot == s)
        t, idx = _in_sessions(len(rows), start[own], minutes[own], rng)
        dist["time"][rows] = t
        dist["_session"][rows] = own[idx] + base
    promoter = np.array(m.promoters, dtype=np.int64)[sess_slot]
    return {
        "merchant": np.full(n, m.index, dtype=np.int64),
        "host": np.ones(n, dtype=np.int64),
        "promoter": promoter,
        "start": start,
        "minutes": minutes,
        "viewers": np.round(minutes * 400 * rng.lognormal(0.0, 0.6, n)).astype(np.int64),
        "followers": rng.poisson(minutes / 60.0 * 150).astype(np.int64),
        "gmv": np.zeros(n, dtype=np.int64),
        "_key": np.arange(n, dtype=np.int64) + base,
    }


def _self_orders(
    m: _Merchant, n: int, month: _Month, sessions: dict[str, Array], rng: Rng
) -> dict[str, Array]:
    import numpy as np

    if n == 0:
        return {}
    block = _order_block(m, n, 0, rng)
    has_live = len(sessions["start"]) > 0
    live = rng.random(n) < (m.live_share if has_live else 0.0)
    carrier = rng.choice([1, 2, 3], n, p=[0.3, 0.6, 0.1])
    carrier[live] = 0
    block["carrier"] = carrier
    block["time"] = _random_times(n, month, rng)
    rows = np.flatnonzero(live)
    if len(rows):
        t, idx = _in_sessions(len(rows), sessions["start"], sessions["minutes"], rng)
        block["time"][rows] = t
        block["_session"][rows] = sessions["_key"][idx]
    return block


def _buyers(plan: _Plan, m: _Merchant, dist: dict[str, Array], self_: dict[str, Array], rng: Rng) -> None:
    """Assign buyers so that some self orders come from buyers a promoter brought in earlier.

    Distribution orders draw from the merchant's distribution buyers; a self order converts with the
    merchant's conversion chance, picking a buyer whose first distribution order is strictly earlier.
    """
    import numpy as np

    n_dist = len(dist["time"]) if dist else 0
    n_self = len(self_["time"]) if self_ else 0
    d_size = max(1, math.ceil(0.85 * n_dist))
    s_size = max(1, math.ceil(0.75 * n_self))
    base = plan.shared_buyers + int(plan.buyer_offsets[m.index])
    if n_dist:
        local = rng.integers(0, d_size, n_dist)
        first = np.full(d_size, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(first, local, dist["time"])
        seen = np.flatnonzero(first < np.iinfo(np.int64).max)
        by_time = seen[np.argsort(first[seen], kind="stable")]
        first_sorted = first[by_time]
        dist["buyer"] = local + base
    if n_self:
        local = d_size + rng.integers(0, s_size, n_self)
        if n_dist:
            earlier = np.searchsorted(first_sorted, self_["time"], side="left")
            convert = (rng.random(n_self) < m.conversion) & (earlier > 0)
            pick = (rng.random(n_self) * earlier).astype(np.int64)
            local[convert] = by_time[pick[convert]]
        self_["buyer"] = local + base
    # A few orders come from platform-wide shoppers who buy from many merchants.
    for block in (dist, self_):
        if block:
            shared = rng.random(len(block["time"])) < 0.03
            block["buyer"][shared] = rng.integers(0, plan.shared_buyers, int(shared.sum()))


def _anchor_orders(m: _Merchant, months: tuple[_Month, ...]) -> dict[str, Array]:
    """Boundary orders of the flagship: the end month's first and last second, and the previous month's last.

    They are what period-window bugs trip over (half-open [start, end) windows).
    """
    import numpy as np

    last = months[-1]
    times = [last.start, last.end - 1]
    if len(months) > 1:
        times.insert(0, months[-2].end - 1)
    n = len(times)
    paid = np.array([16800, 29900, 8800][:n], dtype=np.int64)
    status = [STATUSES.index("completed")] * (n - 1) + [STATUSES.index("paid")]  # the last one just paid
    return {
        "merchant": np.full(n, m.index, dtype=np.int64),
        "time": np.array(times, dtype=np.int64),
        "buyer": np.arange(n, dtype=np.int64),  # platform-wide shoppers
        "item": np.full(n, m.item_offset, dtype=np.int64),
        "promoter": np.full(n, _NULL, dtype=np.int64),
        "mode": np.zeros(n, dtype=np.int64),
        "carrier": np.full(n, CARRIERS.index("card"), dtype=np.int64),
        "paid": paid,
        "quantity": np.ones(n, dtype=np.int64),
        "status": np.array(status, dtype=np.int64),
        "refund": np.full(n, _NULL, dtype=np.int64),
        "reason": np.full(n, _NULL, dtype=np.int64),
        "commission": np.full(n, _NULL, dtype=np.int64),
        "_session": np.full(n, _NULL, dtype=np.int64),
    }


def _anchor_count(months: tuple[_Month, ...]) -> int:
    return 3 if len(months) > 1 else 2


def _statuses(m: _Merchant, o: dict[str, Array], end: int, end_month_start: int, rng: Rng) -> None:
    """Order states by age at the export time, refunds with reasons, and commissions of promoters."""
    import numpy as np

    n = len(o["time"]) if o else 0
    if n == 0:
        return
    age = (end - o["time"]) / 86400.0
    u = rng.random(n)
    status = np.where(
        age < 2,
        np.where(u < 0.75, STATUSES.index("paid"), STATUSES.index("shipped")),
        np.where(
            age < 6,
            STATUSES.index("shipped"),
            np.where(
                age < 12,
                np.where(u < 0.5, STATUSES.index("received"), STATUSES.index("completed")),
                np.where(u < 0.03, STATUSES.index("received"), STATUSES.index("completed")),
            ),
        ),
    )
    # Unpaid orders: pending only in the last day, otherwise timed out and closed.
    unpaid = rng.random(n) < 0.03
    status[unpaid] = np.where(age[unpaid] < 1, STATUSES.index("pending"), STATUSES.index("closed"))
    refund = (~unpaid) & (rng.random(n) < m.refund_rate) & (age >= 1)
    quality = refund & (rng.random(n) < m.quality_share)
    partial = refund & (rng.random(n) < 0.25)
    reason = np.full(n, _NULL, dtype=np.int64)
    q_pick = rng.choice(len(QUALITY_REASONS), n, p=_QUALITY_REASON_WEIGHTS)
    o_pick = rng.integers(0, len(OTHER_REASONS), n) + len(QUALITY_REASONS)
    reason[refund] = np.where(quality, q_pick, o_pick)[refund]
    amount = np.full(n, _NULL, dtype=np.int64)
    share = rng.uniform(0.1, 0.5, n)
    amount[refund] = np.where(partial, np.round(o["paid"] * share), o["paid"])[refund].astype(np.int64)
    status[refund & ~partial] = STATUSES.index("refunded")
    # Some exports leave the amount of a full refund empty; the rules then count the order as fully
    # refunded. Only for non-quality reasons, so that "quality return" never depends on that reading.
    blank = refund & ~partial & ~quality & (rng.random(n) < 0.15)
    amount[blank] = _NULL
    if m.void_live_end:
        void = (o["time"] >= end_month_start) & (o["mode"] == 0) & (o["carrier"] == 0)
        closed = void & (rng.random(n) < 0.2)
        status[void] = STATUSES.index("refunded")
        status[closed] = STATUSES.index("closed")
        reason[void] = len(QUALITY_REASONS) + OTHER_REASONS.index("协商一致退款")
        reason[closed] = _NULL
        amount[void] = o["paid"][void]
        amount[closed | (void & (rng.random(n) < 0.3))] = _NULL
    o["status"], o["refund"], o["reason"] = status, amount, reason
    # Commission: 10–30 % of the paid amount, a fixed rate per (promoter, merchant) pair.
    dist = o["mode"] == 1
    rate = 0.1 + 0.2 * ((o["promoter"][dist] * 7919 + m.index * 104729) % 1000) / 1000.0
    commission = np.full(n, _NULL, dtype=np.int64)
    commission[dist] = np.round(o["paid"][dist] * rate).astype(np.int64)
    o["commission"] = commission


def _reviews(plan: _Plan, m: _Merchant, o: dict[str, Array], end: int, rng: Rng) -> dict[str, Array]:
    """Reviews of delivered orders a few days after purchase; bad merchants and promoters rate lower."""
    import numpy as np

    n = len(o["time"]) if o else 0
    if n == 0:
        return {}
    # Only delivered orders are reviewed (a fully refunded order has no review); a partial refund for a
    # quality reason does come with an unhappy review.
    delivered = np.isin(o["status"], [STATUSES.index("completed"), STATUSES.index("received")])
    rows = np.flatnonzero(delivered & (rng.random(n) < m.review_rate))
    delay = (2.0 + rng.lognormal(1.2, 0.6, len(rows))) * 86400
    t = o["time"][rows] + delay.astype(np.int64)
    keep = t < end
    rows, t = rows[keep], t[keep]
    k = len(rows)
    promoter_bad = np.array([p.badness for p in plan.promoters])
    bad = np.full(k, m.badness)
    prom = o["promoter"][rows]
    bad[prom >= 0] = np.clip(bad[prom >= 0] + promoter_bad[prom[prom >= 0]], 0.0, 1.0)
    quality_return = (o["refund"][rows] > 0) & (o["reason"][rows] >= 0) & (o["reason"][rows] < 5)
    bad[quality_return] = 0.8
    quality = _scores(bad, rng)
    logistics = _scores(bad * 0.6, rng)
    service = _scores(bad * 0.8, rng)
    p_complaint = np.where(quality <= 2, m.complaint_rate * 5 + 0.02 * (bad > 0.5), m.complaint_rate * 0.3)
    complaint = (rng.random(k) < p_complaint).astype(np.int64)
    return {
        "order": rows.astype(np.int64),
        "time": t,
        "quality": quality,
        "logistics": logistics,
        "service": service,
        "complaint": complaint,
    }


def _scores(bad: Array, rng: Rng) -> Array:
    """1–5 star scores drawn from the mix (1 − bad) × good + bad × bad distribution."""
    import numpy as np

    cum = (1.0 - bad)[:, None] * np.cumsum(_GOOD_SCORES) + bad[:, None] * np.cumsum(_BAD_SCORES)
    index = (rng.random(len(bad))[:, None] > cum).sum(axis=1)
    return (5 - np.minimum(index, 4)).astype(np.int64)


def _anchor_review(o: dict[str, Array], last: _Month) -> dict[str, Array]:
    """A five-star review, on the end month's last evening, of the flagship's first-second order."""
    import numpy as np

    row = int(np.flatnonzero(o["time"] == last.start)[-1])
    return {
        "order": np.array([row]),
        "time": np.array([last.end - 86400 + 20 * 3600 + 15 * 60]),
        "quality": np.array([5]),
        "logistics": np.array([5]),
        "service": np.array([5]),
        "complaint": np.array([0]),
    }


def _first_review(o: dict[str, Array]) -> dict[str, Array]:
    """A review three hours after the flagship's first delivered order, so that the reviews start with the
    data: SPEC §6 calls the end month complete only when reviews cover its 90-day windows from their first
    day (without it the first review came on day 4, after the first day May's 90-day windows read)."""
    import numpy as np

    delivered = np.flatnonzero(
        np.isin(o["status"], [STATUSES.index("completed"), STATUSES.index("received")])
    )
    row = int(delivered[np.argmin(o["time"][delivered])])
    return {
        "order": np.array([row]),
        "time": np.array([o["time"][row] + 3 * 3600]),
        "quality": np.array([5]),
        "logistics": np.array([4]),
        "service": np.array([5]),
        "complaint": np.array([0]),
    }


def _session_gmv(sessions: dict[str, Array], o: dict[str, Array]) -> None:
    """A session's gmv is the paid amount of the orders placed during it."""
    import numpy as np

    if not sessions or not o:
        return
    linked = o["_session"] >= 0
    gmv = np.bincount(o["_session"][linked], weights=o["paid"][linked], minlength=len(sessions["_key"]))
    sessions["gmv"] = gmv.astype(np.int64)


# --------------------------------------------------------------------------------------------------
# Output: batches become polars frames with canonical (or Chinese) headers and values.


def _flush(
    plan: _Plan, batch: list[_Rows], writers: dict[str, _Writer], headers: Headers, counters: dict[str, int]
) -> None:
    import numpy as np

    if not batch:
        return
    orders = _concat([b.orders for b in batch])
    # Reviews point at their batch-local order rows; shift each merchant's indices by its offset.
    offset = 0
    review_parts = []
    for b in batch:
        if b.reviews:
            r = dict(b.reviews)
            r["order"] = r["order"] + offset
            review_parts.append(r)
        offset += len(b.orders["time"]) if b.orders else 0
    reviews = _concat(review_parts)
    sessions = _concat([b.sessions for b in batch])
    if orders:
        order_sort = np.argsort(orders["time"], kind="stable")
        order_ids = _scramble(np.arange(len(order_sort), dtype=np.int64) + counters["orders"], *_ORDER_IDS)
        id_of_row = np.empty(len(order_sort), dtype=np.int64)
        id_of_row[order_sort] = order_ids
        counters["orders"] += len(order_sort)
        writers["orders"].write(_orders_frame(plan, orders, order_sort, id_of_row, headers))
        if reviews:
            review_sort = np.argsort(reviews["time"], kind="stable")
            seq = np.arange(len(review_sort), dtype=np.int64) + counters["reviews"]
            review_ids = _scramble(seq, *_REVIEW_IDS)
            counters["reviews"] += len(review_sort)
            frame = _reviews_frame(plan, orders, reviews, review_sort, review_ids, id_of_row, headers)
            writers["reviews"].write(frame)
    if sessions:
        session_sort = np.argsort(sessions["start"], kind="stable")
        live_ids = _scramble(
            np.arange(len(session_sort), dtype=np.int64) + counters["livestreams"], *_LIVE_IDS
        )
        counters["livestreams"] += len(session_sort)
        writers["livestreams"].write(_sessions_frame(plan, sessions, session_sort, live_ids, headers))


def _lookup(values: tuple[str, ...], codes: Array) -> pl.Series:
    """Strings by integer code, with -1 as null (a gather from a small lookup series: fast at 10M rows)."""
    import numpy as np
    import polars as pl

    table = pl.Series("v", [*values, None], dtype=pl.String)
    return table.gather(np.where(codes < 0, len(values), codes))


def _enum(column: str, values: tuple[str, ...], headers: Headers) -> tuple[str, ...]:
    return tuple(ZH_VALUES[column][v] for v in values) if headers == "zh" else values


def _ids(numbers: Array, digits: int, prefix: str = "") -> pl.Series:
    import polars as pl

    text = pl.Series("v", numbers).cast(pl.String).str.zfill(digits)
    return (prefix + text) if prefix else text


def _amount(cents: Array) -> pl.Series:
    """Cents as DECIMAL(14,2), -1 as null; written as `12.34` in CSV."""
    import polars as pl

    s = pl.Series("v", cents)
    s = pl.select(pl.when(s >= 0).then(s).otherwise(None)).to_series()
    return (s.cast(pl.Decimal(14, 2)) / 100).cast(pl.Decimal(14, 2))


def _times(seconds: Array) -> pl.Series:
    """Epoch seconds of naive local time as a naive timestamp column."""
    import polars as pl

    return pl.from_epoch(pl.Series("v", seconds), time_unit="s").cast(pl.Datetime("us"))


def _frame(table: Table, columns: dict[str, pl.Series], headers: Headers) -> pl.DataFrame:
    """A frame in the schema's column order, named canonically (en) or by the first alias (zh); optional
    columns the generator does not make (promoter_name) are left out, as many real exports leave them."""
    import polars as pl

    names = [c.name for c in table.columns if not c.derived and c.name in columns]
    return pl.DataFrame(
        [columns[n].alias(table.column(n).aliases[0] if headers == "zh" else n) for n in names]
    )


def _orders_frame(
    plan: _Plan, o: dict[str, Array], sort: Array, ids: Array, headers: Headers
) -> pl.DataFrame:
    import polars as pl

    def take(col: str) -> Array:
        return o[col][sort]

    promoter_ids = tuple(p.promoter_id for p in plan.promoters)
    buyers = _scramble(take("buyer"), *_BUYER_IDS)
    items = _scramble(take("item"), *_ITEM_IDS)
    shop_ids = tuple(mm.shop_id for mm in plan.merchants)
    columns = {
        "order_id": _ids(ids[sort], 16),
        "shop_id": _lookup(shop_ids, take("merchant")),
        "buyer_id": _ids(buyers, 10, "u"),
        "item_id": _ids(items, 11),
        "item_name": _lookup(plan.item_names, take("item")),
        "promoter_id": _lookup(promoter_ids, take("promoter")),
        "sale_mode": _lookup(_enum("sale_mode", SALE_MODES, headers), take("mode")),
        "carrier": _lookup(_enum("carrier", CARRIERS, headers), take("carrier")),
        "order_time": _times(take("time")),
        "paid_amount": _amount(take("paid")),
        "quantity": pl.Series("v", take("quantity")),
        "status": _lookup(_enum("status", STATUSES, headers), take("status")),
        "refund_amount": _amount(take("refund")),
        "refund_reason": _lookup(QUALITY_REASONS + OTHER_REASONS, take("reason")),
        "commission": _amount(take("commission")),
    }
    return _frame(TABLES["orders"], columns, headers)


def _reviews_frame(
    plan: _Plan,
    o: dict[str, Array],
    r: dict[str, Array],
    sort: Array,
    review_ids: Array,
    order_id_of_row: Array,
    headers: Headers,
) -> pl.DataFrame:
    import polars as pl

    row = r["order"][sort]
    complaint = _lookup(_enum("complaint", COMPLAINTS, headers), r["complaint"][sort])
    columns = {
        "review_id": _ids(review_ids, 15),
        "order_id": _ids(order_id_of_row[row], 16),
        "shop_id": _lookup(tuple(mm.shop_id for mm in plan.merchants), o["merchant"][row]),
        "item_id": _ids(_scramble(o["item"][row], *_ITEM_IDS), 11),
        "promoter_id": _lookup(tuple(p.promoter_id for p in plan.promoters), o["promoter"][row]),
        "quality_score": pl.Series("v", r["quality"][sort]),
        "logistics_score": pl.Series("v", r["logistics"][sort]),
        "service_score": pl.Series("v", r["service"][sort]),
        "review_time": _times(r["time"][sort]),
        "complaint": complaint if headers == "zh" else complaint == "true",
    }
    return _frame(TABLES["reviews"], columns, headers)


def _sessions_frame(
    plan: _Plan, s: dict[str, Array], sort: Array, live_ids: Array, headers: Headers
) -> pl.DataFrame:
    import polars as pl

    start = s["start"][sort]
    minutes = s["minutes"][sort]
    columns = {
        "live_id": _ids(live_ids, 12),
        "shop_id": _lookup(tuple(mm.shop_id for mm in plan.merchants), s["merchant"][sort]),
        "host_type": _lookup(_enum("host_type", HOST_TYPES, headers), s["host"][sort]),
        "promoter_id": _lookup(tuple(p.promoter_id for p in plan.promoters), s["promoter"][sort]),
        "start_time": _times(start),
        "end_time": _times(start + minutes * 60),
        "duration_minutes": pl.Series("v", minutes),
        "viewers": pl.Series("v", s["viewers"][sort]),
        "new_followers": pl.Series("v", s["followers"][sort]),
        "gmv": _amount(s["gmv"][sort]),
    }
    return _frame(TABLES["livestreams"], columns, headers)


def _shops_frame(plan: _Plan, headers: Headers) -> pl.DataFrame:
    import polars as pl

    ms = plan.merchants
    columns = {
        "shop_id": pl.Series("v", [m.shop_id for m in ms], dtype=pl.String),
        "shop_name": pl.Series("v", [m.shop_name for m in ms], dtype=pl.String),
        "category": pl.Series("v", [CATEGORIES[m.category][0] for m in ms], dtype=pl.String),
        "group_id": pl.Series("v", [m.group_id for m in ms], dtype=pl.String),
    }
    return _frame(TABLES["shops"], columns, headers)


# --------------------------------------------------------------------------------------------------
# Writers with fixed settings, so that the bytes depend on the data only.


class _Writer(Protocol):
    def write(self, df: pl.DataFrame) -> None: ...

    def close(self) -> None: ...


_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class _CsvWriter:
    """Appends frames to one CSV file: header once, `\\n` line ends, times as `YYYY-MM-DD HH:MM:SS`."""

    def __init__(self, path: Path, encoding: Encoding) -> None:
        self._file = path.open("wb")
        self._encoding = encoding
        self._first = True

    def write(self, df: pl.DataFrame) -> None:
        text = df.write_csv(include_header=self._first, datetime_format=_TIME_FORMAT)
        self._file.write(text.encode(self._encoding))
        self._first = False

    def close(self) -> None:
        self._file.close()


class _ParquetWriter:
    """Appends frames as row groups of one Parquet file (zstd, fixed schema, no wall-clock metadata)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._writer: Any = None

    def write(self, df: pl.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = df.to_arrow()
        # Plain `string` rather than polars' large/view strings: the most widely readable Parquet.
        schema = pa.schema(
            [pa.field(f.name, pa.string() if _is_wide_string(f.type) else f.type) for f in table.schema]
        )
        table = table.cast(schema)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._path, schema, compression="zstd", compression_level=3)
        self._writer.write_table(table, row_group_size=1_000_000)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _is_wide_string(t: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_large_string(t) or pa.types.is_string_view(t))


class _XlsxWriter:
    """One sheet per file; ids and times as text, amounts and counts as numbers; fixed document dates."""

    def __init__(self, path: Path, sheet: str, created: datetime) -> None:
        import xlsxwriter

        self._book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False})
        # The document's created date would otherwise be "now", which changes the bytes on every run.
        self._book.set_properties({"created": created, "author": "chuanliu sample"})
        self._sheet = self._book.add_worksheet(sheet)
        self._row = 0

    def write(self, df: pl.DataFrame) -> None:
        import polars as pl

        if self._row == 0:
            self._sheet.write_row(0, 0, df.columns)
            self._row = 1
        df = df.with_columns(
            [pl.col(c).dt.strftime(_TIME_FORMAT) for c, t in df.schema.items() if isinstance(t, pl.Datetime)]
            + [pl.col(c).cast(pl.Float64) for c, t in df.schema.items() if isinstance(t, pl.Decimal)]
        )
        sheet = self._sheet
        for values in df.iter_rows():
            for col, value in enumerate(values):
                if value is None:
                    continue
                if isinstance(value, str):
                    sheet.write_string(self._row, col, value)
                elif isinstance(value, bool):
                    sheet.write_boolean(self._row, col, value)
                else:
                    sheet.write_number(self._row, col, value)
            self._row += 1

    def close(self) -> None:
        self._book.close()


def _open_writer(
    path: Path, table: Table, headers: Headers, encoding: Encoding, fmt: Format, export_day: date
) -> _Writer:
    if fmt == "csv":
        return _CsvWriter(path, encoding)
    if fmt == "parquet":
        return _ParquetWriter(path)
    return _XlsxWriter(
        path, FILE_STEMS[headers][table.name], datetime.combine(export_day, datetime.min.time())
    )
