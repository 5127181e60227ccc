"""Ruleset design (SPEC §10): variants of one scorecard evaluated over metrics computed once
(`variants`), calibration of tunable values to targets (`calibrate`) and sensitivity to each value
(`sensitivity`)."""
