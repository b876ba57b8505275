"""The ``platewatch`` command: composes the command groups of ``cli/`` into one CLI.

Exit codes: 0 ok, 1 a finding the user asked to fail on (``--fail-on``), 2 bad input or
usage (one line on stderr naming the file and the cause), 70 an internal error (one line
saying where the traceback was written). ``--json`` prints one JSON object per line, one
per input (DESIGN.md §5.1). Command modules import their heavy dependencies inside the
commands, so ``platewatch parse`` does not pay for plotting, pandas or the store.
"""

from __future__ import annotations

import sys

import click

from cli.common import EXIT_SOFTWARE, internal_error
from cli.daemon_commands import demo, reprocess, results, run, status
from cli.instruments import read, readers
from cli.plates import analyze, export_cmd, fit, parse
from cli.timecourse import timecourse
from cli.web import serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="platewatch")
def cli() -> None:
    """platewatch: capture plate-reader exports, analyse them, flag failed plates.

    Start with `platewatch analyze PLATE --layout LAYOUT --report out/`.
    """


for command in (
    parse,
    fit,
    analyze,
    run,
    status,
    results,
    reprocess,
    demo,
    read,
    readers,
    timecourse,
    serve,
    export_cmd,
):
    cli.add_command(command)


def main() -> None:
    try:
        cli(prog_name="platewatch")
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a bug: one line saying where the traceback is, exit 70
        internal_error(None, exc, as_json=False)
        sys.exit(EXIT_SOFTWARE)


if __name__ == "__main__":
    main()
