#!/usr/bin/env bash
# Monthly Chuanliu reward list, for cron on the 1st of each month.
#
#   EXPORTS=/data/kuaishou/exports CHUANLIU_DB=/data/chuanliu.duckdb OUT=/data/rewards \
#       examples/monthly-rewards.sh [YYYY-MM]
#
# Loads the month's exports (EXPORTS/YYYY-MM/, files named orders*, reviews*, livestreams*, shops* or
# 订单*, 评价*, 直播*, 店铺*), then writes the reward lists of the merchant and promoter scorecards as CSV
# and JSON with the month in the file name. Stops at the first failure with chuanliu's exit code:
# 3 invalid ruleset, 4 bad data, 5 database busy, 6 the month is not complete yet (its look-back windows
# included), 7 a warning under --strict (a missing column, a gate nobody passes, an empty list, ...).
set -euo pipefail

month="${1:-$(date -d "$(date +%Y-%m-01) -1 day" +%Y-%m)}"   # default: last month
exports="${EXPORTS:?set EXPORTS to the directory holding one folder of exports per month}"
out="${OUT:-./rewards}"
chuanliu="${CHUANLIU:-chuanliu}"

mkdir -p "$out"
"$chuanliu" -q load --dir "$exports/$month" --wait 600 --strict
for scorecard in merchant promoter; do
    for fmt in csv json; do
        "$chuanliu" -q eligible --month "$month" --scorecard "$scorecard" --require-complete --strict \
            --format "$fmt" -o "$out/chuanliu-$scorecard-$month.$fmt"
    done
done
