"""Capture kinds and their analysers: a new kind is one module here defining ``ANALYSER``.

The worker looks the analyser up by the capture's kind and knows nothing else about it
(``base.py`` has the contract). Tests may :func:`register` their own kinds.
"""

from __future__ import annotations

import importlib
import pkgutil

from acquisition.kinds.base import Analyser, Finding, JobContext
from errors import AnalysisError

ANALYSERS: dict[str, Analyser] = {}


def register(analyser: Analyser) -> None:
    ANALYSERS[analyser.kind] = analyser


def unregister(kind: str) -> None:
    ANALYSERS.pop(kind, None)


def analyser_for(kind: str) -> Analyser:
    try:
        return ANALYSERS[kind]
    except KeyError:
        known = ", ".join(sorted(ANALYSERS))
        raise AnalysisError(f"no analyser for captures of kind {kind!r} (kinds: {known})") from None


def _discover() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        analyser = getattr(module, "ANALYSER", None)
        if analyser is not None:
            register(analyser)


_discover()

__all__ = ["ANALYSERS", "Analyser", "Finding", "JobContext", "analyser_for", "register"]
