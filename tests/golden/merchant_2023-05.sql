WITH "src_orders" AS (
  SELECT
    "orders"."shop_id" AS "shop_id",
    COALESCE(
      SUM("orders"."net_amount") FILTER(WHERE
        (
          "orders"."order_time" >= CAST('2023-05-01 00:00:00' AS TIMESTAMP)
          AND "orders"."order_time" < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
        )
        AND (
          (
            NOT "orders"."status" IN ('pending', 'closed')
          )
          AND "orders"."sale_mode" = 'distribution'
        )),
      0
    ) AS "distribution_gmv",
    COUNT(DISTINCT "orders"."promoter_id") FILTER(WHERE
      (
        "orders"."order_time" >= CAST('2023-05-01 00:00:00' AS TIMESTAMP)
        AND "orders"."order_time" < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
      )
      AND (
        (
          NOT "orders"."status" IN ('pending', 'closed')
        )
        AND "orders"."sale_mode" = 'distribution'
      )) AS "distribution_promoters",
    COUNT(*) FILTER(WHERE
      (
        (
          NOT "orders"."status" IN ('pending', 'closed')
        )
        AND "orders"."sale_mode" = 'distribution'
      )) AS "distribution_orders_90d",
    COALESCE(
      SUM("orders"."net_amount") FILTER(WHERE
        (
          "orders"."order_time" >= CAST('2023-05-01 00:00:00' AS TIMESTAMP)
          AND "orders"."order_time" < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
        )
        AND (
          (
            NOT "orders"."status" IN ('pending', 'closed')
          )
          AND "orders"."sale_mode" = 'self'
          AND "orders"."carrier" = 'live'
        )),
      0
    ) AS "self_live_gmv",
    COALESCE(
      SUM("orders"."net_amount") FILTER(WHERE
        (
          "orders"."order_time" >= CAST('2023-04-01 00:00:00' AS TIMESTAMP)
          AND "orders"."order_time" < CAST('2023-05-01 00:00:00' AS TIMESTAMP)
        )
        AND (
          (
            NOT "orders"."status" IN ('pending', 'closed')
          )
          AND "orders"."sale_mode" = 'self'
          AND "orders"."carrier" = 'live'
        )),
      0
    ) AS "self_live_gmv_prev",
    COALESCE(
      SUM("orders"."net_amount") FILTER(WHERE
        (
          "orders"."order_time" >= CAST('2023-05-01 00:00:00' AS TIMESTAMP)
          AND "orders"."order_time" < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
        )
        AND (
          (
            NOT "orders"."status" IN ('pending', 'closed')
          )
          AND "orders"."sale_mode" = 'self'
        )),
      0
    ) AS "self_gmv_all",
    AVG(CASE WHEN "orders"."quality_return" THEN 1.0 ELSE 0.0 END) FILTER(WHERE
      (
        NOT "orders"."status" IN ('pending', 'closed')
      )) AS "quality_return_rate_90d"
  FROM "orders"
  WHERE
    NOT "orders"."shop_id" IS NULL
    AND (
      "orders"."order_time" >= CAST('2023-03-03 00:00:00' AS TIMESTAMP)
      AND "orders"."order_time" < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
    )
  GROUP BY
    "orders"."shop_id"
), "src_reviews" AS (
  SELECT
    "reviews"."shop_id" AS "shop_id",
    COUNT(*) AS "reviews_90d",
    AVG("reviews"."quality_score") AS "quality_avg_90d",
    AVG("reviews"."logistics_score") AS "logistics_avg_90d",
    AVG("reviews"."service_score") AS "service_avg_90d",
    AVG(CASE WHEN "reviews"."quality_score" <= 2 THEN 1.0 ELSE 0.0 END) AS "negative_rate_90d",
    AVG(CASE WHEN "reviews"."complaint" THEN 1.0 ELSE 0.0 END) AS "complaint_rate_90d"
  FROM "reviews"
  WHERE
    NOT "reviews"."shop_id" IS NULL
    AND (
      "reviews"."review_time" >= CAST('2023-03-03 00:00:00' AS TIMESTAMP)
      AND "reviews"."review_time" < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
    )
  GROUP BY
    "reviews"."shop_id"
), "src_livestreams" AS (
  SELECT
    "livestreams"."shop_id" AS "shop_id",
    COUNT(DISTINCT CAST("livestreams"."start_time" AS DATE)) FILTER(WHERE
      (
        "livestreams"."host_type" = 'self' AND "livestreams"."duration_minutes" >= 30
      )) AS "live_days",
    COALESCE(
      SUM("livestreams"."duration_minutes") FILTER(WHERE
        (
          "livestreams"."host_type" = 'self'
        )),
      0
    ) / 60 AS "live_hours",
    COUNT(DISTINCT DATE_TRUNC('WEEK', "livestreams"."start_time")) FILTER(WHERE
      (
        "livestreams"."host_type" = 'self' AND "livestreams"."duration_minutes" >= 30
      )) AS "live_weeks",
    COALESCE(
      SUM("livestreams"."new_followers") FILTER(WHERE
        (
          "livestreams"."host_type" = 'self'
        )),
      0
    ) AS "new_followers"
  FROM "livestreams"
  WHERE
    NOT "livestreams"."shop_id" IS NULL
    AND (
      "livestreams"."start_time" >= CAST('2023-05-01 00:00:00' AS TIMESTAMP)
      AND "livestreams"."start_time" < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
    )
  GROUP BY
    "livestreams"."shop_id"
), "conv_converted_buyers_then" AS (
  SELECT
    "orders"."shop_id" AS "shop_id",
    "orders"."buyer_id" AS "conversion_key",
    MAX("orders"."order_time") AS "then_time"
  FROM "orders"
  WHERE
    NOT "orders"."shop_id" IS NULL
    AND NOT "orders"."buyer_id" IS NULL
    AND (
      (
        "orders"."order_time" >= CAST('2023-05-01 00:00:00' AS TIMESTAMP)
        AND "orders"."order_time" < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
      )
      AND (
        (
          NOT "orders"."status" IN ('pending', 'closed')
        )
        AND "orders"."sale_mode" = 'self'
        AND "orders"."carrier" = 'live'
      )
    )
  GROUP BY
    "orders"."shop_id",
    "orders"."buyer_id"
), "conv_converted_buyers_pairs" AS (
  SELECT
    "orders"."shop_id" AS "shop_id",
    "orders"."buyer_id" AS "conversion_key",
    MIN("orders"."order_time") AS "first_time",
    MAX("conv_converted_buyers_then"."then_time") AS "then_time"
  FROM "orders"
  JOIN "conv_converted_buyers_then"
    ON "orders"."shop_id" = "conv_converted_buyers_then"."shop_id"
    AND "orders"."buyer_id" = "conv_converted_buyers_then"."conversion_key"
  WHERE
    NOT "orders"."shop_id" IS NULL
    AND NOT "orders"."buyer_id" IS NULL
    AND (
      (
        "orders"."order_time" >= CAST('2023-03-03 00:00:00' AS TIMESTAMP)
        AND "orders"."order_time" < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
      )
      AND (
        (
          NOT "orders"."status" IN ('pending', 'closed')
        )
        AND "orders"."sale_mode" = 'distribution'
      )
    )
  GROUP BY
    "orders"."shop_id",
    "orders"."buyer_id"
), "conv_converted_buyers" AS (
  SELECT
    "conv_converted_buyers_pairs"."shop_id" AS "shop_id",
    COUNT(*) AS "converted_buyers"
  FROM "conv_converted_buyers_pairs"
  WHERE
    "conv_converted_buyers_pairs"."then_time" > "conv_converted_buyers_pairs"."first_time"
  GROUP BY
    "conv_converted_buyers_pairs"."shop_id"
), "population" AS (
  SELECT
    "shop_id"
  FROM "src_orders"
  UNION
  SELECT
    "shop_id"
  FROM "src_reviews"
  UNION
  SELECT
    "shop_id"
  FROM "src_livestreams"
), "metric_values" AS (
  SELECT
    "population"."shop_id" AS "shop_id",
    CAST(COALESCE("src_livestreams"."live_days", 0) AS DOUBLE) AS "live_days",
    CAST(COALESCE("src_livestreams"."live_hours", 0) AS DOUBLE) AS "live_hours",
    CAST(COALESCE("src_livestreams"."live_weeks", 0) AS DOUBLE) AS "live_weeks",
    CAST(COALESCE("src_livestreams"."new_followers", 0) AS DOUBLE) AS "new_followers",
    CAST(COALESCE("src_orders"."distribution_gmv", 0) AS DOUBLE) AS "distribution_gmv",
    CAST(COALESCE("src_orders"."distribution_promoters", 0) AS DOUBLE) AS "distribution_promoters",
    CAST(COALESCE("src_orders"."distribution_orders_90d", 0) AS DOUBLE) AS "distribution_orders_90d",
    CAST(COALESCE("src_orders"."self_live_gmv", 0) AS DOUBLE) AS "self_live_gmv",
    CAST(COALESCE("src_orders"."self_live_gmv_prev", 0) AS DOUBLE) AS "self_live_gmv_prev",
    CAST(COALESCE("src_orders"."self_gmv_all", 0) AS DOUBLE) AS "self_gmv_all",
    CAST(COALESCE("conv_converted_buyers"."converted_buyers", 0) AS DOUBLE) AS "converted_buyers",
    CAST(COALESCE("src_reviews"."reviews_90d", 0) AS DOUBLE) AS "reviews_90d",
    CAST("src_reviews"."quality_avg_90d" AS DOUBLE) AS "quality_avg_90d",
    CAST("src_reviews"."logistics_avg_90d" AS DOUBLE) AS "logistics_avg_90d",
    CAST("src_reviews"."service_avg_90d" AS DOUBLE) AS "service_avg_90d",
    CAST("src_reviews"."negative_rate_90d" AS DOUBLE) AS "negative_rate_90d",
    CAST("src_reviews"."complaint_rate_90d" AS DOUBLE) AS "complaint_rate_90d",
    CAST("src_orders"."quality_return_rate_90d" AS DOUBLE) AS "quality_return_rate_90d"
  FROM "population"
  LEFT JOIN "src_orders"
    ON "src_orders"."shop_id" = "population"."shop_id"
  LEFT JOIN "src_reviews"
    ON "src_reviews"."shop_id" = "population"."shop_id"
  LEFT JOIN "src_livestreams"
    ON "src_livestreams"."shop_id" = "population"."shop_id"
  LEFT JOIN "conv_converted_buyers"
    ON "conv_converted_buyers"."shop_id" = "population"."shop_id"
)
SELECT
  "shop_id",
  "live_days",
  "live_hours",
  "live_weeks",
  "new_followers",
  "distribution_gmv",
  "distribution_promoters",
  "distribution_orders_90d",
  "self_live_gmv",
  "self_live_gmv_prev",
  "self_gmv_all",
  CAST((
    "self_live_gmv" - "self_live_gmv_prev"
  ) / NULLIF(GREATEST("self_live_gmv_prev", 1000), 0) AS DOUBLE) AS "self_live_growth",
  CAST("distribution_gmv" / NULLIF("distribution_gmv" + "self_gmv_all", 0) AS DOUBLE) AS "distribution_share",
  "converted_buyers",
  "reviews_90d",
  "quality_avg_90d",
  "logistics_avg_90d",
  "service_avg_90d",
  "negative_rate_90d",
  "complaint_rate_90d",
  "quality_return_rate_90d"
FROM "metric_values"
