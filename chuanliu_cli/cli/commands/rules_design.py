"""`chuanliu rules calibrate` and `chuanliu rules sensitivity`: designing a ruleset's numbers (SPEC §10)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chuanliu_cli.cli.emit import emit, target, warn
from chuanliu_cli.cli.options import (
    CsvEncodingOption,
    DataOption,
    DbOption,
    FormatOption,
    Labels,
    LabelsOption,
    MemoryLimitOption,
    MonthOption,
    OutputFormat,
    RulesOption,
    ScorecardOption,
    WaitOption,
    session,
)


def rules_calibrate(
    month: Annotated[
        list[str],
        typer.Option(
            "--month", help="The period to calibrate on: 2023-05 (repeat it: targets hold in each)."
        ),
    ],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Write the calibrated ruleset (numbers only) to FILE.")
    ],
    targets: Annotated[
        list[str],
        typer.Option(
            "--target",
            help="NAME OP VALUE, repeatable: NAME eligible, tier:<name>, capped or pool_to:<tier>; "
            'OP =, <=, >=; VALUE a count or a percentage ("eligible >= 40", "tier:S <= 5%").',
        ),
    ],
    scorecard: ScorecardOption = None,
    rules: RulesOption = None,
    against: Annotated[
        Path | None,
        typer.Option(
            "--against",
            help="Compare the result with this ruleset [default: the midpoints of the tune ranges].",
        ),
    ] = None,
    fmt: Annotated[
        OutputFormat | None,
        typer.Option("--format", help="table (default) or json: the summary printed on stdout."),
    ] = None,
    data: DataOption = None,
    db: DbOption = None,
    memory_limit: MemoryLimitOption = None,
    wait: WaitOption = 60.0,
) -> None:
    """Choose the ruleset's tunable values ({tune: [low, high]} in place of a weight, min_score, pool, cap or
    a params: value read by a gate) so that the targets are met in the period(s), and write the ruleset
    with those numbers (comments and layout kept) to -o FILE. When the targets cannot all be met, the closest
    result is written and the output says so (exit 0). Prints the values chosen, each target as measured,
    and a comparison with --against (or the midpoints)."""
    from chuanliu_cli.errors import UsageError

    if fmt not in (None, OutputFormat.table, OutputFormat.json):
        raise UsageError(f"--format {fmt.value}: rules calibrate prints a table or json")
    with session(db, data, memory_limit, wait) as s:
        result = s.calibrate(month, targets, output, scorecard, rules, against)
    warn(result.warnings)
    to = target(fmt or OutputFormat.table, None)
    document = result.to_dict()

    def table(console: object) -> None:
        from chuanliu_cli.present.design import render_calibration

        render_calibration(console, result, str(output))  # type: ignore[arg-type]

    from chuanliu_cli.present.design import calibration_document

    emit(to, lambda: calibration_document(document), table)


def rules_sensitivity(
    month: MonthOption,
    scorecard: ScorecardOption = None,
    rules: RulesOption = None,
    fmt: FormatOption = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Write to FILE (atomically); a .csv .json name implies the format."
        ),
    ] = None,
    csv_encoding: CsvEncodingOption = None,
    labels: LabelsOption = Labels.en,
    data: DataOption = None,
    db: DbOption = None,
    memory_limit: MemoryLimitOption = None,
    wait: WaitOption = 60.0,
) -> None:
    """How much each number of a scorecard matters: every gate threshold, weight, tier min_score, the cap and
    the pool moved by -20 %, -5 %, +5 % and +20 % (everything else as written), with the eligible count,
    entrants, leavers and grant moved (sum of |grant change| / 2) against the ruleset as written."""
    to = target(fmt, output, "table", csv_encoding=csv_encoding, labels=labels)
    with session(db, data, memory_limit, wait) as s:
        result = s.sensitivity(month, scorecard, rules)
    warn(result.warnings)
    from chuanliu_cli.present.design import render_sensitivity, sensitivity_document

    document = result.to_dict()
    emit(
        to,
        lambda: sensitivity_document(document, result.sensitivity),
        lambda console: render_sensitivity(console, result.sensitivity, result.run.period.label),
    )
