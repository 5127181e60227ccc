"""The synthetic data generator behind `chuanliu sample` (SPEC §6): four export tables with realistic shapes.

The dataset is a pure function of the options. A seeded planning generator draws every merchant's
parameters as arrays (one entry per merchant); then the merchants are generated in fixed blocks of
`_BLOCK` merchants, each block with its own seeded numpy generator and array operations over all of its
merchants at once (np.repeat over month cells, cumulative-weight searches for the weighted choices).
Blocks are generated in order and the rows of each block are sorted by time and numbered from running
counters, so how many blocks go into one write (`_CHUNK_ORDERS`) never changes a row. No wall clock, no
set iteration order, and file writers with fixed settings (Parquet compression and row groups, XLSX
document dates). 20 million orders of 500,000 merchants take about a minute and bounded memory.

The first 60 merchants follow a fixed cast of archetypes (stars, merchants failing exactly one gate, a lapsed
merchant failing several, small new stores with too few reviews, a shop with no activity at all, and
regulars of graded strength) so that the default sample exercises every gate and tier of the default
ruleset. Merchants after the cast are a platform population: mostly small regular shops whose order
counts are heavy-tailed (a lognormal size times a strength drawn from a skewed beta), many of them
streaming a few days a month or not at all, with every archetype mixed in at a low rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from chuanliu_cli.errors import UsageError
from chuanliu_cli.periods import Period, parse_period
from chuanliu_cli.schema import TABLES, Table

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    import numpy.typing as npt
    import polars as pl

    Array = npt.NDArray[Any]
    Rng = np.random.Generator

Headers = Literal["en", "zh"]
Encoding = Literal["utf-8", "gb18030"]
Format = Literal["csv", "parquet", "xlsx", "api"]  # api: saved open-platform responses (sample_api)

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
#: The cast of the first 60 merchants: (archetype, strength in [0, 1]). Merchants after it are drawn from
#: the platform mix below. `regular` strengths are graded so that the default ruleset's tiers S/A/B/C and
#: "below C" are all used.
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
    *(("regular", round((j + 0.5) / 47, 4)) for j in range(42)),
    ("leader", 1.0),  # everyday goods at star scale, streaming daily: the top of the reward list
    *(("regular", round((j + 0.5) / 47, 4)) for j in range(43, 47)),
    ("closed_store", 0.0),  # in shops only, no activity: not part of any scorecard population
)
#: The category of each cast merchant (an index into CATEGORIES), fixed so that the default sample's shop
#: names stay those the documentation shows; stars sell expensive goods (jewellery, tonics).
_CAST_CATEGORIES = "394892616649400542221204544918562400582458475042727929622018"

#: Archetype codes of the integer `kind` array, and the platform mix of merchants after the cast.
KINDS = (
    "star",
    "leader",
    "no_distribution",
    "sporadic_live",
    "two_weeks_live",
    "poor_experience",
    "no_live_sales",
    "lapsed",
    "card_only",
    "short_sessions",
    "new_store",
    "regular",
    "closed_store",
)
_PLATFORM_MIX = {
    "star": 0.002,
    "leader": 0.0005,
    "no_distribution": 0.03,
    "sporadic_live": 0.01,
    "two_weeks_live": 0.004,
    "poor_experience": 0.006,
    "no_live_sales": 0.004,
    "lapsed": 0.03,
    "card_only": 0.06,
    "short_sessions": 0.01,
    "new_store": 0.05,
    "regular": 0.784,
    "closed_store": 0.01,
}

#: Archetypes meant to fail exactly one gate of the default ruleset (poor_experience is the store one).
_ONE_GATE_KINDS = ("no_distribution", "sporadic_live", "two_weeks_live", "no_live_sales", "short_sessions")

_BAD_PROMOTER = -1  # index of the promoter with bad reviews (the least popular one)
_MIN_PROMOTERS = 60  # promoters: half the merchants, at least this many


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
class _Plan:
    """The whole dataset's skeleton as arrays: one entry per merchant (or merchant × month, or pair).

    Merchant `i` has promoters `prom_index[prom_ptr[i]:prom_ptr[i + 1]]` (with their weights) and items
    `item_ptr[i]:item_ptr[i + 1]` of the dataset's item list.
    """

    months: tuple[_Month, ...]
    seed: int
    kind: Array  # index into KINDS
    strength: Array
    category: Array
    self_counts: Array  # (merchants, months) int64, exact
    dist_counts: Array
    live_days: Array  # (merchants, months): days with a self session >= 30 min
    short_sessions: Array  # (merchants, months): extra self sessions under 30 minutes
    two_weeks: Array  # squeeze the end month's live days into two ISO weeks
    void_live_end: Array  # every live-room order of the end month refunded or closed
    live_share: Array  # share of self orders placed in the live room when the merchant streams
    session_minutes: Array  # median self session length
    followers_per_hour: Array
    traffic: Array  # viewers per live minute
    conversion: Array  # chance a self order comes from an earlier distribution buyer
    review_rate: Array
    badness: Array  # 0 = flawless reviews, 1 = very bad
    complaint_rate: Array
    refund_rate: Array
    quality_share: Array  # share of refunds with a quality reason
    prom_ptr: Array
    prom_index: Array  # promoter of each (merchant, promoter) pair
    prom_cum: Array  # cumulative pair weights with a leading 0 (see _pick_in_groups)
    promoter_badness: Array
    item_ptr: Array
    item_price: Array  # yuan, most popular item of each merchant first
    item_cum: Array  # cumulative item popularity with a leading 0
    buyer_offsets: Array  # first local buyer index of each merchant in the global buyer space
    shared_buyers: int  # platform-wide buyers who shop at many merchants
    # (merchants, months): the factor on each self live-room order's amount (`sample --effect`); None: 1
    live_uplift: Array | None = None
    # the planted gaming of the end month (_plant_gaming); off when an exact order count is asked for
    gaming: bool = True

    @property
    def merchants(self) -> int:
        return len(self.kind)

    @property
    def promoters(self) -> int:
        return len(self.promoter_badness)


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
    effect: float = 0.0,
    late_refunds: bool = False,
) -> dict[str, Path]:
    """Write a deterministic synthetic dataset (orders, reviews, livestreams, shops) into `outdir`.

    The data covers the `months` calendar months ending with `end` (naive Asia/Shanghai times). With
    `orders`, the order count is exactly that number (spread over the merchants in proportion to their
    planned sizes); reviews follow at about 0.2 per order, promoters are half the merchants and products
    about five per merchant, while live sessions follow the merchant count (a few per merchant and month
    after the cast of 60), so a platform's three months are `merchants=500_000, orders=20_000_000`.
    `headers="zh"` writes the Chinese headers and values of the merchant backend and Chinese file names;
    `encoding` applies to CSV only. The same options always give byte-identical files. Returns table
    name → written file. `effect` plants a known causal effect of the grants (see _plant_effect); 0 plants
    nothing and leaves every byte as it was.
    """
    if fmt == "api":  # the same dataset as saved open-platform responses, converted by sample_api
        from functools import partial

        from chuanliu_cli.sample_api import write_api_sample

        same = partial(
            generate_sample, merchants=merchants, months=months, end=end, seed=seed, orders=orders,
            effect=effect, late_refunds=late_refunds,
        )  # fmt: skip
        return write_api_sample(outdir, headers, encoding, same)
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
    if orders is not None:  # `orders` is the exact count: nothing is planted beside it
        import dataclasses

        plan = dataclasses.replace(plan, gaming=False)
    if effect:
        plan = _plant_effect(plan, effect)
    if fmt == "xlsx" and int(plan.self_counts.sum() + plan.dist_counts.sum()) + 3 >= _XLSX_MAX_ROWS:
        raise UsageError(
            "an XLSX sheet holds at most 1,048,575 data rows; this sample has more orders",
            hint="use --format csv or --format parquet for large samples",
        )
    outdir.mkdir(parents=True, exist_ok=True)
    paths = {name: outdir / f"{FILE_STEMS[headers][name]}.{fmt}" for name in TABLES}
    _write_files(plan, paths, headers, encoding, fmt)
    if late_refunds:  # (after the dataset: it is chosen from the dataset's own reward list)
        paths["late_refunds"] = _write_late_refunds(plan, outdir, headers, encoding, fmt, end_period)
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
    n_months = len(months)
    last = n_months - 1
    n_promoters = max(_MIN_PROMOTERS, n // 2)
    # Zipf-like popularity: a few promoters carry for many merchants, most for one or two.
    popularity = 1.0 / (np.arange(n_promoters) + 2.0) ** 0.9
    promoter_badness = rng.uniform(0.0, 0.02, n_promoters)
    # The last promoter over-promises: its buyers rate badly, which sinks its 带货口碑分 below the
    # reputation gate. It works only for the poor_experience merchants (see _plan_promoters), so that it
    # collects enough reviews to be scored and spoils no other merchant's store experience.
    promoter_badness[_BAD_PROMOTER] = 0.6
    popularity[_BAD_PROMOTER] = 0.0

    index = np.arange(n, dtype=np.int64)
    n_cast = min(n, len(_CAST))
    cast = index < n_cast
    code = {k: c for c, k in enumerate(KINDS)}
    kind = np.empty(n, dtype=np.int64)
    strength = np.empty(n)
    kind[:n_cast] = [code[k] for k, _ in _CAST[:n_cast]]
    strength[:n_cast] = [s for _, s in _CAST[:n_cast]]
    n_platform = n - n_cast
    mix = np.array([_PLATFORM_MIX[k] for k in KINDS])
    kind[n_cast:] = rng.choice(len(KINDS), n_platform, p=mix / mix.sum())
    # Most shops are small: strength from a beta skewed towards 0 (mean 0.27).
    strength[n_cast:] = rng.beta(1.1, 3.0, n_platform)

    def is_(*names: str) -> Array:
        return np.isin(kind, [code[k] for k in names])

    star = is_("star", "leader")  # a leader is a star selling everyday goods
    strength[~cast & star] = 0.9 + 0.1 * strength[~cast & star]
    strength[is_("closed_store")] = 0.0
    s = strength
    # A merchant's size: lognormal noise around its strength; wide after the cast, which together with
    # the beta strengths gives the heavy tail of order counts a platform has.
    noise = np.exp(rng.normal(0.0, 1.0, n) * np.where(cast, 0.25, 0.8))
    category = np.empty(n, dtype=np.int64)
    category[:n_cast] = [int(c) for c in _CAST_CATEGORIES[:n_cast]]
    drawn = rng.integers(0, len(CATEGORIES) - 1, n_platform)
    category[n_cast:] = drawn + (drawn >= _STAR_CATEGORIES[0])  # jewellery is for stars
    platform_star = ~cast & is_("star")
    category[platform_star] = np.array(_STAR_CATEGORIES)[index[platform_star] % 2]

    # Self orders in the end month: 10 (weak) to 250 (strong) at typical prices; stars sell more.
    end_self = np.where(star, 180.0 + 90 * s, 9.0 * 20.0**s) * noise
    growth = np.clip(-0.15 + 1.0 * s + rng.normal(0, 0.12, n), -0.5, 1.3)
    growth = np.where(star, 0.9 + 0.3 * s, growth)
    leader = is_("leader")
    growth[leader] = 1.3
    age = (n_months - 1 - np.arange(n_months))[None, :]
    self_orders = end_self[:, None] / (1.0 + growth[:, None]) ** age
    dist_ratio = np.where(star, 1.4, 0.2 + 1.2 * s) * rng.lognormal(0.0, 0.2, n)
    dist_orders = self_orders * dist_ratio[:, None]
    # The cast streams steadily (7 to 26 days); after it, weak shops stream a few days or none.
    jitter = rng.normal(0.0, 1.0, n)
    base_days = np.where(cast, np.round(7 + 19 * s + 1.5 * jitter), np.round(-6 + 24 * s + 2 * jitter))
    base_days = np.where(leader, 27, np.where(star, 25, base_days)).astype(np.int64)
    live_days = np.clip(base_days[:, None] + rng.integers(-2, 3, (n, n_months)), 0, 27)
    short = rng.integers(0, 3, (n, n_months))
    short[~cast] = np.minimum(short[~cast], 1) * (base_days[~cast, None] > 0)
    live_share = rng.uniform(0.55, 0.8, n)
    n_prom = np.where(star, 28 + index % 5, np.maximum(1, np.round(1 + 24 * s**2))).astype(np.int64)
    badness = rng.uniform(0.0, 0.03, n)
    complaint_rate = rng.uniform(0.0, 0.004, n)
    refund_rate = rng.uniform(0.05, 0.09, n)
    quality_share = rng.uniform(0.1, 0.25, n)
    review_rate = rng.uniform(0.18, 0.28, n)
    conversion = np.where(star, 0.6, 0.05 + 0.45 * s)
    conversion[leader], n_prom[leader] = 0.7, 40
    two_weeks = is_("two_weeks_live")
    void_live_end = is_("no_live_sales")

    # Exemplary apart from their one flaw, so that they fail exactly one gate.
    one = is_(*_ONE_GATE_KINDS)
    badness[one], complaint_rate[one], refund_rate[one], quality_share[one] = 0.0, 0.0, 0.05, 0.05
    dist_orders[is_("no_distribution", "lapsed", "closed_store")] = 0.0
    sporadic = is_("sporadic_live")
    live_days[sporadic], short[sporadic] = 5, 5
    live_days[two_weeks, last] = 11
    poor = is_("poor_experience")
    badness[poor], complaint_rate[poor], refund_rate[poor], quality_share[poor] = 0.7, 0.06, 0.14, 0.6
    review_rate[poor] = 0.3
    lapsed = is_("lapsed")
    self_orders[lapsed, last] = 0.0
    live_days[lapsed, last], short[lapsed, last] = 0, 0
    card = is_("card_only")
    live_share[card], live_days[card], short[card] = 0.0, 0, 0
    short_kind = is_("short_sessions")
    live_days[short_kind], short[short_kind] = 6, 14
    new = is_("new_store")
    self_orders[new], dist_orders[new] = 0.0, 0.0
    self_orders[new, last], dist_orders[new, last] = 14.0, 6.0
    live_days[new], short[new] = 0, 0
    live_days[new, last] = 10
    closed = is_("closed_store")
    self_orders[closed], live_days[closed], short[closed] = 0.0, 0, 0

    prom_ptr, prom_index = _plan_promoters(rng, kind, n_prom, popularity)
    prom_weight = rng.lognormal(0.0, 0.8, len(prom_index))
    n_items = 3 + np.round(12 * s).astype(np.int64) + 8 * star
    item_ptr = np.concatenate([[0], np.cumsum(n_items)]).astype(np.int64)
    item_owner = np.repeat(index, n_items)
    prices = np.array([c[1] for c in CATEGORIES])
    item_price = prices[category[item_owner]] * rng.lognormal(0.0, 0.55, len(item_owner))
    item_rank = np.arange(len(item_owner)) - item_ptr[item_owner]

    expected = np.concatenate([self_orders, dist_orders])
    # The flagship's boundary rows come on top of the drawn orders; `--orders` counts them too.
    total = round(float(expected.sum())) if target is None else max(0, target - _anchor_count(months))
    counts = _largest_remainder(expected.ravel(), total).reshape(expected.shape)
    self_counts, dist_counts = counts[:n], counts[n:]
    # Each merchant's local buyers: distribution buyers first, then self-only buyers (see _buyers).
    sizes = np.ceil(0.85 * dist_counts.sum(axis=1)) + np.ceil(0.75 * self_counts.sum(axis=1)) + 2
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    return _Plan(
        months=months,
        seed=seed,
        kind=kind,
        strength=strength,
        category=category,
        self_counts=self_counts,
        dist_counts=dist_counts,
        live_days=live_days.astype(np.int64),
        short_sessions=short.astype(np.int64),
        two_weeks=two_weeks,
        void_live_end=void_live_end,
        live_share=live_share,
        session_minutes=np.where(star, 200.0, 60.0 + 150.0 * s),
        followers_per_hour=np.where(star, 130.0, 10.0 + 90.0 * s),
        traffic=20.0 + 300.0 * s,
        conversion=conversion,
        review_rate=review_rate,
        badness=badness,
        complaint_rate=complaint_rate,
        refund_rate=refund_rate,
        quality_share=quality_share,
        prom_ptr=prom_ptr,
        prom_index=prom_index,
        prom_cum=_cumulative(prom_weight),
        promoter_badness=promoter_badness,
        item_ptr=item_ptr,
        item_price=item_price,
        item_cum=_cumulative(1.0 / (item_rank + 1.0)),
        buyer_offsets=offsets,
        shared_buyers=max(50, int(counts.sum()) // 50),
    )


def _plan_promoters(rng: Rng, kind: Array, wanted: Array, popularity: Array) -> tuple[Array, Array]:
    """The promoters of each merchant, as (pointer, promoter index) arrays grouped by merchant.

    Up to `wanted` distinct promoters each, by popularity: three times as many draws with replacement,
    of which the first distinct ones are kept (a weighted choice without replacement, for all merchants at
    once). Merchants that never distribute have none; poor_experience merchants only the bad promoter.
    """
    import numpy as np

    n_promoters = len(popularity)
    index = np.arange(len(kind), dtype=np.int64)
    none = np.isin(kind, [KINDS.index(k) for k in ("no_distribution", "lapsed", "closed_store")])
    poor = kind == KINDS.index("poor_experience")
    normal = index[~none & ~poor]
    wanted = np.minimum(wanted, np.count_nonzero(popularity))
    draws = 3 * wanted[normal]
    owner = np.repeat(normal, draws)
    cdf = np.cumsum(popularity) / popularity.sum()
    pick = np.searchsorted(cdf, rng.random(len(owner)), side="right")
    pick = np.minimum(pick, n_promoters - 2)  # never the bad promoter, even at cdf's last rounding
    _, first = np.unique(owner * n_promoters + pick, return_index=True)
    first.sort()  # first occurrences in draw order, still grouped by merchant
    owner, pick = owner[first], pick[first]
    start = np.searchsorted(owner, owner, side="left")
    keep = (np.arange(len(owner)) - start) < wanted[owner]
    owner = np.concatenate([owner[keep], index[poor]])
    pick = np.concatenate([pick[keep], np.full(int(poor.sum()), n_promoters + _BAD_PROMOTER)])
    order = np.argsort(owner, kind="stable")
    ptr = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=len(kind)))]).astype(np.int64)
    return ptr, pick[order].astype(np.int64)


def _cumulative(weights: Array) -> Array:
    import numpy as np

    return np.concatenate([[0.0], np.cumsum(weights, dtype=np.float64)])


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


def _plant_effect(plan: _Plan, effect: float) -> _Plan:
    """The plan with a known causal effect of the grants planted (SPEC §12, `sample --effect E`).

    In the month after each month, every self live-room order of a merchant is worth (1 + E × g / c) times
    as much, where g is the merchant's grant in the bundled ruleset's reward list of that month (the
    merchant scorecard) and c its cap: so its self live-room GMV is multiplied by that factor, on top of its
    own trend. The grants are those the real pipeline gives the generated data, so the months are planted
    in order: month k is written (with the uplift of months up to k), scored, and its grants fix the uplift
    of month k + 1. Only amounts change (every random draw stays the same), so a month's data never
    depends on later grants. The first month's data is written (Parquet, in a temporary directory) and
    loaded whole; each later month's load is of the rows its uplift may change (_planted_rows), which the
    loader puts in place of the stored ones: the database is then the one a whole load would give.
    """
    import dataclasses
    import tempfile
    from functools import partial

    import numpy as np

    if not -1.0 < effect <= 10.0:
        raise UsageError(f"--effect must be above -1 and at most 10, got {effect}")
    from chuanliu_cli.ingest.discover import discover
    from chuanliu_cli.ingest.loader import LoadOptions, load_files
    from chuanliu_cli.rules.effective import ruleset_for_period
    from chuanliu_cli.scoring.pipeline import score_period
    from chuanliu_cli.store.database import memory_database

    uplift = np.ones((plan.merchants, len(plan.months)))
    index = {key: i for i, key in enumerate(_Output.build(plan, "en").shop_ids.to_list())}
    # what `eligible --data` does: the exports validated like `load`, the version in force scored
    db = memory_database(None)
    try:
        with tempfile.TemporaryDirectory(prefix="chuanliu-effect-") as tmp:
            for k, month in enumerate(plan.months[:-1]):
                planted = dataclasses.replace(plan, live_uplift=uplift.copy())
                folder = Path(tmp) / f"month-{k}"
                if k == 0:  # every row, none planted yet
                    _write_parquet(planted, folder)
                elif (uplift[:, k] != 1.0).any():  # only the rows the grants of month k - 1 changed
                    _write_parquet(planted, folder, partial(_planted_rows, planted, k))
                if folder.exists():
                    # (a planted amount can be smaller than before: an effect below 0)
                    load_files(db, discover(folder), LoadOptions(allow_regress=True))
                ruleset, period = ruleset_for_period(None, month.period.label, check=True)
                result = score_period(db.con, ruleset, period, upto="merchant").scorecards["merchant"]
                reward = result.scorecard.reward
                if reward is None or not reward.cap:
                    raise UsageError(
                        "--effect needs the bundled ruleset's merchant scorecard to have a reward cap"
                    )
                rows = result.frame.filter(result.frame["grant"].fill_null(0) > 0)
                merchant = np.array([index[key] for key in rows["shop_id"].to_list()], dtype=np.int64)
                uplift[merchant, k + 1] = 1.0 + effect * rows["grant"].to_numpy() / reward.cap
    finally:
        db.con.close()
    return dataclasses.replace(plan, live_uplift=uplift)


# --------------------------------------------------------------------------------------------------
# Generation: a block of merchants at a time, all months, so that buyers can convert across months.


_NULL = -1  # integer arrays use -1 for "no value" (promoter, refund, reason, commission, session)
_XLSX_MAX_ROWS = 1_048_576
#: Merchants per seeded generator. Fixed: the rows depend on it, never on how blocks are written.
_BLOCK = 256
_CHUNK_ORDERS = 500_000  # orders per write: bounds memory at any sample size

# Identifier schemes for _scramble: (digits, multiplier, offset). Order numbers have 16 digits, about
# one in ten with a leading zero, which is what breaks tools that read identifiers as numbers.
_ORDER_IDS = (16, 3_791_854_216_734_917, 4_830_129_377_205_611)
_REVIEW_IDS = (15, 91_487_326_651_391, 517_300_442_981_736)
_LIVE_IDS = (12, 615_820_749_373, 104_557_311_860)
_BUYER_IDS = (10, 7_340_041_927, 5_217_904_613)
_ITEM_IDS = (11, 52_708_183_337, 20_481_736_259)
_PROMOTER_IDS = (8, 48_271_939, 10_300_000)

_Cols = dict[str, "Array"]


@dataclass
class _Rows:
    """Column arrays of one or more blocks, sorted by time, with their final identifiers."""

    orders: _Cols
    reviews: _Cols
    sessions: _Cols

    @property
    def n_orders(self) -> int:
        return len(self.orders["order_id"])


@dataclass
class _Cells:
    """The (merchant, month) cells of one block, merchant-major, and the month arrays they index."""

    merchant: Array  # global merchant index of each cell
    month: Array  # month index of each cell
    month_start: Array  # epoch seconds per month
    month_days: Array
    first: int  # first merchant of the block


def _write_files(
    plan: _Plan,
    paths: dict[str, Path],
    headers: Headers,
    encoding: Encoding,
    fmt: Format,
    select: Callable[[_Rows], _Rows] | None = None,
) -> None:
    """Generate the dataset into `paths` (table → file; a table not in it is not written), `select`: only
    those rows of each block."""
    end = plan.months[-1].period.end
    writers = {
        name: _open_writer(path, TABLES[name], headers, encoding, fmt, end) for name, path in paths.items()
    }
    try:
        _write_all(plan, writers, headers, select)
    finally:
        for writer in writers.values():
            writer.close()


def _write_parquet(plan: _Plan, folder: Path, select: Callable[[_Rows], _Rows] | None = None) -> None:
    """The dataset as Parquet files with canonical headers in `folder` (`select`: only those rows of each
    block, and no shops file)."""
    folder.mkdir(parents=True)
    names = [name for name in TABLES if select is None or name != "shops"]
    paths = {name: folder / f"{FILE_STEMS['en'][name]}.parquet" for name in names}
    _write_files(plan, paths, "en", "utf-8", "parquet", select)


def _planted_rows(plan: _Plan, k: int, rows: _Rows) -> _Rows:
    """The rows of a block that the uplift of month k can change: the self live-room orders of the
    merchants it plants (every order of a session of month k, which may end in the next month), the
    sessions of month k (their gmv) and the reviews of those orders. A few more rows than change (the
    orders of a session of month k - 1 that ran past midnight): the loader keeps rows that are equal."""
    import numpy as np

    month = plan.months[k]
    assert plan.live_uplift is not None
    planted = plan.live_uplift[:, k] != 1.0
    s = rows.sessions
    sessions = planted[s["merchant"]] & (s["start"] >= month.start) & (s["start"] < month.end)
    ends = s["start"][sessions] + s["minutes"][sessions] * 60
    until = int(ends.max()) if len(ends) else month.end
    o = rows.orders
    orders = (
        planted[o["merchant"]]
        & (o["mode"] == SALE_MODES.index("self"))
        & (o["carrier"] == CARRIERS.index("live"))
        & (o["time"] >= month.start)
        & (o["time"] < max(until, month.end))
    )
    reviews = np.isin(rows.reviews["order_id"], o["order_id"][orders])
    return _Rows(
        {c: v[orders] for c, v in o.items()},
        {c: v[reviews] for c, v in rows.reviews.items()},
        {c: v[sessions] for c, v in s.items()},
    )


def _write_all(
    plan: _Plan,
    writers: dict[str, _Writer],
    headers: Headers,
    select: Callable[[_Rows], _Rows] | None = None,
) -> None:
    """Generate the blocks in order, writing whenever the pending blocks hold enough orders (`select`:
    only those rows of each block; the shops are written when `writers` has them).

    Formatting and writing a chunk (polars, pyarrow: they release the GIL) runs on one background thread
    while numpy draws the next chunk; one thread keeps the writes in order, and waiting for the previous
    write before handing over the next bounds memory to two chunks.
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    counters = {"orders": 0, "reviews": 0, "livestreams": 0}
    output = _Output.build(plan, headers)
    pending: list[_Rows] = []
    size = 0
    with ThreadPoolExecutor(max_workers=1) as pool:
        previous: Future[None] | None = None

        def hand_over(rows: _Rows) -> None:
            nonlocal previous
            if previous is not None:
                previous.result()  # re-raises a failed write here
            previous = pool.submit(output.write, rows, writers)

        for block in range((plan.merchants + _BLOCK - 1) // _BLOCK):
            rows = _block_rows(plan, block, counters)
            if select is not None:
                rows = select(rows)
            pending.append(rows)
            size += rows.n_orders
            if size >= _CHUNK_ORDERS:
                hand_over(_concat_rows(pending))
                pending, size = [], 0
        if pending:
            hand_over(_concat_rows(pending))
        if previous is not None:
            previous.result()
    if "shops" in writers:
        writers["shops"].write(output.shops())


def _concat(parts: list[_Cols]) -> _Cols:
    import numpy as np

    parts = [p for p in parts if p]
    if not parts:
        return {}
    if len(parts) == 1:
        return parts[0]
    return {col: np.concatenate([p[col] for p in parts]) for col in parts[0]}


def _concat_rows(parts: list[_Rows]) -> _Rows:
    return _Rows(
        _concat([p.orders for p in parts]),
        _concat([p.reviews for p in parts]),
        _concat([p.sessions for p in parts]),
    )


def _block_rows(plan: _Plan, block: int, counters: dict[str, int]) -> _Rows:
    """Every row of merchants [block × _BLOCK, (block + 1) × _BLOCK), drawn with the block's own generator."""
    import numpy as np

    rng = np.random.default_rng([plan.seed, 1, block])
    first = block * _BLOCK
    last = min(plan.merchants, first + _BLOCK)
    n_months = len(plan.months)
    merchant = np.repeat(np.arange(first, last, dtype=np.int64), n_months)
    cells = _Cells(
        merchant=merchant,
        month=np.tile(np.arange(n_months, dtype=np.int64), last - first),
        month_start=np.array([m.start for m in plan.months], dtype=np.int64),
        month_days=np.array([m.days for m in plan.months], dtype=np.int64),
        first=first,
    )
    self_live = _self_sessions(plan, cells, rng)
    dist = _distribution_orders(plan, cells, rng)
    prom = _promoter_sessions(plan, cells, dist, len(self_live["start"]), rng)
    self_ = _self_orders(plan, cells, self_live, rng)
    if plan.live_uplift is not None:  # (after every draw: the planted effect changes amounts only)
        factor = np.where(
            self_["carrier"] == 0, plan.live_uplift[self_["merchant"], cells.month[self_["cell"]]], 1
        )
        self_["paid"] = np.maximum(np.round(self_["paid"] * factor), 1).astype(np.int64)
    _buyers(plan, cells, dist, self_, rng)
    orders = _concat([dist, self_])
    end = plan.months[-1].end
    _statuses(plan, orders, end, plan.months[-1].start, rng)
    reviews = _reviews(plan, orders, end, rng)
    if first == 0:
        orders, reviews = _flagship_anchors(plan, orders, reviews)
    sessions = _concat([self_live, prom])
    if first == 0 and plan.gaming:
        orders, reviews, sessions = _plant_gaming(plan, orders, reviews, sessions)
    # A session's gmv is the paid amount of the orders placed during it.
    linked = orders["session"] >= 0
    sessions["gmv"] = np.bincount(
        orders["session"][linked], weights=orders["paid"][linked], minlength=len(sessions["start"])
    ).astype(np.int64)
    return _number(orders, reviews, sessions, counters)


def _number(orders: _Cols, reviews: _Cols, sessions: _Cols, counters: dict[str, int]) -> _Rows:
    """Sort each table of a block by time and give its rows identifiers from the running counters."""
    import numpy as np

    def sequence(name: str, n: int, scheme: tuple[int, int, int]) -> Array:
        ids = _scramble(np.arange(n, dtype=np.int64) + counters[name], *scheme)
        counters[name] += n
        return ids

    order_sort = np.argsort(orders["time"], kind="stable")
    id_of_row = np.empty(len(order_sort), dtype=np.int64)
    id_of_row[order_sort] = sequence("orders", len(order_sort), _ORDER_IDS)
    columns = ("merchant", "buyer", "item", "promoter", "mode", "carrier", "time", "paid", "quantity")
    out_orders = {"order_id": id_of_row[order_sort]}
    out_orders.update({c: orders[c][order_sort] for c in (*columns, "status", "refund", "reason")})
    out_orders["commission"] = orders["commission"][order_sort]
    review_sort = np.argsort(reviews["time"], kind="stable")
    row = reviews["order"][review_sort]
    out_reviews = {
        "review_id": sequence("reviews", len(review_sort), _REVIEW_IDS),
        "order_id": id_of_row[row],
        "merchant": orders["merchant"][row],
        "item": orders["item"][row],
        "promoter": orders["promoter"][row],
    }
    for c in ("quality", "logistics", "service", "time", "complaint"):
        out_reviews[c] = reviews[c][review_sort]
    session_sort = np.argsort(sessions["start"], kind="stable")
    out_sessions = {"live_id": sequence("livestreams", len(session_sort), _LIVE_IDS)}
    for c in ("merchant", "host", "promoter", "start", "minutes", "viewers", "followers", "gmv"):
        out_sessions[c] = sessions[c][session_sort]
    return _Rows(out_orders, out_reviews, out_sessions)


def _pick_in_groups(rng: Rng, group: Array, ptr: Array, cum: Array) -> Array:
    """For each draw, an index in [ptr[g], ptr[g + 1]) of its group g, chosen with probability ∝ weight.

    `cum` is the running sum of all groups' weights with a leading 0, so a group's weights are one slice
    of it: a uniform draw inside the slice's range, located by binary search, is the weighted choice.
    """
    import numpy as np

    lo = cum[ptr[group]]
    hi = cum[ptr[group + 1]]
    target = lo + rng.random(len(group)) * (hi - lo)
    pick = np.searchsorted(cum, target, side="right") - 1
    return np.clip(pick, ptr[group], ptr[group + 1] - 1)


def _choice(rng: Rng, p: tuple[float, ...] | list[float], n: int) -> Array:
    """`n` draws of 0..len(p)-1 with probabilities `p` (inverse CDF; rng.choice's speed without its copy)."""
    import numpy as np

    cdf = np.cumsum(p) / np.sum(p)
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(p) - 1).astype(np.int64)


def _distinct_days(
    rng: Rng, counts: Array, cells: _Cells, two_weeks: Array | None = None, force_last: Array | None = None
) -> tuple[Array, Array]:
    """`counts[c]` distinct days of each cell's month, as (cell, day offset) sorted by cell then day.

    Random keys for every day of the month, the smallest `counts[c]` taken. Two-week cells draw only from
    the two ISO weeks after the month's first Monday with one day forced into each, so that live_weeks
    is exactly 2; `force_last` cells always include the month's last day.
    """
    import numpy as np

    rows = len(counts)
    days = cells.month_days[cells.month]
    keys = rng.random((rows, 31))
    day = np.arange(31)[None, :]
    valid = day < days[:, None]
    if two_weeks is not None and two_weeks.any():
        tw = np.flatnonzero(two_weeks)
        weekday = (cells.month_start[cells.month[tw]] // 86400 + 3) % 7  # 1970-01-01 was a Thursday
        monday = (7 - weekday) % 7  # first Monday on or after the 1st
        stop = np.minimum(monday + 14, days[tw])
        valid[tw] &= (day >= monday[:, None]) & (day < stop[:, None])
        full = (stop - monday == 14) & (counts[tw] >= 2)
        week1 = monday + rng.integers(0, 7, len(tw))
        week2 = monday + 7 + rng.integers(0, 7, len(tw))
        keys[tw[full], week1[full]] = -1.0
        keys[tw[full], week2[full]] = -1.0
    if force_last is not None:
        fl = np.flatnonzero(force_last & (counts > 0))
        keys[fl, days[fl] - 1] = -1.0
    keys[~valid] = 2.0
    rank = np.argsort(np.argsort(keys, axis=1, kind="stable"), axis=1, kind="stable")
    cell, offset = np.nonzero(valid & (rank < counts[:, None]))
    return cell.astype(np.int64), offset.astype(np.int64)


def _session_starts(
    rng: Rng, start_of_day: Array, minutes: Array, first: int = 540, last_end: int = 1439
) -> Array:
    """Start times from minute-of-day `first` on, ending by `last_end` (default 09:00–23:59), skewed late."""
    import numpy as np

    n = len(start_of_day)
    room = np.maximum(last_end - minutes - first, 0)
    start_min = first + np.floor(rng.beta(2.5, 1.3, n) * room)
    return start_of_day + start_min.astype(np.int64) * 60 + rng.integers(0, 60, n)


def _self_sessions(plan: _Plan, cells: _Cells, rng: Rng) -> _Cols:
    """The merchants' own sessions, grouped by cell (`ptr` gives each cell's slice; `cum` its minutes).

    One live room never hosts two sessions at once, so each kind has its own time slot: the main session
    from 13:00, a second morning session on some live days (09:00–12:30), and test streams under 30
    minutes (07:00–09:00) on any days, which count for live_hours but not for live_days.
    """
    import numpy as np

    m, k = cells.merchant, cells.month
    n_months = len(plan.months)
    live = plan.live_days[m, k]
    two_weeks = plan.two_weeks[m] & (k == n_months - 1)
    flagship = (m == 0) & (k == n_months - 1)  # streams on the last day: the period is complete
    main_cell, main_day = _distinct_days(rng, live, cells, two_weeks, flagship)
    main_m = m[main_cell]
    main = np.exp(np.log(plan.session_minutes[main_m]) + 0.35 * rng.normal(0.0, 1.0, len(main_cell)))
    main = np.clip(np.round(main), 30, 360)
    second = rng.random(len(main_cell)) < 0.15
    second_cell, second_day = main_cell[second], main_day[second]
    second_minutes = np.clip(np.round(rng.lognormal(math.log(60), 0.4, len(second_cell))), 30, 120)
    short_cell, short_day = _distinct_days(rng, plan.short_sessions[m, k], cells)
    short_minutes = rng.integers(5, 30, len(short_cell))
    cell = np.concatenate([main_cell, second_cell, short_cell])
    minutes = np.concatenate([main, second_minutes, short_minutes]).astype(np.int64)
    day_start = cells.month_start[k[cell]] + np.concatenate([main_day, second_day, short_day]) * 86400
    n1, n2 = len(main_cell), len(main_cell) + len(second_cell)
    start = np.concatenate(
        [
            _session_starts(rng, day_start[:n1], minutes[:n1], first=780),
            _session_starts(rng, day_start[n1:n2], minutes[n1:n2], first=540, last_end=750),
            _session_starts(rng, day_start[n2:], minutes[n2:], first=420, last_end=539),
        ]
    )
    merchant = m[cell]
    n = len(cell)
    viewers = np.round(minutes * plan.traffic[merchant] * rng.lognormal(0.0, 0.5, n)).astype(np.int64)
    followers = rng.poisson(minutes / 60.0 * plan.followers_per_hour[merchant]).astype(np.int64)
    order = np.argsort(cell, kind="stable")
    return {
        "cell": cell[order],
        "merchant": merchant[order],
        "host": np.zeros(n, dtype=np.int64),
        "promoter": np.full(n, _NULL, dtype=np.int64),
        "start": start[order],
        "minutes": minutes[order],
        "viewers": viewers[order],
        "followers": followers[order],
    }


def _random_times(rng: Rng, cells: _Cells, cell: Array) -> Array:
    """Order times outside live sessions: uniform days, the hour-of-day profile of a shopping app."""
    n = len(cell)
    k = cells.month[cell]
    hour = _choice(rng, _HOUR_WEIGHTS, n)
    day = (rng.random(n) * cells.month_days[k]).astype("int64")
    return cells.month_start[k] + day * 86400 + hour * 3600 + rng.integers(0, 3600, n)


def _order_block(plan: _Plan, cells: _Cells, counts: Array, mode: int, rng: Rng) -> _Cols:
    """`counts[c]` orders of each cell: items, amounts, quantities (times, carriers, buyers: the caller)."""
    import numpy as np

    cell = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    merchant = cells.merchant[cell]
    n = len(cell)
    item = _pick_in_groups(rng, merchant, plan.item_ptr, plan.item_cum)
    quantity = _choice(rng, (0.85, 0.11, 0.04), n) + 1
    paid = np.round(plan.item_price[item] * quantity * rng.lognormal(0.0, 0.1, n) * 100).astype(np.int64)
    return {
        "cell": cell,
        "merchant": merchant,
        "time": np.zeros(n, dtype=np.int64),
        "buyer": np.zeros(n, dtype=np.int64),
        "item": item,
        "promoter": np.full(n, _NULL, dtype=np.int64),
        "mode": np.full(n, mode, dtype=np.int64),
        "carrier": np.zeros(n, dtype=np.int64),
        "paid": np.maximum(paid, 1),
        "quantity": quantity,
        "session": np.full(n, _NULL, dtype=np.int64),
    }


def _distribution_orders(plan: _Plan, cells: _Cells, rng: Rng) -> _Cols:
    import numpy as np

    counts = plan.dist_counts[cells.merchant, cells.month]
    block = _order_block(plan, cells, counts, 1, rng)
    n = len(block["cell"])
    block["carrier"] = _choice(rng, (0.55, 0.35, 0.07, 0.03), n)
    block["time"] = _random_times(rng, cells, block["cell"])
    # Merchants without promoters plan no distribution orders, so every order here has a promoter.
    pair = _pick_in_groups(rng, block["merchant"], plan.prom_ptr, plan.prom_cum)
    block["promoter"] = plan.prom_index[pair]
    block["pair"] = pair.astype(np.int64)
    return block


def _promoter_sessions(plan: _Plan, cells: _Cells, dist: _Cols, base: int, rng: Rng) -> _Cols:
    """Promoter live sessions selling the merchants' goods; live distribution orders move into them.

    Each (merchant, promoter, month) with live orders gets about one session per six orders, at least one
    and at most three, so that session counts follow the merchant count rather than the order count in
    large samples. Session keys start at `base` (after the block's self sessions).
    """
    import numpy as np

    pair = dist.pop("pair")
    live = np.flatnonzero(dist["carrier"] == 0)
    n_months = len(plan.months)
    key = pair[live] * n_months + cells.month[dist["cell"][live]]
    groups, group_of_order, size = np.unique(key, return_inverse=True, return_counts=True)
    per_group = np.clip(np.round(size / 6), 1, 3).astype(np.int64)
    group = np.repeat(np.arange(len(groups), dtype=np.int64), per_group)
    n = len(group)
    ptr = np.concatenate([[0], np.cumsum(per_group)]).astype(np.int64)
    group_pair = groups // n_months
    group_month = groups % n_months
    minutes = np.clip(np.round(rng.lognormal(math.log(150), 0.4, n)), 30, 360)
    short = rng.random(n) < 0.06
    minutes[short] = rng.integers(10, 30, int(short.sum()))
    minutes = minutes.astype(np.int64)
    k = group_month[group]
    day = (rng.random(n) * cells.month_days[k]).astype(np.int64)
    start = _session_starts(rng, cells.month_start[k] + day * 86400, minutes)
    session = _pick_in_groups(rng, group_of_order.ravel(), ptr, _cumulative(minutes))
    dist["time"][live] = start[session] + (rng.random(len(live)) * minutes[session] * 60).astype(np.int64)
    dist["session"][live] = session + base
    # The merchant of a pair: the pointer interval that holds it.
    merchant = np.searchsorted(plan.prom_ptr, group_pair[group], side="right") - 1
    return {
        "cell": np.full(n, _NULL, dtype=np.int64),
        "merchant": merchant.astype(np.int64),
        "host": np.ones(n, dtype=np.int64),
        "promoter": plan.prom_index[group_pair[group]],
        "start": start,
        "minutes": minutes,
        "viewers": np.round(minutes * 400 * rng.lognormal(0.0, 0.6, n)).astype(np.int64),
        "followers": rng.poisson(minutes / 60.0 * 150).astype(np.int64),
    }


def _self_orders(plan: _Plan, cells: _Cells, sessions: _Cols, rng: Rng) -> _Cols:
    import numpy as np

    counts = plan.self_counts[cells.merchant, cells.month]
    block = _order_block(plan, cells, counts, 0, rng)
    cell, merchant = block["cell"], block["merchant"]
    n = len(cell)
    ptr = np.searchsorted(sessions["cell"], np.arange(len(counts) + 1), side="left")
    has_live = (ptr[1:] - ptr[:-1]) > 0
    live = (rng.random(n) < plan.live_share[merchant]) & has_live[cell]
    carrier = _choice(rng, (0.3, 0.6, 0.1), n) + 1
    carrier[live] = 0
    block["carrier"] = carrier
    block["time"] = _random_times(rng, cells, cell)
    rows = np.flatnonzero(live)
    session = _pick_in_groups(rng, cell[rows], ptr, _cumulative(sessions["minutes"]))
    block["time"][rows] = sessions["start"][session] + (
        rng.random(len(rows)) * sessions["minutes"][session] * 60
    ).astype(np.int64)
    block["session"][rows] = session
    return block


def _buyers(plan: _Plan, cells: _Cells, dist: _Cols, self_: _Cols, rng: Rng) -> None:
    """Assign buyers so that some self orders come from buyers a promoter brought in earlier.

    Distribution orders draw from the merchant's distribution buyers; a self order converts with the
    merchant's conversion chance, picking a buyer whose first distribution order is strictly earlier.
    """
    import numpy as np

    first = cells.first
    n_local = len(cells.merchant) // len(plan.months)
    merchants = np.arange(first, first + n_local)
    d_size = np.maximum(1, np.ceil(0.85 * plan.dist_counts[merchants].sum(axis=1))).astype(np.int64)
    s_size = np.maximum(1, np.ceil(0.75 * plan.self_counts[merchants].sum(axis=1))).astype(np.int64)
    base = plan.shared_buyers + plan.buyer_offsets[merchants]
    t0 = int(cells.month_start[0])
    dm = dist["merchant"] - first
    local = rng.integers(0, d_size[dm])
    # First distribution order of each (merchant, buyer), then each merchant's buyers by that time.
    pair_key = dm * (1 << 32) + local
    by_pair = np.lexsort((dist["time"], pair_key))
    new = np.ones(len(by_pair), dtype=bool)
    new[1:] = pair_key[by_pair][1:] != pair_key[by_pair][:-1]
    firsts = by_pair[new]
    time_key = dm[firsts] * (1 << 32) + (dist["time"][firsts] - t0)
    by_time = np.argsort(time_key, kind="stable")
    time_key, buyer_of = time_key[by_time], local[firsts][by_time]
    dist["buyer"] = local + base[dm]
    sm = self_["merchant"] - first
    own = d_size[sm] + rng.integers(0, s_size[sm])
    earlier_end = np.searchsorted(time_key, sm * (1 << 32) + (self_["time"] - t0), side="left")
    merchant_start = np.searchsorted(time_key, sm * (1 << 32), side="left")
    earlier = earlier_end - merchant_start
    convert = (rng.random(len(sm)) < plan.conversion[self_["merchant"]]) & (earlier > 0)
    pick = merchant_start + (rng.random(len(sm)) * earlier).astype(np.int64)
    own[convert] = buyer_of[pick[convert]]
    self_["buyer"] = own + base[sm]
    # A few orders come from platform-wide shoppers who buy from many merchants.
    for block in (dist, self_):
        shared = rng.random(len(block["time"])) < 0.03
        block["buyer"][shared] = rng.integers(0, plan.shared_buyers, int(shared.sum()))


def _anchor_count(months: tuple[_Month, ...]) -> int:
    return 3 if len(months) > 1 else 2


def _flagship_anchors(plan: _Plan, orders: _Cols, reviews: _Cols) -> tuple[_Cols, _Cols]:
    """The flagship's boundary orders and the two reviews that make the period complete.

    The orders: the end month's first and last second, and the previous month's last (what period-window
    bugs trip over: half-open [start, end) windows). A five-star review of the first-second order on the
    end month's last evening; and a review three hours after the flagship's first delivered order, so
    that the reviews start with the data (SPEC §6 calls the end month complete only when reviews cover
    its 90-day windows from their first day).
    """
    import numpy as np

    months = plan.months
    last = months[-1]
    times = [last.start, last.end - 1]
    if len(months) > 1:
        times.insert(0, months[-2].end - 1)
    n = len(times)
    paid = np.array([16800, 29900, 8800][:n], dtype=np.int64)
    completed, paid_status = STATUSES.index("completed"), STATUSES.index("paid")
    anchors = {
        "cell": np.full(n, _NULL, dtype=np.int64),
        "merchant": np.zeros(n, dtype=np.int64),
        "time": np.array(times, dtype=np.int64),
        "buyer": np.arange(n, dtype=np.int64),  # platform-wide shoppers
        "item": np.full(n, plan.item_ptr[0], dtype=np.int64),
        "promoter": np.full(n, _NULL, dtype=np.int64),
        "mode": np.zeros(n, dtype=np.int64),
        "carrier": np.full(n, CARRIERS.index("card"), dtype=np.int64),
        "paid": paid,
        "quantity": np.ones(n, dtype=np.int64),
        "session": np.full(n, _NULL, dtype=np.int64),
        "status": np.array([completed] * (n - 1) + [paid_status], dtype=np.int64),  # the last just paid
        "refund": np.full(n, _NULL, dtype=np.int64),
        "reason": np.full(n, _NULL, dtype=np.int64),
        "commission": np.full(n, _NULL, dtype=np.int64),
    }
    row0 = len(orders["time"])
    orders = _concat([orders, anchors])
    extra = [(row0 + times.index(last.start), last.end - 86400 + 20 * 3600 + 15 * 60, 5, 5, 5)]
    flagship = orders["merchant"] == 0
    delivered = np.flatnonzero(flagship & np.isin(orders["status"], [completed, STATUSES.index("received")]))
    if len(delivered):
        row = int(delivered[np.argmin(orders["time"][delivered])])
        extra.append((row, int(orders["time"][row]) + 3 * 3600, 5, 4, 5))
    added = {
        "order": np.array([e[0] for e in extra], dtype=np.int64),
        "time": np.array([e[1] for e in extra], dtype=np.int64),
        "quality": np.array([e[2] for e in extra], dtype=np.int64),
        "logistics": np.array([e[3] for e in extra], dtype=np.int64),
        "service": np.array([e[4] for e in extra], dtype=np.int64),
        "complaint": np.zeros(len(extra), dtype=np.int64),
    }
    return orders, _concat([reviews, added])


#: The planted gaming of the end month (SPEC §11, `chuanliu integrity`), by cast index: the shop that
#: brushes orders, the shop whose promoter buys through its own link (and that promoter), the shop whose
#: live days come from idle sessions; regulars short of 8 live days are topped up to exactly 8 (bunching).
_BRUSHING_SHOP, _SELF_PURCHASE_SHOP, _SELF_PURCHASE_PROMOTER, _IDLE_SHOP = 40, 45, 3, 3
_GAMING_BUYER = 9_000_000_000  # buyers of the planted bursts, far beyond every generated buyer
_BUNCHED = 10  # regulars of the cast that stream exactly the 8 live days of the stable_live gate


def _plant_gaming(plan: _Plan, orders: _Cols, reviews: _Cols, sessions: _Cols) -> tuple[_Cols, _Cols, _Cols]:
    """The end month's planted gaming, appended to the cast's rows (no random draw: the rest stays as it was).

    - brushing: shop 40 gets two bursts of completed live-room orders, 4 orders of one new buyer in 25
      minutes and 3 of another in 31, each with a 5-star review (suspicious: a review of a brushing order);
    - self-purchase: promoter 3 buys three times, days apart, through its own link at shop 45;
    - idle: shop 3 (5 live days, failing stable_live) streams 3-hour sessions with 3 viewers on 6 more
      days, at night: with them it would pass the live-day gate;
    - bunching: the 10 regulars of the cast with the fewest live days (4 or more) stream exactly 8 proper
      days, the line of `live_days >= 8`: fewer are topped up with ordinary sessions, and on the days
      beyond 8 the sessions are cut to 20-minute test streams (which count for no live day).
    Only with the whole cast (60 merchants or more), and not when `--orders` asks for an exact count.
    """
    import numpy as np

    if plan.merchants < len(_CAST):
        return orders, reviews, sessions
    last = plan.months[-1]
    day = 86400
    item = lambda m: int(plan.item_ptr[m])  # noqa: E731 - the shop's first item
    completed = STATUSES.index("completed")
    # (merchant, time, buyer, promoter, mode, carrier, paid in fen): live-room self orders, then distribution
    rows: list[tuple[int, ...]] = []
    bursts = ((9 * day + 21 * 3600, (0, 6, 14, 25)), (17 * day + 22 * 3600 + 600, (0, 9, 31)))
    for k, (start, offsets) in enumerate(bursts):
        for minutes in offsets:
            time = last.start + start + minutes * 60
            rows.append((_BRUSHING_SHOP, time, _GAMING_BUYER + k, _NULL, 0, 0, 5990))
    own_link = -2 - _SELF_PURCHASE_PROMOTER  # the promoter as the buyer (_buyer_ids)
    for d in (4, 12, 21):
        time = last.start + d * day + 15 * 3600
        rows.append((_SELF_PURCHASE_SHOP, time, own_link, _SELF_PURCHASE_PROMOTER, 1, 3, 12900))
    n = len(rows)
    col = lambda i: np.array([r[i] for r in rows], dtype=np.int64)  # noqa: E731
    merchant = col(0)
    planted = {
        "cell": np.full(n, _NULL, dtype=np.int64),
        "merchant": merchant,
        "time": col(1),
        "buyer": col(2),
        "item": np.array([item(m) for m in merchant], dtype=np.int64),
        "promoter": col(3),
        "mode": col(4),
        "carrier": col(5),
        "paid": col(6),
        "quantity": np.ones(n, dtype=np.int64),
        "session": np.full(n, _NULL, dtype=np.int64),
        "status": np.full(n, completed, dtype=np.int64),
        "refund": np.full(n, _NULL, dtype=np.int64),
        "reason": np.full(n, _NULL, dtype=np.int64),
        "commission": np.where(col(3) >= 0, col(6) // 10, _NULL),
    }
    row0 = len(orders["time"])
    orders = _concat([orders, planted])
    burst = np.arange(row0, row0 + 7, dtype=np.int64)
    reviews = _concat(
        [
            reviews,
            {
                "order": burst,
                "time": orders["time"][burst] + 3 * day,
                "quality": np.full(7, 5, dtype=np.int64),
                "logistics": np.full(7, 5, dtype=np.int64),
                "service": np.full(7, 5, dtype=np.int64),
                "complaint": np.zeros(7, dtype=np.int64),
            },
        ]
    )
    # live days of the end month: distinct days of each cast merchant's own sessions of 30 minutes or more
    own = (sessions["host"] == 0) & (sessions["minutes"] >= 30) & (sessions["start"] >= last.start)
    own &= (sessions["start"] < last.end) & (sessions["merchant"] < len(_CAST))
    days: dict[int, set[int]] = {}
    for m, t in zip(sessions["merchant"][own].tolist(), sessions["start"][own].tolist(), strict=True):
        days.setdefault(m, set()).add((t - last.start) // day)
    added: list[tuple[int, int, int, int]] = []  # merchant, start, minutes, viewers
    free = lambda m: [d for d in range(last.days) if d not in days.get(m, set())]  # noqa: E731
    for d in free(_IDLE_SHOP)[1::3][:6]:
        added.append((_IDLE_SHOP, last.start + d * day + 3600, 180, 3))
    # the weakest regulars stream exactly 8 proper days: fewer are topped up, more are cut to test streams
    regulars = [i for i, (kind, _s) in enumerate(_CAST) if kind == "regular" and len(days.get(i, ())) >= 4]
    lengths = sessions["minutes"].copy()
    for m in sorted(regulars, key=lambda i: (len(days[i]), i))[:_BUNCHED]:
        have = sorted(days[m])
        if len(have) < 8:
            gaps = free(m)
            for d in gaps[:: max(1, len(gaps) // (8 - len(have)))][: 8 - len(have)]:
                added.append((m, last.start + d * day + 19 * 3600, 45, int(45 * plan.traffic[m])))
        else:  # keep 8 days spread over the month; the other days' sessions become 20-minute test streams
            kept = {have[round(j * (len(have) - 1) / 7)] for j in range(8)}
            other_day = ~np.isin((sessions["start"] - last.start) // day, list(kept))
            cut = own & (sessions["merchant"] == m) & other_day
            lengths[cut] = 20
    sessions = {**sessions, "minutes": lengths}
    if added:
        a = np.array(added, dtype=np.int64)
        k = len(a)
        sessions = _concat(
            [
                sessions,
                {
                    "cell": np.full(k, _NULL, dtype=np.int64),
                    "merchant": a[:, 0],
                    "host": np.zeros(k, dtype=np.int64),
                    "promoter": np.full(k, _NULL, dtype=np.int64),
                    "start": a[:, 1],
                    "minutes": a[:, 2],
                    "viewers": a[:, 3],
                    "followers": np.zeros(k, dtype=np.int64),
                },
            ]
        )
    return orders, reviews, sessions


def _statuses(plan: _Plan, o: _Cols, end: int, end_month_start: int, rng: Rng) -> None:
    """Order states by age at the export time, refunds with reasons, and commissions of promoters."""
    import numpy as np

    n = len(o["time"])
    m = o["merchant"]
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
    refund = (~unpaid) & (rng.random(n) < plan.refund_rate[m]) & (age >= 1)
    quality = refund & (rng.random(n) < plan.quality_share[m])
    partial = refund & (rng.random(n) < 0.25)
    reason = np.full(n, _NULL, dtype=np.int64)
    q_pick = _choice(rng, _QUALITY_REASON_WEIGHTS, n)
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
    void = plan.void_live_end[m] & (o["time"] >= end_month_start) & (o["mode"] == 0) & (o["carrier"] == 0)
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
    rate = 0.1 + 0.2 * ((o["promoter"][dist] * 7919 + m[dist] * 104729) % 1000) / 1000.0
    commission = np.full(n, _NULL, dtype=np.int64)
    commission[dist] = np.round(o["paid"][dist] * rate).astype(np.int64)
    o["commission"] = commission


def _reviews(plan: _Plan, o: _Cols, end: int, rng: Rng) -> _Cols:
    """Reviews of delivered orders a few days after purchase; bad merchants and promoters rate lower."""
    import numpy as np

    n = len(o["time"])
    m = o["merchant"]
    # Only delivered orders are reviewed (a fully refunded order has no review); a partial refund for a
    # quality reason does come with an unhappy review.
    delivered = np.isin(o["status"], [STATUSES.index("completed"), STATUSES.index("received")])
    rows = np.flatnonzero(delivered & (rng.random(n) < plan.review_rate[m]))
    delay = (2.0 + rng.lognormal(1.2, 0.6, len(rows))) * 86400
    t = o["time"][rows] + delay.astype(np.int64)
    keep = t < end
    rows, t = rows[keep], t[keep]
    k = len(rows)
    bad = plan.badness[m[rows]]
    prom = o["promoter"][rows]
    by_promoter = prom >= 0
    bad[by_promoter] = np.clip(bad[by_promoter] + plan.promoter_badness[prom[by_promoter]], 0.0, 1.0)
    quality_return = (o["refund"][rows] > 0) & (o["reason"][rows] >= 0) & (o["reason"][rows] < 5)
    bad[quality_return] = 0.8
    quality = _scores(bad, rng)
    logistics = _scores(bad * 0.6, rng)
    service = _scores(bad * 0.8, rng)
    p_complaint = np.where(
        quality <= 2,
        plan.complaint_rate[m[rows]] * 5 + 0.02 * (bad > 0.5),
        plan.complaint_rate[m[rows]] * 0.3,
    )
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


# --------------------------------------------------------------------------------------------------
# Output: blocks become polars frames with canonical (or Chinese) headers and values.


@dataclass(frozen=True)
class _Output:
    """The lookup columns of a dataset (shop, promoter and item names by index), built once, and the
    conversion of generated rows to frames."""

    plan: _Plan
    headers: Headers
    shop_ids: pl.Series
    promoter_ids: pl.Series
    item_names: pl.Series
    shop_names: pl.Series

    @staticmethod
    def build(plan: _Plan, headers: Headers) -> _Output:
        import numpy as np
        import polars as pl

        n = plan.merchants
        index = pl.Series("v", np.arange(n, dtype=np.int64))
        brand = _lookup(_BRAND_HEADS, (index % 30).to_numpy()) + _lookup(
            _BRAND_TAILS, ((index // 30 + index) % 30).to_numpy()
        )
        # beyond the 900 two-character brands, number them to keep shop names unique
        brand = pl.select(
            pl.when(index >= 900).then(brand + (index // 900).cast(pl.String)).otherwise(brand)
        ).to_series()
        category = plan.category
        shop_names = (
            brand
            + _lookup(tuple(c[0] for c in CATEGORIES), category)
            + _lookup(_SHOP_SUFFIXES, (index % len(_SHOP_SUFFIXES)).to_numpy())
        )
        # Item j of merchant i: brand, the category's j-th noun, a variant by (i + j).
        owner = np.repeat(np.arange(n, dtype=np.int64), np.diff(plan.item_ptr))
        j = np.arange(len(owner), dtype=np.int64) - plan.item_ptr[owner]
        nouns = tuple(noun for c in CATEGORIES for noun in c[2])
        item_names = (
            brand.gather(owner)
            + _lookup(nouns, category[owner] * 6 + j % 6)
            + _lookup(_ITEM_VARIANTS, (owner + j) % len(_ITEM_VARIANTS))
        )
        promoter_ids = _ids(_scramble(np.arange(plan.promoters, dtype=np.int64), *_PROMOTER_IDS), 8, "dr")
        shop_ids = "ks" + (index + 700001).cast(pl.String)
        return _Output(
            plan, headers, _nullable(shop_ids), _nullable(promoter_ids), _nullable(item_names), shop_names
        )

    def write(self, rows: _Rows, writers: dict[str, _Writer]) -> None:
        writers["orders"].write(self.orders(rows.orders))
        if len(rows.reviews["review_id"]):
            writers["reviews"].write(self.reviews(rows.reviews))
        if len(rows.sessions["live_id"]):
            writers["livestreams"].write(self.sessions(rows.sessions))

    def enum(self, column: str, values: tuple[str, ...], codes: Array) -> pl.Series:
        return _lookup(_enum(column, values, self.headers), codes)

    def orders(self, o: _Cols) -> pl.DataFrame:
        import polars as pl

        columns = {
            "order_id": _ids(o["order_id"], 16),
            "shop_id": self.shop_ids.gather(o["merchant"]),
            "buyer_id": _buyer_ids(o["buyer"], self.promoter_ids),
            "item_id": _ids(_scramble(o["item"], *_ITEM_IDS), 11),
            "item_name": self.item_names.gather(o["item"]),
            "promoter_id": _gather_nullable(self.promoter_ids, o["promoter"]),
            "sale_mode": self.enum("sale_mode", SALE_MODES, o["mode"]),
            "carrier": self.enum("carrier", CARRIERS, o["carrier"]),
            "order_time": _times(o["time"]),
            "paid_amount": _amount(o["paid"]),
            "quantity": pl.Series("v", o["quantity"]),
            "status": self.enum("status", STATUSES, o["status"]),
            "refund_amount": _amount(o["refund"]),
            "refund_reason": _lookup(QUALITY_REASONS + OTHER_REASONS, o["reason"]),
            "commission": _amount(o["commission"]),
        }
        return _frame(TABLES["orders"], columns, self.headers)

    def reviews(self, r: _Cols) -> pl.DataFrame:
        import polars as pl

        complaint = self.enum("complaint", COMPLAINTS, r["complaint"])
        columns = {
            "review_id": _ids(r["review_id"], 15),
            "order_id": _ids(r["order_id"], 16),
            "shop_id": self.shop_ids.gather(r["merchant"]),
            "item_id": _ids(_scramble(r["item"], *_ITEM_IDS), 11),
            "promoter_id": _gather_nullable(self.promoter_ids, r["promoter"]),
            "quality_score": pl.Series("v", r["quality"]),
            "logistics_score": pl.Series("v", r["logistics"]),
            "service_score": pl.Series("v", r["service"]),
            "review_time": _times(r["time"]),
            "complaint": complaint if self.headers == "zh" else complaint == "true",
        }
        return _frame(TABLES["reviews"], columns, self.headers)

    def sessions(self, s: _Cols) -> pl.DataFrame:
        import polars as pl

        columns = {
            "live_id": _ids(s["live_id"], 12),
            "shop_id": self.shop_ids.gather(s["merchant"]),
            "host_type": self.enum("host_type", HOST_TYPES, s["host"]),
            "promoter_id": _gather_nullable(self.promoter_ids, s["promoter"]),
            "start_time": _times(s["start"]),
            "end_time": _times(s["start"] + s["minutes"] * 60),
            "duration_minutes": pl.Series("v", s["minutes"]),
            "viewers": pl.Series("v", s["viewers"]),
            "new_followers": pl.Series("v", s["followers"]),
            "gmv": _amount(s["gmv"]),
        }
        return _frame(TABLES["livestreams"], columns, self.headers)

    def shops(self) -> pl.DataFrame:
        import numpy as np
        import polars as pl

        index = np.arange(self.plan.merchants, dtype=np.int64)
        # Every tenth shop opens a second and third shop under the same owner (多店多号).
        group_no = np.where(np.isin(index % 10, (1, 2)), index - index % 10, index)
        columns = {
            "shop_id": self.shop_ids.head(self.plan.merchants),
            "shop_name": self.shop_names,
            "category": _lookup(tuple(c[0] for c in CATEGORIES), self.plan.category),
            "group_id": "zt" + pl.Series("v", group_no + 880001).cast(pl.String),
        }
        return _frame(TABLES["shops"], columns, self.headers)


def _buyer_ids(buyers: Array, promoter_ids: pl.Series) -> pl.Series:
    """Buyer ids; a buyer coded −2 − p is promoter p buying through its own link (its id is p's id)."""
    import numpy as np
    import polars as pl

    ids = _ids(_scramble(np.maximum(buyers, 0), *_BUYER_IDS), 10, "u")
    own = buyers <= -2
    if not own.any():
        return ids
    promoters = promoter_ids.gather(np.where(own, -2 - buyers, 0))
    return pl.select(pl.when(pl.Series(own)).then(promoters).otherwise(ids)).to_series()


def _nullable(values: pl.Series) -> pl.Series:
    """`values` with a null appended, so that code -1 (wrapped to the last index) gathers a null."""
    import polars as pl

    return pl.concat([values.alias("v"), pl.Series("v", [None], dtype=pl.String)])


def _gather_nullable(table: pl.Series, codes: Array) -> pl.Series:
    """Gather from a `_nullable` table; -1 → null."""
    import numpy as np

    return table.gather(np.where(codes < 0, len(table) - 1, codes))


def _lookup(values: tuple[str, ...], codes: Array) -> pl.Series:
    """Strings by integer code, with -1 as null (a gather from a small lookup series: fast at 10M rows)."""
    import polars as pl

    return _gather_nullable(_nullable(pl.Series("v", values, dtype=pl.String)), codes)


def _enum(column: str, values: tuple[str, ...], headers: Headers) -> tuple[str, ...]:
    return tuple(ZH_VALUES[column][v] for v in values) if headers == "zh" else values


def _ids(numbers: Array, digits: int, prefix: str = "") -> pl.Series:
    """Zero-padded decimal text of non-negative integers (below 10**digits), after an ASCII `prefix`.

    Written as fixed-width bytes two digits at a time (a 16-bit lookup per pair) and wrapped as an Arrow
    string array: several times faster than casting to text and padding, which was a quarter of the
    time of a large sample.
    """
    import numpy as np
    import polars as pl
    import pyarrow as pa

    n = len(numbers)
    n_pairs = (digits + 1) // 2
    body = np.empty((n, n_pairs), dtype=np.uint16)
    value = numbers.astype(np.uint64)
    for i in range(n_pairs - 1, -1, -1):
        body[:, i] = _digit_pairs()[(value % np.uint64(100)).astype(np.intp)]
        value //= np.uint64(100)
    text = body.view(np.uint8)[:, 2 * n_pairs - digits :]
    head = prefix.encode("ascii")
    if head:
        text = np.hstack([np.broadcast_to(np.frombuffer(head, dtype=np.uint8), (n, len(head))), text])
    width = len(head) + digits
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    data = np.ascontiguousarray(text)
    array = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    return pl.Series("v", array)


@cache
def _digit_pairs() -> Array:
    """The two ASCII bytes of 00, 01, … 99, each pair as one 16-bit value in memory order."""
    import numpy as np

    text = "".join(f"{i:02d}" for i in range(100)).encode("ascii")
    return np.frombuffer(text, dtype=np.uint16)


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
    """Appends frames as row groups of one Parquet file (zstd, fixed schema, no wall-clock metadata).

    Dictionary encoding for text columns only: on numbers and timestamps it costs time (a third of the
    write) and saves nothing.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._writer: Any = None

    def write(self, df: pl.DataFrame) -> None:
        import polars as pl
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = df.to_arrow(compat_level=pl.CompatLevel.oldest())
        # Plain `string` rather than polars' large/view strings: the most widely readable Parquet.
        schema = pa.schema(
            [pa.field(f.name, pa.string() if _is_wide_string(f.type) else f.type) for f in table.schema]
        )
        table = table.cast(schema)
        if self._writer is None:
            text = [f.name for f in schema if pa.types.is_string(f.type)]
            self._writer = pq.ParquetWriter(
                self._path, schema, compression="zstd", compression_level=1, use_dictionary=text
            )
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


# --------------------------------------------------------------------------------------------------
# Late refunds (`sample --late-refunds`): an export made after the last month's list was published.

#: Where the late export is written, beside (not among) the dataset's files, so that `load --dir` of the
#: dataset does not read it: it is loaded on its own, after a recorded run (the restatement walkthrough).
LATE_REFUNDS = Path("late") / "orders_late_refunds"


def _write_late_refunds(
    plan: _Plan, outdir: Path, headers: Headers, encoding: Encoding, fmt: Format, end_period: Period
) -> Path:
    """Write `late/orders_late_refunds.<fmt>`: the last month's live-room orders of one rewarded merchant,
    each now refunded in full (status refunded, refund_amount = paid_amount, reason 协商一致退款), as
    the backend exports them after the month's reward list was published.

    The merchant is the one of the bundled ruleset's merchant reward list for the last month (scored
    from the dataset just written) with a grant and the fewest valid self live-room orders without a
    refund (ties by shop_id); those orders are the file. Its self live-room GMV falls to what its partly
    refunded orders kept (0 when there are none: it then fails the `active` gate), so that `runs diff`
    has a restatement to show once the file is loaded. The rows are the dataset's own (regenerated: every
    draw is the same), in its headers, encoding and format; the dataset's files are not touched.
    """
    import polars as pl

    from chuanliu_cli.ingest.discover import discover
    from chuanliu_cli.ingest.loader import LoadOptions, load_files
    from chuanliu_cli.rules.effective import ruleset_for_period
    from chuanliu_cli.scoring.pipeline import score_period
    from chuanliu_cli.store.database import memory_database

    # what `eligible --data` does: the exports validated like `load`, the version in force scored
    db = memory_database(None)
    try:
        load_files(db, discover(outdir), LoadOptions())
        ruleset, period = ruleset_for_period(None, end_period.label, check=True)
        listed = score_period(db.con, ruleset, period, upto="merchant").scorecards["merchant"].frame
    finally:
        db.con.close()
    rewarded = set(listed.filter(pl.col("grant").fill_null(0) > 0)["shop_id"].to_list())
    if not rewarded:
        raise UsageError(
            f"no merchant has a grant in {end_period.label}: there is no published list to restate",
            hint="use more --merchants or --months (the 90-day gates need history)",
        )

    def name(column: str) -> str:
        return TABLES["orders"].column(column).aliases[0] if headers == "zh" else column

    def value(column: str, canonical: str) -> str:
        return _enum(column, (canonical,), headers)[0]

    settled = [value("status", s) for s in ("pending", "closed", "refunded")]  # invalid, or refunded already

    class _Kept:
        """Keeps the last month's valid self live-room orders without a refund of the rewarded merchants
        (orders: `keep`), or nothing (the other tables)."""

        def __init__(self, keep: bool) -> None:
            self.keep = keep
            self.frames: list[pl.DataFrame] = []

        def write(self, df: pl.DataFrame) -> None:
            if not self.keep:
                return
            start = datetime.combine(end_period.start, datetime.min.time())
            self.frames.append(
                df.filter(
                    pl.col(name("shop_id")).is_in(sorted(rewarded))
                    & (pl.col(name("order_time")) >= start)
                    & ~pl.col(name("status")).is_in(settled)
                    & (pl.col(name("refund_amount")).fill_null(0) == 0)
                    & (pl.col(name("sale_mode")) == value("sale_mode", "self"))
                    & (pl.col(name("carrier")) == value("carrier", "live"))
                )
            )

        def close(self) -> None:
            pass

    kept = _Kept(keep=True)
    _write_all(plan, {table: kept if table == "orders" else _Kept(keep=False) for table in TABLES}, headers)
    orders = pl.concat(kept.frames)
    counts = orders.group_by(name("shop_id")).len().sort(["len", name("shop_id")])
    chosen = counts[name("shop_id")][0]
    late = orders.filter(pl.col(name("shop_id")) == chosen).sort(name("order_id"))
    late = late.with_columns(
        pl.lit(value("status", "refunded")).alias(name("status")),
        pl.col(name("paid_amount")).alias(name("refund_amount")),
        pl.lit("协商一致退款").alias(name("refund_reason")),
    )
    path = outdir / f"{LATE_REFUNDS}.{fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = _open_writer(path, TABLES["orders"], headers, encoding, fmt, end_period.end)
    try:
        writer.write(late)
    finally:
        writer.close()
    return path
