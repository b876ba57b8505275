"""What every command shares: the exit-code contract, JSONL output, one-line errors.

Exit codes (DESIGN.md §5.1): 0 ok; 1 a finding the user asked to fail on (``--fail-on``);
2 bad input or usage, one line on stderr naming the file and the cause; 70 (EX_SOFTWARE)
an internal error — a bug, never the user's input — with one line saying where the
traceback was written. In a batch every input is tried and the exit code is the worst.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

import click

from analysis.model import jsonable
from errors import PlatewatchError

EXIT_OK = 0
EXIT_FINDING = 1
EXIT_BAD_INPUT = 2
EXIT_SOFTWARE = 70
_RANK = {EXIT_OK: 0, EXIT_FINDING: 1, EXIT_BAD_INPUT: 2, EXIT_SOFTWARE: 3}

log = logging.getLogger("platewatch")


def worst(*codes: int) -> int:
    return max(codes, key=lambda c: _RANK.get(c, 3), default=EXIT_OK)


def emit(obj: dict[str, Any]) -> None:
    click.echo(json.dumps(jsonable(obj), ensure_ascii=False, separators=(",", ":")))


def fail(message: str) -> NoReturn:
    click.echo(f"platewatch: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def bad_input(path: Path | str, exc: PlatewatchError, as_json: bool) -> int:
    """One line on stderr (and a JSON error record); the exit status it calls for."""
    click.echo(f"platewatch: {_one_line(str(exc))}", err=True)
    if as_json:
        emit({"path": str(path), "error": _one_line(exc.message)})
    return EXIT_BAD_INPUT


def crash_file() -> Path:
    folder = Path(os.environ.get("PLATEWATCH_CRASH_DIR") or tempfile.gettempdir())
    return folder / f"platewatch-crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"


def record_crash(what: str, exc: BaseException) -> Path | None:
    """Write the traceback of an internal error to a file; returns where (None if it could not)."""
    path = crash_file()
    text = f"platewatch internal error while {what}\n" + "".join(
        traceback.format_exception(type(exc), exc, exc.__traceback__)
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(text + "\n")
    except OSError:
        return None
    return path


def internal_error(path: Path | str | None, exc: BaseException, as_json: bool) -> int:
    """One line for a bug met while handling ``path``; the batch goes on; exit 70 at the end."""
    where = record_crash(f"processing {path}" if path else "running", exc)
    logged = f"traceback in {where}" if where else "traceback could not be written"
    subject = f"{path}: " if path else ""
    click.echo(
        f"platewatch: {subject}internal error ({type(exc).__name__}); this is a bug, not your "
        f"input: {logged}",
        err=True,
    )
    if as_json and path is not None:
        emit({"path": str(path), "error": f"internal error ({type(exc).__name__}): {logged}"})
    return EXIT_SOFTWARE


def load_settings(config: Path | None) -> Any:
    from config import load_config

    try:
        return load_config(config)
    except PlatewatchError as exc:
        fail(_one_line(str(exc)))


def open_store_or_fail(config: Path | None) -> tuple[Any, Any]:
    from acquisition.store import open_store

    settings = load_settings(config)
    try:
        return settings, open_store(settings.store.url)
    except PlatewatchError as exc:
        fail(_one_line(str(exc)))


def output_dir(path: Path | None, option: str) -> Path | None:
    """A folder the command writes into: created if missing, but its parent must exist."""
    if path is None:
        return None
    if path.exists() and not path.is_dir():
        fail(f"{path}: {option} must be a folder, and this is a file")
    if not path.exists():
        if not path.parent.is_dir():
            fail(f"{path}: {option}: the parent folder {path.parent} does not exist")
        try:
            path.mkdir()
        except OSError as exc:
            fail(f"{path}: {option}: cannot create the folder ({exc.strerror})")
    if not os.access(path, os.W_OK | os.X_OK):
        fail(f"{path}: {option}: the folder is not writable")
    return path


def _one_line(text: str) -> str:
    return " ".join(text.split())


CONFIG_OPTION = click.option(
    "--config",
    type=click.Path(path_type=Path),
    help="Config file (default: the embedded config/platewatch.toml).",
)
