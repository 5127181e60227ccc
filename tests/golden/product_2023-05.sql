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
    "r"."complaint" AS "complaint",
    "r"."cheat" AS "cheat"
  FROM "reviews" AS "r"
  WHERE
    (
      "r"."review_time" >= CAST('2023-03-03 00:00:00' AS TIMESTAMP)
      AND "r"."review_time" < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
    )
    AND NOT (
      "r"."item_id" IS NULL
    )
  UNION ALL
  SELECT
    "r"."review_id" AS "review_id",
    "r"."order_id" AS "order_id",
    "r"."shop_id" AS "shop_id",
    COALESCE("r"."item_id", "o"."item_id") AS "item_id",
    "r"."promoter_id" AS "promoter_id",
    "r"."quality_score" AS "quality_score",
    "r"."logistics_score" AS "logistics_score",
    "r"."service_score" AS "service_score",
    "r"."review_time" AS "review_time",
    "r"."complaint" AS "complaint",
    "r"."cheat" AS "cheat"
  FROM "reviews" AS "r"
  LEFT JOIN "orders" AS "o"
    ON "o"."order_id" = "r"."order_id"
  WHERE
    (
      "r"."review_time" >= CAST('2023-03-03 00:00:00' AS TIMESTAMP)
      AND "r"."review_time" < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
    )
    AND (
      "r"."item_id" IS NULL
    )
), "brushing_pairs" AS (
  SELECT
    "v"."pair"
  FROM (
    SELECT
      "o"."order_id" AS "order_id",
      "o"."shop_id" AS "shop_id",
      "o"."buyer_id" AS "buyer_id",
      "o"."order_time" AS "order_time",
      HASH("o"."shop_id", "o"."buyer_id") AS "pair"
    FROM "orders" AS "o"
    WHERE
      NOT "o"."status" IN ('pending', 'closed')
      AND NOT "o"."shop_id" IS NULL
      AND NOT "o"."buyer_id" IS NULL
  ) AS "v"
  GROUP BY
    "v"."pair"
  HAVING
    COUNT(*) >= 3
), "brushing_paired" AS (
  SELECT
    "o"."order_id" AS "order_id",
    "o"."shop_id" AS "shop_id",
    "o"."buyer_id" AS "buyer_id",
    "o"."order_time" AS "order_time",
    "o"."pair" AS "pair",
    FLOOR((
      EPOCH("o"."order_time")
    ) / 7200) AS "grid_a",
    FLOOR((
      EPOCH("o"."order_time") + 3600
    ) / 7200) AS "grid_b"
  FROM (
    SELECT
      "o"."order_id" AS "order_id",
      "o"."shop_id" AS "shop_id",
      "o"."buyer_id" AS "buyer_id",
      "o"."order_time" AS "order_time",
      HASH("o"."shop_id", "o"."buyer_id") AS "pair"
    FROM "orders" AS "o"
    WHERE
      NOT "o"."status" IN ('pending', 'closed')
      AND NOT "o"."shop_id" IS NULL
      AND NOT "o"."buyer_id" IS NULL
  ) AS "o"
  JOIN "brushing_pairs" AS "p"
    ON "p"."pair" = "o"."pair"
), "brushing_orders" AS (
  SELECT DISTINCT
    "f"."order_id"
  FROM (
    SELECT
      "r"."order_id" AS "order_id",
      COALESCE(
        LEAD("r"."order_time", 2) OVER (
          PARTITION BY "r"."shop_id", "r"."buyer_id"
          ORDER BY "r"."order_time", "r"."order_id"
        ) < "r"."order_time" + INTERVAL '3600' SECOND
        OR LEAD("r"."order_time", 1) OVER (
          PARTITION BY "r"."shop_id", "r"."buyer_id"
          ORDER BY "r"."order_time", "r"."order_id"
        ) < LAG("r"."order_time", 1) OVER (
          PARTITION BY "r"."shop_id", "r"."buyer_id"
          ORDER BY "r"."order_time", "r"."order_id"
        ) + INTERVAL '3600' SECOND
        OR "r"."order_time" < LAG("r"."order_time", 2) OVER (
          PARTITION BY "r"."shop_id", "r"."buyer_id"
          ORDER BY "r"."order_time", "r"."order_id"
        ) + INTERVAL '3600' SECOND,
        FALSE
      ) AS "brushing"
    FROM (
      SELECT
        "c"."order_id",
        "c"."shop_id",
        "c"."buyer_id",
        "c"."order_time"
      FROM "brushing_paired" AS "c"
      LEFT JOIN (
        SELECT
          "g"."pair",
          "g"."grid_a"
        FROM "brushing_paired" AS "g"
        GROUP BY
          "g"."pair",
          "g"."grid_a"
        HAVING
          COUNT(*) >= 3
      ) AS "a"
        ON "a"."pair" = "c"."pair" AND "a"."grid_a" = "c"."grid_a"
      LEFT JOIN (
        SELECT
          "g"."pair",
          "g"."grid_b"
        FROM "brushing_paired" AS "g"
        GROUP BY
          "g"."pair",
          "g"."grid_b"
        HAVING
          COUNT(*) >= 3
      ) AS "b"
        ON "b"."pair" = "c"."pair" AND "b"."grid_b" = "c"."grid_b"
      WHERE
        NOT "a"."pair" IS NULL OR NOT "b"."pair" IS NULL
    ) AS "r"
  ) AS "f"
  WHERE
    "f"."brushing"
), "src_orders" AS (
  SELECT
    "orders"."item_id" AS "item_id",
    AVG(CASE WHEN "orders"."quality_return" THEN 1.0 ELSE 0.0 END) FILTER(WHERE
      (
        NOT "orders"."status" IN ('pending', 'closed')
        AND NOT "orders"."brushing"
        AND NOT "orders"."self_purchase"
      )) AS "quality_return_rate_90d"
  FROM (
    SELECT
      "t"."order_id" AS "order_id",
      "t"."shop_id" AS "shop_id",
      "t"."buyer_id" AS "buyer_id",
      "t"."item_id" AS "item_id",
      "t"."item_name" AS "item_name",
      "t"."promoter_id" AS "promoter_id",
      "t"."sale_mode" AS "sale_mode",
      "t"."carrier" AS "carrier",
      "t"."order_time" AS "order_time",
      "t"."paid_amount" AS "paid_amount",
      "t"."quantity" AS "quantity",
      "t"."status" AS "status",
      "t"."refund_amount" AS "refund_amount",
      "t"."refund_reason" AS "refund_reason",
      "t"."commission" AS "commission",
      "t"."net_amount" AS "net_amount",
      "t"."quality_return" AS "quality_return",
      "t"."promoter_name" AS "promoter_name",
      NOT "brushing_orders"."order_id" IS NULL AS "brushing",
      COALESCE("t"."sale_mode" = 'distribution' AND "t"."buyer_id" = "t"."promoter_id", FALSE) AS "self_purchase"
    FROM "orders" AS "t"
    LEFT JOIN "brushing_orders"
      ON "brushing_orders"."order_id" = "t"."order_id"
  ) AS "orders"
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
    COUNT(*) FILTER(WHERE
      (
        NOT "reviews"."suspicious"
      )) AS "reviews_90d",
    AVG("reviews"."quality_score") FILTER(WHERE
      (
        NOT "reviews"."suspicious"
      )) AS "quality_avg_90d",
    AVG(CASE WHEN "reviews"."quality_score" <= 2 THEN 1.0 ELSE 0.0 END) FILTER(WHERE
      (
        NOT "reviews"."suspicious"
      )) AS "negative_rate_90d"
  FROM (
    SELECT
      "t"."review_id" AS "review_id",
      "t"."order_id" AS "order_id",
      "t"."shop_id" AS "shop_id",
      "t"."item_id" AS "item_id",
      "t"."promoter_id" AS "promoter_id",
      "t"."quality_score" AS "quality_score",
      "t"."logistics_score" AS "logistics_score",
      "t"."service_score" AS "service_score",
      "t"."review_time" AS "review_time",
      "t"."complaint" AS "complaint",
      "t"."cheat" AS "cheat",
      NOT "brushing_orders"."order_id" IS NULL OR COALESCE("t"."cheat", FALSE) AS "suspicious"
    FROM "reviews_filled" AS "t"
    LEFT JOIN "brushing_orders"
      ON "brushing_orders"."order_id" = "t"."order_id"
  ) AS "reviews"
  WHERE
    NOT "reviews"."item_id" IS NULL
    AND (
      "reviews"."review_time" >= CAST('2023-03-03 00:00:00' AS TIMESTAMP)
      AND "reviews"."review_time" < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
    )
  GROUP BY
    "reviews"."item_id"
), "metric_values" AS (
  SELECT
    COALESCE("src_orders"."item_id", "src_reviews"."item_id") AS "item_id",
    CAST(COALESCE("src_reviews"."reviews_90d", 0) AS DOUBLE) AS "reviews_90d",
    CAST("src_reviews"."quality_avg_90d" AS DOUBLE) AS "quality_avg_90d",
    CAST("src_reviews"."negative_rate_90d" AS DOUBLE) AS "negative_rate_90d",
    CAST("src_orders"."quality_return_rate_90d" AS DOUBLE) AS "quality_return_rate_90d"
  FROM "src_orders"
  FULL OUTER JOIN "src_reviews"
    ON "src_reviews"."item_id" = "src_orders"."item_id"
)
SELECT
  "item_id",
  "reviews_90d",
  "quality_avg_90d",
  "negative_rate_90d",
  "quality_return_rate_90d"
FROM "metric_values"
