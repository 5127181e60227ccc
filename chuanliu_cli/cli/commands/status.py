"""`chuanliu status`: what the database holds."""

from __future__ import annotations

from chuanliu_cli.cli.emit import settings
from chuanliu_cli.cli.options import DbOption, WaitOption, session


def status(db: DbOption = None, wait: WaitOption = 60.0) -> None:
    """Show what is loaded: rows per table, months covered, last loads, rejects, complete months."""
    from chuanliu_cli.present.tables import render_status

    with session(db, wait=wait) as s:
        result = s.status()
    render_status(settings().console(), result.status, result.path)
