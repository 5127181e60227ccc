"""`chuanliu sample`: write the deterministic synthetic dataset."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from chuanliu_cli.cli.emit import settings


class Headers(StrEnum):
    en = "en"
    zh = "zh"


class SampleEncoding(StrEnum):
    utf8 = "utf-8"
    gb18030 = "gb18030"


class SampleFormat(StrEnum):
    csv = "csv"
    parquet = "parquet"
    xlsx = "xlsx"
    api = "api"  # saved open-platform responses (JSON lines), livestreams and shops as CSV


def sample(
    outdir: Annotated[Path, typer.Argument(help="Directory to write the files into (created).")],
    merchants: Annotated[int, typer.Option("--merchants", min=1, help="Number of merchants.")] = 60,
    months: Annotated[int, typer.Option("--months", min=1, max=36, help="Months of data.")] = 3,
    end: Annotated[str, typer.Option("--end", help="Last month (YYYY-MM).")] = "2023-05",
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 42,
    headers: Annotated[Headers, typer.Option("--headers", help="English or Chinese headers.")] = Headers.en,
    encoding: Annotated[
        SampleEncoding, typer.Option("--encoding", help="CSV text encoding.")
    ] = SampleEncoding.utf8,
    fmt: Annotated[
        SampleFormat, typer.Option("--format", help="File format; api: saved open-platform responses.")
    ] = SampleFormat.csv,
    orders: Annotated[
        int | None, typer.Option("--orders", min=1, help="Target number of orders (for scale tests).")
    ] = None,
    effect: Annotated[
        float,
        typer.Option(
            "--effect",
            help="Plant a known effect of the grants: in the month after each month, a merchant's self "
            "live-room GMV is multiplied by (1 + E × grant / cap), its grant being that of the bundled "
            "ruleset's reward list (for validating `impact`). 0 plants nothing.",
        ),
    ] = 0.0,
    late_refunds: Annotated[
        bool,
        typer.Option(
            "--late-refunds",
            help="Also write late/orders_late_refunds.csv (in the dataset's format): the last month's "
            "live-room orders of one rewarded merchant, refunded in full after the list was published; "
            "load it after a recorded run to restate it (`runs diff`).",
        ),
    ] = False,
) -> None:
    """Write a deterministic synthetic dataset: the same options give byte-identical files."""
    from chuanliu_cli.api import write_sample

    written = write_sample(
        outdir,
        merchants=merchants,
        months=months,
        end=end,
        seed=seed,
        headers=headers.value,
        encoding=encoding.value,
        fmt=fmt.value,
        orders=orders,
        effect=effect,
        late_refunds=late_refunds,
    )
    if not settings().quiet:
        for table, path in written.items():
            settings().console().print(f"{table}: {path}")
