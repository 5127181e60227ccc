WITH "reviews_filled" AS (
  SELECT
    "r"."review_id" AS "review_id",
    "r"."order_id" AS "order_id",
    "r"."shop_id" AS "shop_id",
    "r"."item_id" AS "item_id",
    "r"."promoter_id" AS "promoter_id",
    "r"."quality_score" AS "quality_score",
    "r"."logistics_score" AS "logistics_score",
    "r"."service_score" AS "service_score",
    "r"."review_time" AS "review_time",
    "r"."complaint" AS "complaint"
  FROM "reviews" AS "r"
  WHERE
    (
      "r"."review_time" >= CAST('2023-03-03 00:00:00' AS TIMESTAMP)
      AND "r"."review_time" < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
    )
    AND NOT (
      "r"."promoter_id" IS NULL OR "r"."item_id" IS NULL
    )
  UNION ALL
  SELECT
    "r"."review_id" AS "review_id",
    "r"."order_id" AS "order_id",
    "r"."shop_id" AS "shop_id",
    COALESCE("r"."item_id", "o"."item_id") AS "item_id",
    COALESCE("r"."promoter_id", "o"."promoter_id") AS "promoter_id",
    "r"."quality_score" AS "quality_score",
    "r"."logistics_score" AS "logistics_score",
    "r"."service_score" AS "service_score",
    "r"."review_time" AS "review_time",
    "r"."complaint" AS "complaint"
  FROM "reviews" AS "r"
  LEFT JOIN "orders" AS "o"
    ON "o"."order_id" = "r"."order_id"
  WHERE
    (
      "r"."review_time" >= CAST('2023-03-03 00:00:00' AS TIMESTAMP)
      AND "r"."review_time" < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
    )
    AND (
      "r"."promoter_id" IS NULL OR "r"."item_id" IS NULL
    )
), "src_orders" AS (
  SELECT
    "orders"."item_id" AS "item_id",
    AVG(CASE WHEN "orders"."quality_return" THEN 1.0 ELSE 0.0 END) FILTER(WHERE
      (
        NOT "orders"."status" IN ('pending', 'closed')
      )) AS "quality_return_rate_90d"
  FROM "orders"
  WHERE
    NOT "orders"."item_id" IS NULL
    AND (
      "orders"."order_time" >= CAST('2023-03-03 00:00:00' AS TIMESTAMP)
      AND "orders"."order_time" < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
    )
  GROUP BY
    "orders"."item_id"
), "src_reviews" AS (
  SELECT
    "reviews"."item_id" AS "item_id",
    COUNT(*) AS "reviews_90d",
    AVG("reviews"."quality_score") AS "quality_avg_90d",
    AVG(CASE WHEN "reviews"."quality_score" <= 2 THEN 1.0 ELSE 0.0 END) AS "negative_rate_90d"
  FROM "reviews_filled" AS "reviews"
  WHERE
    NOT "reviews"."item_id" IS NULL
    AND (
      "reviews"."review_time" >= CAST('2023-03-03 00:00:00' AS TIMESTAMP)
      AND "reviews"."review_time" < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
    )
  GROUP BY
    "reviews"."item_id"
), "population" AS (
  SELECT
    "item_id"
  FROM "src_orders"
  UNION
  SELECT
    "item_id"
  FROM "src_reviews"
), "metric_values" AS (
  SELECT
    "population"."item_id" AS "item_id",
    CAST(COALESCE("src_reviews"."reviews_90d", 0) AS DOUBLE) AS "reviews_90d",
    CAST("src_reviews"."quality_avg_90d" AS DOUBLE) AS "quality_avg_90d",
    CAST("src_reviews"."negative_rate_90d" AS DOUBLE) AS "negative_rate_90d",
    CAST("src_orders"."quality_return_rate_90d" AS DOUBLE) AS "quality_return_rate_90d"
  FROM "population"
  LEFT JOIN "src_orders"
    ON "src_orders"."item_id" = "population"."item_id"
  LEFT JOIN "src_reviews"
    ON "src_reviews"."item_id" = "population"."item_id"
)
SELECT
  "item_id",
  "reviews_90d",
  "quality_avg_90d",
  "negative_rate_90d",
  "quality_return_rate_90d"
FROM "metric_values"
