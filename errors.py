"""The error hierarchy: one root, one subclass per area.

Every error carries the thing it is about (a file, a key, an instrument) and a message a
scientist or an operator can act on. ``str(error)`` is the one-line form the CLI prints.
"""

from __future__ import annotations

from pathlib import Path


class PlatewatchError(Exception):
    """Root of every error platewatch raises on purpose."""

    def __init__(self, message: str, *, source: str | Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.source = str(source) if source is not None else None

    def __str__(self) -> str:
        if self.source:
            return f"{self.source}: {self.message}"
        return self.message


class ConfigError(PlatewatchError):
    """A configuration file is missing, malformed, or names an unknown key."""


class LayoutError(PlatewatchError):
    """A plate layout cannot be used with the plate it was given for."""


class FormatError(PlatewatchError):
    """An export file cannot be read: unknown format, junk, or malformed content."""


class IncompleteFileError(FormatError):
    """The file looks like a known export that is still being written (or was truncated).

    The watcher waits and retries on this error; the CLI reports it as bad input.
    """


class AnalysisError(PlatewatchError):
    """The data cannot be analysed as asked (e.g. no wells left to fit)."""


class InstrumentError(PlatewatchError):
    """An instrument did not answer, answered an error, or was unplugged."""
