"""Quoting of SQL identifiers and literals: the one place where names and values become SQL text."""

from __future__ import annotations


def ident(name: str) -> str:
    """A double-quoted identifier, safe for any name."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """A single-quoted string literal, safe for any text."""
    return "'" + value.replace("'", "''") + "'"
