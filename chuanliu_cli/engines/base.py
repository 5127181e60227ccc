"""The Engine protocol: what scoring needs of wherever the compiled metric queries run."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import polars as pl

    from chuanliu_cli.rules.model import Integrity


class Engine(Protocol):
    """Where the metric queries run. Everything after the metric rows is the same Python code."""

    dialect: str

    def query(self, sql: str, order_by: str | None = None) -> pl.DataFrame:
        """Run a compiled metric query and return its rows (`order_by`: in that column's order, if the
        engine sorts faster than polars; callers check)."""

    def register(self, name: str, frame: pl.DataFrame) -> None:
        """Make a frame queryable as `name` (earlier scorecards' results)."""

    def unregister(self, name: str) -> None:
        """Forget a registered table."""

    def data_window(self) -> dict[str, tuple[datetime | None, datetime | None]]:
        """The first and last time in each required table."""

    def names(self, key: str) -> pl.DataFrame | None:
        """Display names (columns k, name) for entities keyed by `key`, or None."""

    def brushing_marks(self, integrity: Integrity) -> bool:
        """Whether queries may read the brushing orders the data keeps for these thresholds
        (store/brushing.py) instead of finding them."""


#: How display names are found, per entity key (portable SQL: DuckDB and Spark both run it).
NAME_QUERIES = {
    "shop_id": "SELECT shop_id AS k, max(shop_name) AS name, max(group_id) AS group_id, "
    "max(category) AS category FROM shops GROUP BY shop_id",
    # a group of shops (key_from, SPEC §9): its first named shop (by shop_id) and how many shops it has,
    # `云源珠宝文玩旗舰店 等3店`; a shop without a group is its own, named as the shop
    "group_id": "SELECT k, CASE WHEN n > 1 AND first_name IS NOT NULL THEN first_name || ' 等' || "
    "CAST(n AS STRING) || '店' ELSE first_name END AS name FROM (SELECT "
    "coalesce(nullif(group_id, ''), shop_id) AS k, "
    "min_by(shop_name, CASE WHEN shop_name IS NULL THEN NULL ELSE shop_id END) AS first_name, "
    "count(*) AS n FROM shops GROUP BY coalesce(nullif(group_id, ''), shop_id)) AS g",
    "item_id": "SELECT item_id AS k, max_by(item_name, order_time) AS name FROM orders GROUP BY item_id",
    "promoter_id": "SELECT promoter_id AS k, max_by(promoter_name, order_time) AS name FROM orders "
    "WHERE promoter_id IS NOT NULL AND promoter_name IS NOT NULL GROUP BY promoter_id",
}
