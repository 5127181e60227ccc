"""The `chuanliu` command line: the typer app, the global options, the one error → exit-code wrapper.

The commands live in cli/commands/; each parses its options, makes one call to `chuanliu_cli.api` and
writes the result through cli/emit.py.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from chuanliu_cli import __version__
from chuanliu_cli.cli import emit
from chuanliu_cli.cli.commands import (
    budget,
    compare,
    explain,
    history,
    impact,
    integrity,
    load,
    rejects,
    report,
    rules,
    rules_design,
    runs,
    runs_diff,
    sample,
    scoring,
    status,
)
from chuanliu_cli.errors import ChuanliuError
from chuanliu_cli.exit_codes import ExitCode

#: Failures of the disk or the stream being written (a full disk, a read-only file system, a device error):
#: the machine's, not a bug; said as such (exit 1 without "a bug").
_WRITE_FAILURES = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EFBIG, errno.EACCES})


def _handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """The one place where exceptions become messages and exit codes (every command is wrapped)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verbose = emit.settings().verbose
        try:
            from chuanliu_cli.present.writers import new_command

            new_command()
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except ChuanliuError as exc:
            _after_sigterm(verbose)
            if verbose:
                traceback.print_exc()
            lines = getattr(exc, "errors", None) or [exc.message]
            for line in lines:
                emit.error(f"Error: {line}")
            for detail in exc.details:
                emit.error(f"  {detail}")
            if exc.hint:
                emit.error(f"Hint: {exc.hint}")
            raise typer.Exit(int(exc.exit_code)) from None
        except BrokenPipeError:
            # The reader went away (`chuanliu status | head -1`): stop quietly, like git log | head.
            emit.quiet_stdout()
            raise typer.Exit(0) from None
        except KeyboardInterrupt as exc:
            # (a temp file removed, a load's transaction rolled back: the `finally`s ran on the way here)
            terminated = isinstance(exc, Terminated)
            emit.error(
                "Error: terminated (SIGTERM): nothing half-written" if terminated else "Error: interrupted"
            )
            raise typer.Exit(128 + signal.SIGTERM if terminated else 130) from None
        except OSError as exc:
            _after_sigterm(verbose)
            if exc.errno not in _WRITE_FAILURES:
                raise
            if verbose:
                traceback.print_exc()
            where = f" {exc.filename}" if exc.filename else ""
            emit.error(f"Error: cannot write{where}: {exc.strerror or exc}")
            emit.error("Hint: free space or permissions there, or write elsewhere (-o FILE)")
            raise typer.Exit(int(ExitCode.INTERNAL)) from None
        except Exception as exc:
            _after_sigterm(verbose)
            if verbose:
                traceback.print_exc()
            first = str(exc).splitlines()[0] if str(exc) else ""
            emit.error(
                f"Error: internal error: {type(exc).__name__}: {first} (a bug; rerun with -v for details)"
            )
            raise typer.Exit(int(ExitCode.INTERNAL)) from None

    return wrapper


def _after_sigterm(verbose: bool) -> None:
    """After a SIGTERM, any error is the signal's: DuckDB, running a query when it came, stops the query
    and raises its own error ("Query interrupted") in place of the signal's, and it unwinds all the same
    (temp files removed, transactions rolled back). Said as the signal, exit 143."""
    if not Terminated.seen:
        return
    if verbose:
        traceback.print_exc()
    emit.error("Error: terminated (SIGTERM): nothing half-written")
    raise typer.Exit(128 + signal.SIGTERM) from None


_EXIT_HELP = (
    "Exit codes: " + ", ".join(f"{c.value} {c.name.lower().replace('_', ' ')}" for c in ExitCode) + "."
)

#: Global flags that may also be written after the subcommand (`chuanliu status -q`).
GLOBAL_FLAGS = frozenset({"-q", "--quiet", "-v", "--verbose", "--no-color"})


class _Group(TyperGroup):
    """The root command: global flags are accepted anywhere before `--`, as users write them."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Move global flags found after the subcommand in front of it."""
        start = next((i for i, a in enumerate(args) if a in self.commands), None)
        if start is not None:
            end = args.index("--") if "--" in args[start:] else len(args)
            after = args[start:end]
            hoisted = [a for a in after if a in GLOBAL_FLAGS]
            rest = [a for a in after if a not in GLOBAL_FLAGS]
            args = [*args[:start], *hoisted, *rest, *args[end:]]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_Group,
    name="chuanliu",
    help="Score merchants and influencers for Kuaishou's Chuanliu Plan (川流计划) from their exports.\n\n"
    + _EXIT_HELP,
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"chuanliu {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="Print nothing but errors (and data).")
    ] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Show tracebacks of errors.")] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="No colours (also: NO_COLOR=1).")] = False,
    db: Annotated[
        str | None,
        typer.Option("--db", envvar="CHUANLIU_DB", help="The database file [default: ./chuanliu.duckdb]."),
    ] = None,
) -> None:
    """Score merchants and influencers for Kuaishou's Chuanliu Plan (川流计划) from their exports."""
    emit.configure(emit.Settings(quiet=quiet, verbose=verbose, no_color=no_color, db=db))


rules_app = typer.Typer(
    name="rules",
    help="Check, show and compile rulesets.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
)
app.add_typer(rules_app, name="rules")

runs_app = typer.Typer(
    name="runs",
    context_settings={"help_option_names": ["-h", "--help"]},
    invoke_without_command=True,
)
runs_app.callback()(_handle_errors(runs.runs))
app.add_typer(runs_app, name="runs")

for _typer_app, _name, _func in (
    (app, "load", load.load),
    (app, "status", status.status),
    (app, "rejects", rejects.rejects),
    (app, "sample", sample.sample),
    (app, "score", scoring.score),
    (app, "eligible", scoring.eligible),
    (app, "explain", explain.explain),
    (app, "history", history.history),
    (runs_app, "diff", runs_diff.runs_diff),
    (app, "compare", compare.compare),
    (app, "report", report.report),
    (app, "impact", impact.impact),
    (app, "budget", budget.budget),
    (app, "integrity", integrity.integrity),
    (rules_app, "check", rules.rules_check),
    (rules_app, "show", rules.rules_show),
    (rules_app, "sql", rules.rules_sql),
    (rules_app, "calibrate", rules_design.rules_calibrate),
    (rules_app, "sensitivity", rules_design.rules_sensitivity),
    (rules_app, "test", rules.rules_test),
    (rules_app, "lint", rules.rules_lint),
):
    _typer_app.command(_name)(_handle_errors(_func))


class Terminated(KeyboardInterrupt):
    """SIGTERM (cron's timeout, `kill`, a container stopping), raised where the process is, so that it
    unwinds as from Ctrl-C: a temp output file is removed, a load's transaction rolled back. `seen`: one
    has arrived (DuckDB, running a query when it comes, raises its own error in its place)."""

    seen = False


def _terminate(signum: int, frame: object) -> None:
    Terminated.seen = True
    raise Terminated


def _watch_signals() -> None:
    """Let SIGTERM and Ctrl-C stop a running DuckDB query at once. Python runs a signal's handler in the
    main thread only, which may be waiting inside DuckDB for its workers (on a busy machine DuckDB then ran
    a query of minutes to its end before the handler could run); the signal's number, written by Python
    on a wakeup pipe, wakes a thread that interrupts the queries (store/database.interrupt_queries)."""
    read, write = os.pipe()
    os.set_blocking(write, False)
    try:
        signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    except ValueError:  # (not the main thread)
        os.close(read)
        os.close(write)
        return
    stopping = {int(signal.SIGTERM), int(signal.SIGINT)}

    def watch() -> None:
        while True:
            try:
                received = os.read(read, 64)
            except OSError:
                return
            if not received:
                return
            if stopping.intersection(received):
                from chuanliu_cli.store.database import interrupt_queries

                interrupt_queries()

    threading.Thread(target=watch, name="chuanliu-signals", daemon=True).start()


def main() -> None:
    """Entry point of the `chuanliu` console script."""
    with contextlib.suppress(ValueError):  # (not the main thread: an embedding program's own handlers)
        signal.signal(signal.SIGTERM, _terminate)
        _watch_signals()
    try:
        app(prog_name="chuanliu")
    except BrokenPipeError:  # in typer's own output (help text), or at exit when stdout is flushed
        emit.quiet_stdout()
        sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
