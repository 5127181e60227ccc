"""The integrity flags' names, tables and meanings (SPEC §11), apart from their SQL (rules/integrity.py) so
that what only names them (an explanation's flag counts, the reports) imports no SQL builder."""

from __future__ import annotations

#: The flags of each table, in the order they are reported.
FLAGS: dict[str, tuple[str, ...]] = {
    "orders": ("brushing", "self_purchase"),
    "reviews": ("suspicious",),
    "livestreams": ("idle",),
}
#: The table each flag is a column of.
FLAG_TABLES: dict[str, str] = {flag: table for table, flags in FLAGS.items() for flag in flags}
#: What each flag means, for `rules show`, the integrity report and the README.
FLAG_LABELS: dict[str, str] = {
    "brushing": "刷单 order brushing: a burst of orders of one buyer at one shop",
    "self_purchase": "自买自卖 a promoter buying through its own distribution link",
    "idle": "挂机直播 an idle live session: too few viewers for its length",
    "suspicious": "可疑评价 a review marked as cheating or invalid, or of a brushing order",
}
