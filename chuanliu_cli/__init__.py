"""chuanliu: an auditable scoring and eligibility engine for Kuaishou's Chuanliu Plan (川流计划)."""

__version__ = "0.1.0"
