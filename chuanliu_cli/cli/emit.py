"""Everything the command line writes: data through ONE emit (every format, the same rules), and the
messages on stderr (errors, warnings, information) honouring -q and --no-color."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from chuanliu_cli.cli.options import CsvEncoding, Labels, OutputFormat

if TYPE_CHECKING:
    from rich.console import Console

    from chuanliu_cli.present.documents import Document, EntityDocument, FrameDocument


@dataclass
class Settings:
    """Global options, set by the app's callback and read by every command."""

    quiet: bool = False
    verbose: bool = False
    no_color: bool = False
    db: str | None = None

    @property
    def plain(self) -> bool:
        """--no-color or NO_COLOR: no colours and no other styles (bold, italic, dim) either."""
        return self.no_color or bool(os.environ.get("NO_COLOR"))

    def console(self, stderr: bool = False) -> Console:
        """A console for data (stdout) or messages (stderr), honouring --no-color and NO_COLOR."""

        console = _console(stderr, False, self.plain)
        if not console.is_terminal and not os.environ.get("COLUMNS"):
            # Piped or redirected output is read later, in a file or a mail: do not squeeze it to 80.
            console.width = 160
        return console


_SETTINGS = Settings()


def _console(stderr: bool, soft_wrap: bool, plain: bool) -> Console:
    """A Rich console; `plain` writes no escape codes at all (no_color alone still writes bold and dim)."""
    from rich.console import Console

    if plain:
        console = Console(
            stderr=stderr,
            highlight=False,
            markup=False,
            soft_wrap=soft_wrap,
            no_color=True,
            color_system=None,
        )
    else:
        console = Console(stderr=stderr, highlight=False, markup=False, soft_wrap=soft_wrap)
    # Rich turns a closed pipe into exit 1; the error wrapper makes it a quiet exit 0 instead.
    console.on_broken_pipe = _broken_pipe  # type: ignore[method-assign]
    return console


def _broken_pipe() -> None:
    raise BrokenPipeError


def settings() -> Settings:
    """The global options of this invocation."""
    return _SETTINGS


def configure(new: Settings) -> None:
    """Set the global options (the app's callback)."""
    global _SETTINGS
    _SETTINGS = new


# --- messages on stderr ------------------------------------------------------------------------------------


def error(message: str) -> None:
    """Print one message on stderr (no markup interpretation of user data); errors in bold red."""
    from rich.text import Text

    console = _console(True, True, _SETTINGS.plain)
    console.print(Text(message, style="bold red" if message.startswith("Error") else ""))


def warn(warnings: Iterable[str]) -> None:
    """The library's warnings, one `Warning: …` each. -q hides progress and information, never these."""
    for warning in warnings:
        error(f"Warning: {warning}")


def info(message: str) -> None:
    """Progress or information on stderr (hidden by -q)."""
    if not _SETTINGS.quiet:
        error(message)


def quiet_stdout() -> None:
    """After a closed pipe: point stdout at /dev/null so that Python's final flush stays silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (a test runner's buffer)
        pass


# --- data on stdout or in -o FILE --------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where and how a command's data goes: the resolved format and the -o file (None: stdout), the csv
    encoding asked for (None: utf-8, or stdout's encoding) and the column headers (en or zh)."""

    format: OutputFormat
    output: Path | None
    csv_encoding: CsvEncoding | None = None
    labels: Labels = Labels.en


def target(
    fmt: OutputFormat | None,
    output: Path | None,
    piped: Literal["table", "csv"] = "csv",
    *,
    csv_encoding: CsvEncoding | None = None,
    labels: Labels = Labels.en,
) -> Target:
    """Resolve the format before any work is done: --format, else the -o file's suffix (list.json), else
    table on a terminal and `piped` otherwise; `-o -` is standard output. A --format that disagrees with
    the -o file's suffix (`-o list.xlsx --format csv`), --csv-encoding for another format than csv, an
    unwritable -o, or a binary format bound for a terminal, is a usage error now, not after scoring (and
    before a run is recorded)."""
    from chuanliu_cli.errors import UsageError
    from chuanliu_cli.present.writers import BINARY_FORMATS, declare_output, format_from_suffix

    if output is not None and str(output) == "-":
        output = None  # `-o -`: standard output, as for other tools
    if output is not None:
        declare_output(output)  # (the database or an export it turns out to be stops the command there)

    def terminal() -> bool:  # (only asked when the output is stdout: rich's import is 30 ms of a command)
        return _SETTINGS.console().is_terminal

    implied = format_from_suffix(output)
    if fmt is None:
        if implied is not None:
            fmt = OutputFormat(implied)
        elif output is None and terminal():
            fmt = OutputFormat.table
        else:
            fmt = OutputFormat(piped)
    elif implied is not None and implied != "table" and implied != fmt.value:
        raise UsageError(
            f"--format {fmt.value} disagrees with -o {output}, whose name says {implied}",
            hint=f"give --format {implied} (or none) for a .{implied} file, or name the file .{_suffix(fmt)}",
        )
    if csv_encoding is not None and fmt is not OutputFormat.csv:
        raise UsageError(
            f"--csv-encoding {csv_encoding.value} applies to csv output, and this output is {fmt.value}",
            hint="add --format csv (or -o FILE.csv), or drop --csv-encoding",
        )
    if fmt.value in BINARY_FORMATS and output is None and terminal():
        raise UsageError(f"{fmt.value} is binary: write it to a file with -o FILE")
    if labels is Labels.zh and fmt in (OutputFormat.json, OutputFormat.jsonl):
        info(f"--labels zh: {fmt.value} keeps its stable English keys (Chinese headers are for tables)")
    return Target(fmt, output, csv_encoding, labels)


def _suffix(fmt: OutputFormat) -> str:
    return "txt" if fmt is OutputFormat.table else fmt.value


def emit(
    to: Target,
    document: Callable[[], Document | EntityDocument | FrameDocument],
    table: Callable[[Console], None],
) -> None:
    """Write a command's result: a Rich table, or the document as csv/json/jsonl/parquet/xlsx; to stdout
    or atomically to the -o file. `document` is built only when a data format is asked for. A file gets
    the bytes as `write_document` writes them (the entities' csv and jsonl straight from the frame); stdout
    gets them whole once made, as UTF-8 bytes unless stdout encodes text otherwise (then as text, so that
    every command writes stdout's encoding); csv with --csv-encoding goes out in that encoding, to a file
    or stdout alike."""
    from chuanliu_cli.present.writers import BINARY_FORMATS, atomic_write, write_document

    if to.format is OutputFormat.table:
        if to.output is None:
            table(_SETTINGS.console())
            return
        from rich.console import Console

        with atomic_write(to.output) as f:
            # a file is no terminal: no escape codes and every row, even under FORCE_COLOR or TTY_COMPATIBLE
            table(
                Console(file=f, width=160, no_color=True, highlight=False, markup=False, force_terminal=False)
            )
        return
    if to.format is OutputFormat.xlsx:
        _emit_xlsx(to, document())
        return
    fmt = to.format.value
    doc = document()
    # a file is UTF-8 unless asked otherwise; stdout too when an encoding is asked for
    encoding = (to.csv_encoding or CsvEncoding.utf8).value
    if to.output is not None:
        with atomic_write(to.output, "wb") as fb:
            write_document(fb, fmt, doc, to.labels.value, encoding)  # type: ignore[arg-type]
        return
    # stdout: the whole output is made first, so that a failure leaves a pipe empty, not half-written
    out = io.BytesIO()
    write_document(out, fmt, doc, to.labels.value, encoding)  # type: ignore[arg-type]
    data = out.getvalue()
    sys.stdout.flush()
    if fmt in BINARY_FORMATS or _utf8(sys.stdout) or (fmt == "csv" and to.csv_encoding is not None):
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    sys.stdout.write(data.decode("utf-8"))
    sys.stdout.flush()


def _emit_xlsx(to: Target, doc: Document | EntityDocument | FrameDocument) -> None:
    """The workbook, atomically into the -o file, or through a temporary file onto stdout (a pipe)."""
    import shutil
    import tempfile

    from chuanliu_cli.present.writers import atomic_write
    from chuanliu_cli.present.xlsx import write_xlsx

    if to.output is not None:
        with atomic_write(to.output, "wb") as fb:
            write_xlsx(fb, doc, to.labels.value)
        return
    with tempfile.TemporaryFile() as tmp:
        write_xlsx(tmp, doc, to.labels.value)
        tmp.seek(0)
        sys.stdout.flush()
        shutil.copyfileobj(tmp, sys.stdout.buffer)
        sys.stdout.buffer.flush()


def _utf8(stream: object) -> bool:
    """True when a text stream encodes as UTF-8 (UTF-8 bytes can be written under it as they are)."""
    import codecs

    try:
        return codecs.lookup(getattr(stream, "encoding", None) or "ascii").name == "utf-8"
    except LookupError:
        return False
