-- scorecard merchant · chuanliu-2023 · 2023-05
WITH `brushing_pairs` AS (
  SELECT
    `v`.`pair`
  FROM (
    SELECT
      `o`.`order_id` AS `order_id`,
      `o`.`shop_id` AS `shop_id`,
      `o`.`buyer_id` AS `buyer_id`,
      `o`.`order_time` AS `order_time`,
      HASH(`o`.`shop_id`, `o`.`buyer_id`) AS `pair`
    FROM `orders` AS `o`
    WHERE
      NOT `o`.`status` IN ('pending', 'closed')
      AND NOT `o`.`shop_id` IS NULL
      AND NOT `o`.`buyer_id` IS NULL
  ) AS `v`
  GROUP BY
    `v`.`pair`
  HAVING
    COUNT(*) >= 3
), `brushing_paired` AS (
  SELECT
    `o`.`order_id` AS `order_id`,
    `o`.`shop_id` AS `shop_id`,
    `o`.`buyer_id` AS `buyer_id`,
    `o`.`order_time` AS `order_time`,
    `o`.`pair` AS `pair`,
    FLOOR((
      UNIX_TIMESTAMP(`o`.`order_time`)
    ) / 7200) AS `grid_a`,
    FLOOR((
      UNIX_TIMESTAMP(`o`.`order_time`) + 3600
    ) / 7200) AS `grid_b`
  FROM (
    SELECT
      `o`.`order_id` AS `order_id`,
      `o`.`shop_id` AS `shop_id`,
      `o`.`buyer_id` AS `buyer_id`,
      `o`.`order_time` AS `order_time`,
      HASH(`o`.`shop_id`, `o`.`buyer_id`) AS `pair`
    FROM `orders` AS `o`
    WHERE
      NOT `o`.`status` IN ('pending', 'closed')
      AND NOT `o`.`shop_id` IS NULL
      AND NOT `o`.`buyer_id` IS NULL
  ) AS `o`
  JOIN `brushing_pairs` AS `p`
    ON `p`.`pair` = `o`.`pair`
), `brushing_orders` AS (
  SELECT DISTINCT
    `f`.`order_id`
  FROM (
    SELECT
      `r`.`order_id` AS `order_id`,
      COALESCE(
        LEAD(`r`.`order_time`, 2) OVER (
          PARTITION BY `r`.`shop_id`, `r`.`buyer_id`
          ORDER BY `r`.`order_time` NULLS LAST, `r`.`order_id` NULLS LAST
        ) < `r`.`order_time` + INTERVAL '3600' SECOND
        OR LEAD(`r`.`order_time`, 1) OVER (
          PARTITION BY `r`.`shop_id`, `r`.`buyer_id`
          ORDER BY `r`.`order_time` NULLS LAST, `r`.`order_id` NULLS LAST
        ) < LAG(`r`.`order_time`, 1) OVER (
          PARTITION BY `r`.`shop_id`, `r`.`buyer_id`
          ORDER BY `r`.`order_time` NULLS LAST, `r`.`order_id` NULLS LAST
        ) + INTERVAL '3600' SECOND
        OR `r`.`order_time` < LAG(`r`.`order_time`, 2) OVER (
          PARTITION BY `r`.`shop_id`, `r`.`buyer_id`
          ORDER BY `r`.`order_time` NULLS LAST, `r`.`order_id` NULLS LAST
        ) + INTERVAL '3600' SECOND,
        FALSE
      ) AS `brushing`
    FROM (
      SELECT
        `c`.`order_id`,
        `c`.`shop_id`,
        `c`.`buyer_id`,
        `c`.`order_time`
      FROM `brushing_paired` AS `c`
      LEFT JOIN (
        SELECT
          `g`.`pair`,
          `g`.`grid_a`
        FROM `brushing_paired` AS `g`
        GROUP BY
          `g`.`pair`,
          `g`.`grid_a`
        HAVING
          COUNT(*) >= 3
      ) AS `a`
        ON `a`.`pair` = `c`.`pair` AND `a`.`grid_a` = `c`.`grid_a`
      LEFT JOIN (
        SELECT
          `g`.`pair`,
          `g`.`grid_b`
        FROM `brushing_paired` AS `g`
        GROUP BY
          `g`.`pair`,
          `g`.`grid_b`
        HAVING
          COUNT(*) >= 3
      ) AS `b`
        ON `b`.`pair` = `c`.`pair` AND `b`.`grid_b` = `c`.`grid_b`
      WHERE
        NOT `a`.`pair` IS NULL OR NOT `b`.`pair` IS NULL
    ) AS `r`
  ) AS `f`
  WHERE
    `f`.`brushing`
), `src_orders` AS (
  SELECT
    `orders`.`shop_id` AS `shop_id`,
    COALESCE(
      SUM(`orders`.`net_amount`) FILTER(WHERE
        (
          `orders`.`order_time` >= CAST('2023-05-01 00:00:00' AS TIMESTAMP)
          AND `orders`.`order_time` < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
        )
        AND (
          (
            NOT `orders`.`status` IN ('pending', 'closed')
            AND NOT `orders`.`brushing`
            AND NOT `orders`.`self_purchase`
          )
          AND `orders`.`sale_mode` = 'distribution'
        )),
      0
    ) AS `distribution_gmv`,
    COUNT(DISTINCT `orders`.`promoter_id`) FILTER(WHERE
      (
        `orders`.`order_time` >= CAST('2023-05-01 00:00:00' AS TIMESTAMP)
        AND `orders`.`order_time` < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
      )
      AND (
        (
          NOT `orders`.`status` IN ('pending', 'closed')
          AND NOT `orders`.`brushing`
          AND NOT `orders`.`self_purchase`
        )
        AND `orders`.`sale_mode` = 'distribution'
      )) AS `distribution_promoters`,
    COUNT(*) FILTER(WHERE
      (
        (
          NOT `orders`.`status` IN ('pending', 'closed')
          AND NOT `orders`.`brushing`
          AND NOT `orders`.`self_purchase`
        )
        AND `orders`.`sale_mode` = 'distribution'
      )) AS `distribution_orders_90d`,
    COALESCE(
      SUM(`orders`.`net_amount`) FILTER(WHERE
        (
          `orders`.`order_time` >= CAST('2023-05-01 00:00:00' AS TIMESTAMP)
          AND `orders`.`order_time` < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
        )
        AND (
          (
            NOT `orders`.`status` IN ('pending', 'closed')
            AND NOT `orders`.`brushing`
            AND NOT `orders`.`self_purchase`
          )
          AND `orders`.`sale_mode` = 'self'
          AND `orders`.`carrier` = 'live'
        )),
      0
    ) AS `self_live_gmv`,
    COALESCE(
      SUM(`orders`.`net_amount`) FILTER(WHERE
        (
          `orders`.`order_time` >= CAST('2023-04-01 00:00:00' AS TIMESTAMP)
          AND `orders`.`order_time` < CAST('2023-05-01 00:00:00' AS TIMESTAMP)
        )
        AND (
          (
            NOT `orders`.`status` IN ('pending', 'closed')
            AND NOT `orders`.`brushing`
            AND NOT `orders`.`self_purchase`
          )
          AND `orders`.`sale_mode` = 'self'
          AND `orders`.`carrier` = 'live'
        )),
      0
    ) AS `self_live_gmv_prev`,
    COALESCE(
      SUM(`orders`.`net_amount`) FILTER(WHERE
        (
          `orders`.`order_time` >= CAST('2023-05-01 00:00:00' AS TIMESTAMP)
          AND `orders`.`order_time` < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
        )
        AND (
          (
            NOT `orders`.`status` IN ('pending', 'closed')
            AND NOT `orders`.`brushing`
            AND NOT `orders`.`self_purchase`
          )
          AND `orders`.`sale_mode` = 'self'
        )),
      0
    ) AS `self_gmv_all`,
    (
      CAST(COALESCE(
        SUM(CASE WHEN `orders`.`quality_return` THEN 1.0 ELSE 0.0 END) FILTER(WHERE
          (
            NOT `orders`.`status` IN ('pending', 'closed')
            AND NOT `orders`.`brushing`
            AND NOT `orders`.`self_purchase`
          )),
        0
      ) AS DOUBLE) / CAST(NULLIF(
        COUNT(CASE WHEN `orders`.`quality_return` THEN 1.0 ELSE 0.0 END) FILTER(WHERE
          (
            NOT `orders`.`status` IN ('pending', 'closed')
            AND NOT `orders`.`brushing`
            AND NOT `orders`.`self_purchase`
          )),
        0
      ) AS DOUBLE)
    ) AS `quality_return_rate_90d`
  FROM (
    SELECT
      `t`.`order_id` AS `order_id`,
      `t`.`shop_id` AS `shop_id`,
      `t`.`buyer_id` AS `buyer_id`,
      `t`.`item_id` AS `item_id`,
      `t`.`item_name` AS `item_name`,
      `t`.`promoter_id` AS `promoter_id`,
      `t`.`sale_mode` AS `sale_mode`,
      `t`.`carrier` AS `carrier`,
      `t`.`order_time` AS `order_time`,
      `t`.`paid_amount` AS `paid_amount`,
      `t`.`quantity` AS `quantity`,
      `t`.`status` AS `status`,
      `t`.`refund_amount` AS `refund_amount`,
      `t`.`refund_reason` AS `refund_reason`,
      `t`.`commission` AS `commission`,
      `t`.`net_amount` AS `net_amount`,
      `t`.`quality_return` AS `quality_return`,
      `t`.`promoter_name` AS `promoter_name`,
      NOT `brushing_orders`.`order_id` IS NULL AS `brushing`,
      COALESCE(`t`.`sale_mode` = 'distribution' AND `t`.`buyer_id` = `t`.`promoter_id`, FALSE) AS `self_purchase`
    FROM `orders` AS `t`
    LEFT JOIN `brushing_orders`
      ON `brushing_orders`.`order_id` = `t`.`order_id`
  ) AS `orders`
  WHERE
    NOT `orders`.`shop_id` IS NULL
    AND (
      `orders`.`order_time` >= CAST('2023-03-03 00:00:00' AS TIMESTAMP)
      AND `orders`.`order_time` < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
    )
  GROUP BY
    `orders`.`shop_id`
), `src_reviews` AS (
  SELECT
    `reviews`.`shop_id` AS `shop_id`,
    COUNT(*) FILTER(WHERE
      (
        NOT `reviews`.`suspicious`
      )) AS `reviews_90d`,
    AVG(`reviews`.`quality_score`) FILTER(WHERE
      (
        NOT `reviews`.`suspicious`
      )) AS `quality_avg_90d`,
    AVG(`reviews`.`logistics_score`) FILTER(WHERE
      (
        NOT `reviews`.`suspicious`
      )) AS `logistics_avg_90d`,
    AVG(`reviews`.`service_score`) FILTER(WHERE
      (
        NOT `reviews`.`suspicious`
      )) AS `service_avg_90d`,
    (
      CAST(COALESCE(
        SUM(CASE WHEN `reviews`.`quality_score` <= 2 THEN 1.0 ELSE 0.0 END) FILTER(WHERE
          (
            NOT `reviews`.`suspicious`
          )),
        0
      ) AS DOUBLE) / CAST(NULLIF(
        COUNT(CASE WHEN `reviews`.`quality_score` <= 2 THEN 1.0 ELSE 0.0 END) FILTER(WHERE
          (
            NOT `reviews`.`suspicious`
          )),
        0
      ) AS DOUBLE)
    ) AS `negative_rate_90d`,
    (
      CAST(COALESCE(
        SUM(CASE WHEN `reviews`.`complaint` THEN 1.0 ELSE 0.0 END) FILTER(WHERE
          (
            NOT `reviews`.`suspicious`
          )),
        0
      ) AS DOUBLE) / CAST(NULLIF(
        COUNT(CASE WHEN `reviews`.`complaint` THEN 1.0 ELSE 0.0 END) FILTER(WHERE
          (
            NOT `reviews`.`suspicious`
          )),
        0
      ) AS DOUBLE)
    ) AS `complaint_rate_90d`
  FROM (
    SELECT
      `t`.`review_id` AS `review_id`,
      `t`.`order_id` AS `order_id`,
      `t`.`shop_id` AS `shop_id`,
      `t`.`item_id` AS `item_id`,
      `t`.`promoter_id` AS `promoter_id`,
      `t`.`quality_score` AS `quality_score`,
      `t`.`logistics_score` AS `logistics_score`,
      `t`.`service_score` AS `service_score`,
      `t`.`review_time` AS `review_time`,
      `t`.`complaint` AS `complaint`,
      `t`.`cheat` AS `cheat`,
      NOT `brushing_orders`.`order_id` IS NULL OR COALESCE(`t`.`cheat`, FALSE) AS `suspicious`
    FROM `reviews` AS `t`
    LEFT JOIN `brushing_orders`
      ON `brushing_orders`.`order_id` = `t`.`order_id`
  ) AS `reviews`
  WHERE
    NOT `reviews`.`shop_id` IS NULL
    AND (
      `reviews`.`review_time` >= CAST('2023-03-03 00:00:00' AS TIMESTAMP)
      AND `reviews`.`review_time` < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
    )
  GROUP BY
    `reviews`.`shop_id`
), `src_livestreams` AS (
  SELECT
    `livestreams`.`shop_id` AS `shop_id`,
    COUNT(DISTINCT CAST(`livestreams`.`start_time` AS DATE)) FILTER(WHERE
      (
        `livestreams`.`host_type` = 'self'
        AND `livestreams`.`duration_minutes` >= 30
        AND NOT `livestreams`.`idle`
      )) AS `live_days`,
    COALESCE(
      SUM(`livestreams`.`duration_minutes`) FILTER(WHERE
        (
          `livestreams`.`host_type` = 'self' AND NOT `livestreams`.`idle`
        )),
      0
    ) / 60 AS `live_hours`,
    COUNT(DISTINCT DATE_TRUNC('WEEK', `livestreams`.`start_time`)) FILTER(WHERE
      (
        `livestreams`.`host_type` = 'self'
        AND `livestreams`.`duration_minutes` >= 30
        AND NOT `livestreams`.`idle`
      )) AS `live_weeks`,
    COALESCE(
      SUM(`livestreams`.`new_followers`) FILTER(WHERE
        (
          `livestreams`.`host_type` = 'self'
        )),
      0
    ) AS `new_followers`
  FROM (
    SELECT
      `t`.`live_id` AS `live_id`,
      `t`.`shop_id` AS `shop_id`,
      `t`.`host_type` AS `host_type`,
      `t`.`promoter_id` AS `promoter_id`,
      `t`.`start_time` AS `start_time`,
      `t`.`end_time` AS `end_time`,
      `t`.`duration_minutes` AS `duration_minutes`,
      `t`.`viewers` AS `viewers`,
      `t`.`new_followers` AS `new_followers`,
      `t`.`gmv` AS `gmv`,
      COALESCE(
        NOT `t`.`viewers` IS NULL
        AND `t`.`viewers` * 60 < CAST(10 AS DOUBLE) * `t`.`duration_minutes`,
        FALSE
      ) AS `idle`
    FROM `livestreams` AS `t`
  ) AS `livestreams`
  WHERE
    NOT `livestreams`.`shop_id` IS NULL
    AND (
      `livestreams`.`start_time` >= CAST('2023-05-01 00:00:00' AS TIMESTAMP)
      AND `livestreams`.`start_time` < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
    )
  GROUP BY
    `livestreams`.`shop_id`
), `conv_converted_buyers_then` AS (
  SELECT
    `orders`.`shop_id` AS `shop_id`,
    `orders`.`buyer_id` AS `conversion_key`,
    MAX(`orders`.`order_time`) AS `then_time`
  FROM (
    SELECT
      `t`.`order_id` AS `order_id`,
      `t`.`shop_id` AS `shop_id`,
      `t`.`buyer_id` AS `buyer_id`,
      `t`.`item_id` AS `item_id`,
      `t`.`item_name` AS `item_name`,
      `t`.`promoter_id` AS `promoter_id`,
      `t`.`sale_mode` AS `sale_mode`,
      `t`.`carrier` AS `carrier`,
      `t`.`order_time` AS `order_time`,
      `t`.`paid_amount` AS `paid_amount`,
      `t`.`quantity` AS `quantity`,
      `t`.`status` AS `status`,
      `t`.`refund_amount` AS `refund_amount`,
      `t`.`refund_reason` AS `refund_reason`,
      `t`.`commission` AS `commission`,
      `t`.`net_amount` AS `net_amount`,
      `t`.`quality_return` AS `quality_return`,
      `t`.`promoter_name` AS `promoter_name`,
      NOT `brushing_orders`.`order_id` IS NULL AS `brushing`,
      COALESCE(`t`.`sale_mode` = 'distribution' AND `t`.`buyer_id` = `t`.`promoter_id`, FALSE) AS `self_purchase`
    FROM `orders` AS `t`
    LEFT JOIN `brushing_orders`
      ON `brushing_orders`.`order_id` = `t`.`order_id`
  ) AS `orders`
  WHERE
    NOT `orders`.`shop_id` IS NULL
    AND NOT `orders`.`buyer_id` IS NULL
    AND (
      (
        `orders`.`order_time` >= CAST('2023-05-01 00:00:00' AS TIMESTAMP)
        AND `orders`.`order_time` < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
      )
      AND (
        (
          NOT `orders`.`status` IN ('pending', 'closed')
          AND NOT `orders`.`brushing`
          AND NOT `orders`.`self_purchase`
        )
        AND `orders`.`sale_mode` = 'self'
        AND `orders`.`carrier` = 'live'
      )
    )
  GROUP BY
    `orders`.`shop_id`,
    `orders`.`buyer_id`
), `conv_converted_buyers_pairs` AS (
  SELECT
    `orders`.`shop_id` AS `shop_id`,
    `orders`.`buyer_id` AS `conversion_key`,
    MIN(`orders`.`order_time`) AS `first_time`,
    MAX(`conv_converted_buyers_then`.`then_time`) AS `then_time`
  FROM (
    SELECT
      `t`.`order_id` AS `order_id`,
      `t`.`shop_id` AS `shop_id`,
      `t`.`buyer_id` AS `buyer_id`,
      `t`.`item_id` AS `item_id`,
      `t`.`item_name` AS `item_name`,
      `t`.`promoter_id` AS `promoter_id`,
      `t`.`sale_mode` AS `sale_mode`,
      `t`.`carrier` AS `carrier`,
      `t`.`order_time` AS `order_time`,
      `t`.`paid_amount` AS `paid_amount`,
      `t`.`quantity` AS `quantity`,
      `t`.`status` AS `status`,
      `t`.`refund_amount` AS `refund_amount`,
      `t`.`refund_reason` AS `refund_reason`,
      `t`.`commission` AS `commission`,
      `t`.`net_amount` AS `net_amount`,
      `t`.`quality_return` AS `quality_return`,
      `t`.`promoter_name` AS `promoter_name`,
      NOT `brushing_orders`.`order_id` IS NULL AS `brushing`,
      COALESCE(`t`.`sale_mode` = 'distribution' AND `t`.`buyer_id` = `t`.`promoter_id`, FALSE) AS `self_purchase`
    FROM `orders` AS `t`
    LEFT JOIN `brushing_orders`
      ON `brushing_orders`.`order_id` = `t`.`order_id`
  ) AS `orders`
  JOIN `conv_converted_buyers_then`
    ON `orders`.`shop_id` = `conv_converted_buyers_then`.`shop_id`
    AND `orders`.`buyer_id` = `conv_converted_buyers_then`.`conversion_key`
  WHERE
    NOT `orders`.`shop_id` IS NULL
    AND NOT `orders`.`buyer_id` IS NULL
    AND (
      (
        `orders`.`order_time` >= CAST('2023-03-03 00:00:00' AS TIMESTAMP)
        AND `orders`.`order_time` < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
      )
      AND (
        (
          NOT `orders`.`status` IN ('pending', 'closed')
          AND NOT `orders`.`brushing`
          AND NOT `orders`.`self_purchase`
        )
        AND `orders`.`sale_mode` = 'distribution'
      )
    )
  GROUP BY
    `orders`.`shop_id`,
    `orders`.`buyer_id`
), `conv_converted_buyers` AS (
  SELECT
    `conv_converted_buyers_pairs`.`shop_id` AS `shop_id`,
    COUNT(*) AS `converted_buyers`
  FROM `conv_converted_buyers_pairs`
  WHERE
    `conv_converted_buyers_pairs`.`then_time` > `conv_converted_buyers_pairs`.`first_time`
  GROUP BY
    `conv_converted_buyers_pairs`.`shop_id`
), `metric_values` AS (
  SELECT
    COALESCE(`src_orders`.`shop_id`, `src_reviews`.`shop_id`, `src_livestreams`.`shop_id`) AS `shop_id`,
    CAST(COALESCE(`src_livestreams`.`live_days`, 0) AS DOUBLE) AS `live_days`,
    CAST(COALESCE(`src_livestreams`.`live_hours`, 0) AS DOUBLE) AS `live_hours`,
    CAST(COALESCE(`src_livestreams`.`live_weeks`, 0) AS DOUBLE) AS `live_weeks`,
    CAST(COALESCE(`src_livestreams`.`new_followers`, 0) AS DOUBLE) AS `new_followers`,
    CAST(COALESCE(`src_orders`.`distribution_gmv`, 0) AS DOUBLE) AS `distribution_gmv`,
    CAST(COALESCE(`src_orders`.`distribution_promoters`, 0) AS DOUBLE) AS `distribution_promoters`,
    CAST(COALESCE(`src_orders`.`distribution_orders_90d`, 0) AS DOUBLE) AS `distribution_orders_90d`,
    CAST(COALESCE(`src_orders`.`self_live_gmv`, 0) AS DOUBLE) AS `self_live_gmv`,
    CAST(COALESCE(`src_orders`.`self_live_gmv_prev`, 0) AS DOUBLE) AS `self_live_gmv_prev`,
    CAST(COALESCE(`src_orders`.`self_gmv_all`, 0) AS DOUBLE) AS `self_gmv_all`,
    CAST(COALESCE(`conv_converted_buyers`.`converted_buyers`, 0) AS DOUBLE) AS `converted_buyers`,
    CAST(COALESCE(`src_reviews`.`reviews_90d`, 0) AS DOUBLE) AS `reviews_90d`,
    CAST(`src_reviews`.`quality_avg_90d` AS DOUBLE) AS `quality_avg_90d`,
    CAST(`src_reviews`.`logistics_avg_90d` AS DOUBLE) AS `logistics_avg_90d`,
    CAST(`src_reviews`.`service_avg_90d` AS DOUBLE) AS `service_avg_90d`,
    CAST(`src_reviews`.`negative_rate_90d` AS DOUBLE) AS `negative_rate_90d`,
    CAST(`src_reviews`.`complaint_rate_90d` AS DOUBLE) AS `complaint_rate_90d`,
    CAST(`src_orders`.`quality_return_rate_90d` AS DOUBLE) AS `quality_return_rate_90d`
  FROM `src_orders`
  FULL OUTER JOIN `src_reviews`
    ON `src_reviews`.`shop_id` = `src_orders`.`shop_id`
  FULL OUTER JOIN `src_livestreams`
    ON `src_livestreams`.`shop_id` = COALESCE(`src_orders`.`shop_id`, `src_reviews`.`shop_id`)
  LEFT JOIN `conv_converted_buyers`
    ON `conv_converted_buyers`.`shop_id` = COALESCE(`src_orders`.`shop_id`, `src_reviews`.`shop_id`, `src_livestreams`.`shop_id`)
)
SELECT
  `shop_id`,
  `live_days`,
  `live_hours`,
  `live_weeks`,
  `new_followers`,
  `distribution_gmv`,
  `distribution_promoters`,
  `distribution_orders_90d`,
  `self_live_gmv`,
  `self_live_gmv_prev`,
  `self_gmv_all`,
  CAST((
    `self_live_gmv` - `self_live_gmv_prev`
  ) / NULLIF(GREATEST(`self_live_gmv_prev`, 1000), 0) AS DOUBLE) AS `self_live_growth`,
  CAST(`distribution_gmv` / NULLIF(`distribution_gmv` + `self_gmv_all`, 0) AS DOUBLE) AS `distribution_share`,
  `converted_buyers`,
  `reviews_90d`,
  `quality_avg_90d`,
  `logistics_avg_90d`,
  `service_avg_90d`,
  `negative_rate_90d`,
  `complaint_rate_90d`,
  `quality_return_rate_90d`
FROM `metric_values`;

-- scorecard promoter · chuanliu-2023 · 2023-05
WITH `reviews_filled` AS (
  SELECT
    `r`.`review_id` AS `review_id`,
    `r`.`order_id` AS `order_id`,
    `r`.`shop_id` AS `shop_id`,
    `r`.`item_id` AS `item_id`,
    `r`.`promoter_id` AS `promoter_id`,
    `r`.`quality_score` AS `quality_score`,
    `r`.`logistics_score` AS `logistics_score`,
    `r`.`service_score` AS `service_score`,
    `r`.`review_time` AS `review_time`,
    `r`.`complaint` AS `complaint`,
    `r`.`cheat` AS `cheat`
  FROM `reviews` AS `r`
  WHERE
    (
      `r`.`review_time` >= CAST('2023-03-03 00:00:00' AS TIMESTAMP)
      AND `r`.`review_time` < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
    )
    AND NOT (
      `r`.`promoter_id` IS NULL
    )
  UNION ALL
  SELECT
    `r`.`review_id` AS `review_id`,
    `r`.`order_id` AS `order_id`,
    `r`.`shop_id` AS `shop_id`,
    `r`.`item_id` AS `item_id`,
    COALESCE(`r`.`promoter_id`, `o`.`promoter_id`) AS `promoter_id`,
    `r`.`quality_score` AS `quality_score`,
    `r`.`logistics_score` AS `logistics_score`,
    `r`.`service_score` AS `service_score`,
    `r`.`review_time` AS `review_time`,
    `r`.`complaint` AS `complaint`,
    `r`.`cheat` AS `cheat`
  FROM `reviews` AS `r`
  LEFT JOIN `orders` AS `o`
    ON `o`.`order_id` = `r`.`order_id`
  WHERE
    (
      `r`.`review_time` >= CAST('2023-03-03 00:00:00' AS TIMESTAMP)
      AND `r`.`review_time` < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
    )
    AND (
      `r`.`promoter_id` IS NULL
    )
), `brushing_pairs` AS (
  SELECT
    `v`.`pair`
  FROM (
    SELECT
      `o`.`order_id` AS `order_id`,
      `o`.`shop_id` AS `shop_id`,
      `o`.`buyer_id` AS `buyer_id`,
      `o`.`order_time` AS `order_time`,
      HASH(`o`.`shop_id`, `o`.`buyer_id`) AS `pair`
    FROM `orders` AS `o`
    WHERE
      NOT `o`.`status` IN ('pending', 'closed')
      AND NOT `o`.`shop_id` IS NULL
      AND NOT `o`.`buyer_id` IS NULL
  ) AS `v`
  GROUP BY
    `v`.`pair`
  HAVING
    COUNT(*) >= 3
), `brushing_paired` AS (
  SELECT
    `o`.`order_id` AS `order_id`,
    `o`.`shop_id` AS `shop_id`,
    `o`.`buyer_id` AS `buyer_id`,
    `o`.`order_time` AS `order_time`,
    `o`.`pair` AS `pair`,
    FLOOR((
      UNIX_TIMESTAMP(`o`.`order_time`)
    ) / 7200) AS `grid_a`,
    FLOOR((
      UNIX_TIMESTAMP(`o`.`order_time`) + 3600
    ) / 7200) AS `grid_b`
  FROM (
    SELECT
      `o`.`order_id` AS `order_id`,
      `o`.`shop_id` AS `shop_id`,
      `o`.`buyer_id` AS `buyer_id`,
      `o`.`order_time` AS `order_time`,
      HASH(`o`.`shop_id`, `o`.`buyer_id`) AS `pair`
    FROM `orders` AS `o`
    WHERE
      NOT `o`.`status` IN ('pending', 'closed')
      AND NOT `o`.`shop_id` IS NULL
      AND NOT `o`.`buyer_id` IS NULL
  ) AS `o`
  JOIN `brushing_pairs` AS `p`
    ON `p`.`pair` = `o`.`pair`
), `brushing_orders` AS (
  SELECT DISTINCT
    `f`.`order_id`
  FROM (
    SELECT
      `r`.`order_id` AS `order_id`,
      COALESCE(
        LEAD(`r`.`order_time`, 2) OVER (
          PARTITION BY `r`.`shop_id`, `r`.`buyer_id`
          ORDER BY `r`.`order_time` NULLS LAST, `r`.`order_id` NULLS LAST
        ) < `r`.`order_time` + INTERVAL '3600' SECOND
        OR LEAD(`r`.`order_time`, 1) OVER (
          PARTITION BY `r`.`shop_id`, `r`.`buyer_id`
          ORDER BY `r`.`order_time` NULLS LAST, `r`.`order_id` NULLS LAST
        ) < LAG(`r`.`order_time`, 1) OVER (
          PARTITION BY `r`.`shop_id`, `r`.`buyer_id`
          ORDER BY `r`.`order_time` NULLS LAST, `r`.`order_id` NULLS LAST
        ) + INTERVAL '3600' SECOND
        OR `r`.`order_time` < LAG(`r`.`order_time`, 2) OVER (
          PARTITION BY `r`.`shop_id`, `r`.`buyer_id`
          ORDER BY `r`.`order_time` NULLS LAST, `r`.`order_id` NULLS LAST
        ) + INTERVAL '3600' SECOND,
        FALSE
      ) AS `brushing`
    FROM (
      SELECT
        `c`.`order_id`,
        `c`.`shop_id`,
        `c`.`buyer_id`,
        `c`.`order_time`
      FROM `brushing_paired` AS `c`
      LEFT JOIN (
        SELECT
          `g`.`pair`,
          `g`.`grid_a`
        FROM `brushing_paired` AS `g`
        GROUP BY
          `g`.`pair`,
          `g`.`grid_a`
        HAVING
          COUNT(*) >= 3
      ) AS `a`
        ON `a`.`pair` = `c`.`pair` AND `a`.`grid_a` = `c`.`grid_a`
      LEFT JOIN (
        SELECT
          `g`.`pair`,
          `g`.`grid_b`
        FROM `brushing_paired` AS `g`
        GROUP BY
          `g`.`pair`,
          `g`.`grid_b`
        HAVING
          COUNT(*) >= 3
      ) AS `b`
        ON `b`.`pair` = `c`.`pair` AND `b`.`grid_b` = `c`.`grid_b`
      WHERE
        NOT `a`.`pair` IS NULL OR NOT `b`.`pair` IS NULL
    ) AS `r`
  ) AS `f`
  WHERE
    `f`.`brushing`
), `src_orders` AS (
  SELECT
    `orders`.`promoter_id` AS `promoter_id`,
    COALESCE(
      SUM(`orders`.`net_amount`) FILTER(WHERE
        (
          (
            NOT `orders`.`status` IN ('pending', 'closed')
            AND NOT `orders`.`brushing`
            AND NOT `orders`.`self_purchase`
          )
          AND `orders`.`sale_mode` = 'distribution'
          AND `scorecard_merchant`.`eligible`
        )),
      0
    ) AS `carried_gmv`,
    COUNT(DISTINCT `orders`.`shop_id`) FILTER(WHERE
      (
        (
          NOT `orders`.`status` IN ('pending', 'closed')
          AND NOT `orders`.`brushing`
          AND NOT `orders`.`self_purchase`
        )
        AND `orders`.`sale_mode` = 'distribution'
        AND `scorecard_merchant`.`eligible`
      )) AS `carried_merchants`
  FROM (
    SELECT
      `t`.`order_id` AS `order_id`,
      `t`.`shop_id` AS `shop_id`,
      `t`.`buyer_id` AS `buyer_id`,
      `t`.`item_id` AS `item_id`,
      `t`.`item_name` AS `item_name`,
      `t`.`promoter_id` AS `promoter_id`,
      `t`.`sale_mode` AS `sale_mode`,
      `t`.`carrier` AS `carrier`,
      `t`.`order_time` AS `order_time`,
      `t`.`paid_amount` AS `paid_amount`,
      `t`.`quantity` AS `quantity`,
      `t`.`status` AS `status`,
      `t`.`refund_amount` AS `refund_amount`,
      `t`.`refund_reason` AS `refund_reason`,
      `t`.`commission` AS `commission`,
      `t`.`net_amount` AS `net_amount`,
      `t`.`quality_return` AS `quality_return`,
      `t`.`promoter_name` AS `promoter_name`,
      NOT `brushing_orders`.`order_id` IS NULL AS `brushing`,
      COALESCE(`t`.`sale_mode` = 'distribution' AND `t`.`buyer_id` = `t`.`promoter_id`, FALSE) AS `self_purchase`
    FROM `orders` AS `t`
    LEFT JOIN `brushing_orders`
      ON `brushing_orders`.`order_id` = `t`.`order_id`
  ) AS `orders`
  LEFT JOIN `scorecard_merchant`
    ON `scorecard_merchant`.`shop_id` = `orders`.`shop_id`
  WHERE
    NOT `orders`.`promoter_id` IS NULL
    AND (
      `orders`.`order_time` >= CAST('2023-05-01 00:00:00' AS TIMESTAMP)
      AND `orders`.`order_time` < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
    )
  GROUP BY
    `orders`.`promoter_id`
), `src_reviews` AS (
  SELECT
    `reviews`.`promoter_id` AS `promoter_id`,
    COUNT(*) FILTER(WHERE
      (
        NOT `reviews`.`suspicious`
      )) AS `reviews_90d`,
    AVG(`reviews`.`quality_score`) FILTER(WHERE
      (
        NOT `reviews`.`suspicious`
      )) AS `quality_avg_90d`,
    AVG(`reviews`.`service_score`) FILTER(WHERE
      (
        NOT `reviews`.`suspicious`
      )) AS `service_avg_90d`,
    (
      CAST(COALESCE(
        SUM(CASE WHEN `reviews`.`quality_score` <= 2 THEN 1.0 ELSE 0.0 END) FILTER(WHERE
          (
            NOT `reviews`.`suspicious`
          )),
        0
      ) AS DOUBLE) / CAST(NULLIF(
        COUNT(CASE WHEN `reviews`.`quality_score` <= 2 THEN 1.0 ELSE 0.0 END) FILTER(WHERE
          (
            NOT `reviews`.`suspicious`
          )),
        0
      ) AS DOUBLE)
    ) AS `negative_rate_90d`
  FROM (
    SELECT
      `t`.`review_id` AS `review_id`,
      `t`.`order_id` AS `order_id`,
      `t`.`shop_id` AS `shop_id`,
      `t`.`item_id` AS `item_id`,
      `t`.`promoter_id` AS `promoter_id`,
      `t`.`quality_score` AS `quality_score`,
      `t`.`logistics_score` AS `logistics_score`,
      `t`.`service_score` AS `service_score`,
      `t`.`review_time` AS `review_time`,
      `t`.`complaint` AS `complaint`,
      `t`.`cheat` AS `cheat`,
      NOT `brushing_orders`.`order_id` IS NULL OR COALESCE(`t`.`cheat`, FALSE) AS `suspicious`
    FROM `reviews_filled` AS `t`
    LEFT JOIN `brushing_orders`
      ON `brushing_orders`.`order_id` = `t`.`order_id`
  ) AS `reviews`
  WHERE
    NOT `reviews`.`promoter_id` IS NULL
    AND (
      `reviews`.`review_time` >= CAST('2023-03-03 00:00:00' AS TIMESTAMP)
      AND `reviews`.`review_time` < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
    )
  GROUP BY
    `reviews`.`promoter_id`
), `src_livestreams` AS (
  SELECT
    `livestreams`.`promoter_id` AS `promoter_id`,
    COUNT(DISTINCT CAST(`livestreams`.`start_time` AS DATE)) FILTER(WHERE
      (
        `livestreams`.`host_type` = 'promoter'
        AND `livestreams`.`duration_minutes` >= 30
        AND NOT `livestreams`.`idle`
      )) AS `promoter_live_days`
  FROM (
    SELECT
      `t`.`live_id` AS `live_id`,
      `t`.`shop_id` AS `shop_id`,
      `t`.`host_type` AS `host_type`,
      `t`.`promoter_id` AS `promoter_id`,
      `t`.`start_time` AS `start_time`,
      `t`.`end_time` AS `end_time`,
      `t`.`duration_minutes` AS `duration_minutes`,
      `t`.`viewers` AS `viewers`,
      `t`.`new_followers` AS `new_followers`,
      `t`.`gmv` AS `gmv`,
      COALESCE(
        NOT `t`.`viewers` IS NULL
        AND `t`.`viewers` * 60 < CAST(10 AS DOUBLE) * `t`.`duration_minutes`,
        FALSE
      ) AS `idle`
    FROM `livestreams` AS `t`
  ) AS `livestreams`
  WHERE
    NOT `livestreams`.`promoter_id` IS NULL
    AND (
      `livestreams`.`start_time` >= CAST('2023-05-01 00:00:00' AS TIMESTAMP)
      AND `livestreams`.`start_time` < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
    )
  GROUP BY
    `livestreams`.`promoter_id`
), `metric_values` AS (
  SELECT
    COALESCE(
      `src_orders`.`promoter_id`,
      `src_reviews`.`promoter_id`,
      `src_livestreams`.`promoter_id`
    ) AS `promoter_id`,
    CAST(COALESCE(`src_orders`.`carried_gmv`, 0) AS DOUBLE) AS `carried_gmv`,
    CAST(COALESCE(`src_orders`.`carried_merchants`, 0) AS DOUBLE) AS `carried_merchants`,
    CAST(COALESCE(`src_livestreams`.`promoter_live_days`, 0) AS DOUBLE) AS `promoter_live_days`,
    CAST(COALESCE(`src_reviews`.`reviews_90d`, 0) AS DOUBLE) AS `reviews_90d`,
    CAST(`src_reviews`.`quality_avg_90d` AS DOUBLE) AS `quality_avg_90d`,
    CAST(`src_reviews`.`service_avg_90d` AS DOUBLE) AS `service_avg_90d`,
    CAST(`src_reviews`.`negative_rate_90d` AS DOUBLE) AS `negative_rate_90d`
  FROM `src_orders`
  FULL OUTER JOIN `src_reviews`
    ON `src_reviews`.`promoter_id` = `src_orders`.`promoter_id`
  FULL OUTER JOIN `src_livestreams`
    ON `src_livestreams`.`promoter_id` = COALESCE(`src_orders`.`promoter_id`, `src_reviews`.`promoter_id`)
)
SELECT
  `promoter_id`,
  `carried_gmv`,
  `carried_merchants`,
  `promoter_live_days`,
  `reviews_90d`,
  `quality_avg_90d`,
  `service_avg_90d`,
  `negative_rate_90d`
FROM `metric_values`;

-- scorecard product · chuanliu-2023 · 2023-05
WITH `reviews_filled` AS (
  SELECT
    `r`.`review_id` AS `review_id`,
    `r`.`order_id` AS `order_id`,
    `r`.`shop_id` AS `shop_id`,
    `r`.`item_id` AS `item_id`,
    `r`.`promoter_id` AS `promoter_id`,
    `r`.`quality_score` AS `quality_score`,
    `r`.`logistics_score` AS `logistics_score`,
    `r`.`service_score` AS `service_score`,
    `r`.`review_time` AS `review_time`,
    `r`.`complaint` AS `complaint`,
    `r`.`cheat` AS `cheat`
  FROM `reviews` AS `r`
  WHERE
    (
      `r`.`review_time` >= CAST('2023-03-03 00:00:00' AS TIMESTAMP)
      AND `r`.`review_time` < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
    )
    AND NOT (
      `r`.`item_id` IS NULL
    )
  UNION ALL
  SELECT
    `r`.`review_id` AS `review_id`,
    `r`.`order_id` AS `order_id`,
    `r`.`shop_id` AS `shop_id`,
    COALESCE(`r`.`item_id`, `o`.`item_id`) AS `item_id`,
    `r`.`promoter_id` AS `promoter_id`,
    `r`.`quality_score` AS `quality_score`,
    `r`.`logistics_score` AS `logistics_score`,
    `r`.`service_score` AS `service_score`,
    `r`.`review_time` AS `review_time`,
    `r`.`complaint` AS `complaint`,
    `r`.`cheat` AS `cheat`
  FROM `reviews` AS `r`
  LEFT JOIN `orders` AS `o`
    ON `o`.`order_id` = `r`.`order_id`
  WHERE
    (
      `r`.`review_time` >= CAST('2023-03-03 00:00:00' AS TIMESTAMP)
      AND `r`.`review_time` < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
    )
    AND (
      `r`.`item_id` IS NULL
    )
), `brushing_pairs` AS (
  SELECT
    `v`.`pair`
  FROM (
    SELECT
      `o`.`order_id` AS `order_id`,
      `o`.`shop_id` AS `shop_id`,
      `o`.`buyer_id` AS `buyer_id`,
      `o`.`order_time` AS `order_time`,
      HASH(`o`.`shop_id`, `o`.`buyer_id`) AS `pair`
    FROM `orders` AS `o`
    WHERE
      NOT `o`.`status` IN ('pending', 'closed')
      AND NOT `o`.`shop_id` IS NULL
      AND NOT `o`.`buyer_id` IS NULL
  ) AS `v`
  GROUP BY
    `v`.`pair`
  HAVING
    COUNT(*) >= 3
), `brushing_paired` AS (
  SELECT
    `o`.`order_id` AS `order_id`,
    `o`.`shop_id` AS `shop_id`,
    `o`.`buyer_id` AS `buyer_id`,
    `o`.`order_time` AS `order_time`,
    `o`.`pair` AS `pair`,
    FLOOR((
      UNIX_TIMESTAMP(`o`.`order_time`)
    ) / 7200) AS `grid_a`,
    FLOOR((
      UNIX_TIMESTAMP(`o`.`order_time`) + 3600
    ) / 7200) AS `grid_b`
  FROM (
    SELECT
      `o`.`order_id` AS `order_id`,
      `o`.`shop_id` AS `shop_id`,
      `o`.`buyer_id` AS `buyer_id`,
      `o`.`order_time` AS `order_time`,
      HASH(`o`.`shop_id`, `o`.`buyer_id`) AS `pair`
    FROM `orders` AS `o`
    WHERE
      NOT `o`.`status` IN ('pending', 'closed')
      AND NOT `o`.`shop_id` IS NULL
      AND NOT `o`.`buyer_id` IS NULL
  ) AS `o`
  JOIN `brushing_pairs` AS `p`
    ON `p`.`pair` = `o`.`pair`
), `brushing_orders` AS (
  SELECT DISTINCT
    `f`.`order_id`
  FROM (
    SELECT
      `r`.`order_id` AS `order_id`,
      COALESCE(
        LEAD(`r`.`order_time`, 2) OVER (
          PARTITION BY `r`.`shop_id`, `r`.`buyer_id`
          ORDER BY `r`.`order_time` NULLS LAST, `r`.`order_id` NULLS LAST
        ) < `r`.`order_time` + INTERVAL '3600' SECOND
        OR LEAD(`r`.`order_time`, 1) OVER (
          PARTITION BY `r`.`shop_id`, `r`.`buyer_id`
          ORDER BY `r`.`order_time` NULLS LAST, `r`.`order_id` NULLS LAST
        ) < LAG(`r`.`order_time`, 1) OVER (
          PARTITION BY `r`.`shop_id`, `r`.`buyer_id`
          ORDER BY `r`.`order_time` NULLS LAST, `r`.`order_id` NULLS LAST
        ) + INTERVAL '3600' SECOND
        OR `r`.`order_time` < LAG(`r`.`order_time`, 2) OVER (
          PARTITION BY `r`.`shop_id`, `r`.`buyer_id`
          ORDER BY `r`.`order_time` NULLS LAST, `r`.`order_id` NULLS LAST
        ) + INTERVAL '3600' SECOND,
        FALSE
      ) AS `brushing`
    FROM (
      SELECT
        `c`.`order_id`,
        `c`.`shop_id`,
        `c`.`buyer_id`,
        `c`.`order_time`
      FROM `brushing_paired` AS `c`
      LEFT JOIN (
        SELECT
          `g`.`pair`,
          `g`.`grid_a`
        FROM `brushing_paired` AS `g`
        GROUP BY
          `g`.`pair`,
          `g`.`grid_a`
        HAVING
          COUNT(*) >= 3
      ) AS `a`
        ON `a`.`pair` = `c`.`pair` AND `a`.`grid_a` = `c`.`grid_a`
      LEFT JOIN (
        SELECT
          `g`.`pair`,
          `g`.`grid_b`
        FROM `brushing_paired` AS `g`
        GROUP BY
          `g`.`pair`,
          `g`.`grid_b`
        HAVING
          COUNT(*) >= 3
      ) AS `b`
        ON `b`.`pair` = `c`.`pair` AND `b`.`grid_b` = `c`.`grid_b`
      WHERE
        NOT `a`.`pair` IS NULL OR NOT `b`.`pair` IS NULL
    ) AS `r`
  ) AS `f`
  WHERE
    `f`.`brushing`
), `src_orders` AS (
  SELECT
    `orders`.`item_id` AS `item_id`,
    (
      CAST(COALESCE(
        SUM(CASE WHEN `orders`.`quality_return` THEN 1.0 ELSE 0.0 END) FILTER(WHERE
          (
            NOT `orders`.`status` IN ('pending', 'closed')
            AND NOT `orders`.`brushing`
            AND NOT `orders`.`self_purchase`
          )),
        0
      ) AS DOUBLE) / CAST(NULLIF(
        COUNT(CASE WHEN `orders`.`quality_return` THEN 1.0 ELSE 0.0 END) FILTER(WHERE
          (
            NOT `orders`.`status` IN ('pending', 'closed')
            AND NOT `orders`.`brushing`
            AND NOT `orders`.`self_purchase`
          )),
        0
      ) AS DOUBLE)
    ) AS `quality_return_rate_90d`
  FROM (
    SELECT
      `t`.`order_id` AS `order_id`,
      `t`.`shop_id` AS `shop_id`,
      `t`.`buyer_id` AS `buyer_id`,
      `t`.`item_id` AS `item_id`,
      `t`.`item_name` AS `item_name`,
      `t`.`promoter_id` AS `promoter_id`,
      `t`.`sale_mode` AS `sale_mode`,
      `t`.`carrier` AS `carrier`,
      `t`.`order_time` AS `order_time`,
      `t`.`paid_amount` AS `paid_amount`,
      `t`.`quantity` AS `quantity`,
      `t`.`status` AS `status`,
      `t`.`refund_amount` AS `refund_amount`,
      `t`.`refund_reason` AS `refund_reason`,
      `t`.`commission` AS `commission`,
      `t`.`net_amount` AS `net_amount`,
      `t`.`quality_return` AS `quality_return`,
      `t`.`promoter_name` AS `promoter_name`,
      NOT `brushing_orders`.`order_id` IS NULL AS `brushing`,
      COALESCE(`t`.`sale_mode` = 'distribution' AND `t`.`buyer_id` = `t`.`promoter_id`, FALSE) AS `self_purchase`
    FROM `orders` AS `t`
    LEFT JOIN `brushing_orders`
      ON `brushing_orders`.`order_id` = `t`.`order_id`
  ) AS `orders`
  WHERE
    NOT `orders`.`item_id` IS NULL
    AND (
      `orders`.`order_time` >= CAST('2023-03-03 00:00:00' AS TIMESTAMP)
      AND `orders`.`order_time` < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
    )
  GROUP BY
    `orders`.`item_id`
), `src_reviews` AS (
  SELECT
    `reviews`.`item_id` AS `item_id`,
    COUNT(*) FILTER(WHERE
      (
        NOT `reviews`.`suspicious`
      )) AS `reviews_90d`,
    AVG(`reviews`.`quality_score`) FILTER(WHERE
      (
        NOT `reviews`.`suspicious`
      )) AS `quality_avg_90d`,
    (
      CAST(COALESCE(
        SUM(CASE WHEN `reviews`.`quality_score` <= 2 THEN 1.0 ELSE 0.0 END) FILTER(WHERE
          (
            NOT `reviews`.`suspicious`
          )),
        0
      ) AS DOUBLE) / CAST(NULLIF(
        COUNT(CASE WHEN `reviews`.`quality_score` <= 2 THEN 1.0 ELSE 0.0 END) FILTER(WHERE
          (
            NOT `reviews`.`suspicious`
          )),
        0
      ) AS DOUBLE)
    ) AS `negative_rate_90d`
  FROM (
    SELECT
      `t`.`review_id` AS `review_id`,
      `t`.`order_id` AS `order_id`,
      `t`.`shop_id` AS `shop_id`,
      `t`.`item_id` AS `item_id`,
      `t`.`promoter_id` AS `promoter_id`,
      `t`.`quality_score` AS `quality_score`,
      `t`.`logistics_score` AS `logistics_score`,
      `t`.`service_score` AS `service_score`,
      `t`.`review_time` AS `review_time`,
      `t`.`complaint` AS `complaint`,
      `t`.`cheat` AS `cheat`,
      NOT `brushing_orders`.`order_id` IS NULL OR COALESCE(`t`.`cheat`, FALSE) AS `suspicious`
    FROM `reviews_filled` AS `t`
    LEFT JOIN `brushing_orders`
      ON `brushing_orders`.`order_id` = `t`.`order_id`
  ) AS `reviews`
  WHERE
    NOT `reviews`.`item_id` IS NULL
    AND (
      `reviews`.`review_time` >= CAST('2023-03-03 00:00:00' AS TIMESTAMP)
      AND `reviews`.`review_time` < CAST('2023-06-01 00:00:00' AS TIMESTAMP)
    )
  GROUP BY
    `reviews`.`item_id`
), `metric_values` AS (
  SELECT
    COALESCE(`src_orders`.`item_id`, `src_reviews`.`item_id`) AS `item_id`,
    CAST(COALESCE(`src_reviews`.`reviews_90d`, 0) AS DOUBLE) AS `reviews_90d`,
    CAST(`src_reviews`.`quality_avg_90d` AS DOUBLE) AS `quality_avg_90d`,
    CAST(`src_reviews`.`negative_rate_90d` AS DOUBLE) AS `negative_rate_90d`,
    CAST(`src_orders`.`quality_return_rate_90d` AS DOUBLE) AS `quality_return_rate_90d`
  FROM `src_orders`
  FULL OUTER JOIN `src_reviews`
    ON `src_reviews`.`item_id` = `src_orders`.`item_id`
)
SELECT
  `item_id`,
  `reviews_90d`,
  `quality_avg_90d`,
  `negative_rate_90d`,
  `quality_return_rate_90d`
FROM `metric_values`;

