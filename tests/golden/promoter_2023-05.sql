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
    "orders"."promoter_id" AS "promoter_id",
    COALESCE(
      SUM("orders"."net_amount") FILTER(WHERE
        (
          (
            NOT "orders"."status" IN ('pending', 'closed')
          )
          AND "orders"."sale_mode" = 'distribution'
          AND "scorecard_merchant"."eligible"
        )),
      0
    ) AS "carried_gmv",
    COUNT(DISTINCT "orders"."shop_id") FILTER(WHERE
      (
        (
          NOT "orders"."status" IN ('pending', 'closed')
        )
        AND "orders"."sale_mode" = 'distribution'
        AND "scorecard_merchant"."eligible"
      )) AS "carried_merchants"
  FROM "orders"
  LEFT JOIN "scorecard_merchant"
    ON "scorecard_merchant"."shop_id" = "orders"."shop_id"
  WHERE
    NOT "orders"."promoter_id" IS NULL
    AND (
      "orders"."order_time" >= CAST('2023-05-01 00:00:00' AS TIMESTAMP)
      AND "orders"."order_time" < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
    )
  GROUP BY
    "orders"."promoter_id"
), "src_reviews" AS (
  SELECT
    "reviews"."promoter_id" AS "promoter_id",
    COUNT(*) AS "reviews_90d",
    AVG("reviews"."quality_score") AS "quality_avg_90d",
    AVG("reviews"."service_score") AS "service_avg_90d",
    AVG(CASE WHEN "reviews"."quality_score" <= 2 THEN 1.0 ELSE 0.0 END) AS "negative_rate_90d"
  FROM "reviews_filled" AS "reviews"
  WHERE
    NOT "reviews"."promoter_id" IS NULL
    AND (
      "reviews"."review_time" >= CAST('2023-03-03 00:00:00' AS TIMESTAMP)
      AND "reviews"."review_time" < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
    )
  GROUP BY
    "reviews"."promoter_id"
), "src_livestreams" AS (
  SELECT
    "livestreams"."promoter_id" AS "promoter_id",
    COUNT(DISTINCT CAST("livestreams"."start_time" AS DATE)) FILTER(WHERE
      (
        "livestreams"."host_type" = 'promoter' AND "livestreams"."duration_minutes" >= 30
      )) AS "promoter_live_days"
  FROM "livestreams"
  WHERE
    NOT "livestreams"."promoter_id" IS NULL
    AND (
      "livestreams"."start_time" >= CAST('2023-05-01 00:00:00' AS TIMESTAMP)
      AND "livestreams"."start_time" < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
    )
  GROUP BY
    "livestreams"."promoter_id"
), "population" AS (
  SELECT
    "promoter_id"
  FROM "src_orders"
  UNION
  SELECT
    "promoter_id"
  FROM "src_reviews"
  UNION
  SELECT
    "promoter_id"
  FROM "src_livestreams"
), "metric_values" AS (
  SELECT
    "population"."promoter_id" AS "promoter_id",
    CAST(COALESCE("src_orders"."carried_gmv", 0) AS DOUBLE) AS "carried_gmv",
    CAST(COALESCE("src_orders"."carried_merchants", 0) AS DOUBLE) AS "carried_merchants",
    CAST(COALESCE("src_livestreams"."promoter_live_days", 0) AS DOUBLE) AS "promoter_live_days",
    CAST(COALESCE("src_reviews"."reviews_90d", 0) AS DOUBLE) AS "reviews_90d",
    CAST("src_reviews"."quality_avg_90d" AS DOUBLE) AS "quality_avg_90d",
    CAST("src_reviews"."service_avg_90d" AS DOUBLE) AS "service_avg_90d",
    CAST("src_reviews"."negative_rate_90d" AS DOUBLE) AS "negative_rate_90d"
  FROM "population"
  LEFT JOIN "src_orders"
    ON "src_orders"."promoter_id" = "population"."promoter_id"
  LEFT JOIN "src_reviews"
    ON "src_reviews"."promoter_id" = "population"."promoter_id"
  LEFT JOIN "src_livestreams"
    ON "src_livestreams"."promoter_id" = "population"."promoter_id"
)
SELECT
  "promoter_id",
  "carried_gmv",
  "carried_merchants",
  "promoter_live_days",
  "reviews_90d",
  "quality_avg_90d",
  "service_avg_90d",
  "negative_rate_90d"
FROM "metric_values"
