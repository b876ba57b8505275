"""The analyser contract: how a capture of one kind becomes stored findings and a report.

A capture kind ("plate", "cytometry", …) has one :class:`Analyser`. The worker knows only
this contract: it hands the analyser a :class:`Capture` and a :class:`JobContext`, stores
the :class:`Finding`\\ s it returns (one result row each, with their flags) in the job's
transaction, and later asks the same analyser to render each stored finding's report from
its stored body — never from a second analysis, so a report always shows what was stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from analysis.model import Flag, Verdict

if TYPE_CHECKING:
    from acquisition.capture import Capture
    from acquisition.clock import Clock
    from acquisition.store import Store
    from analysis.curves import ReferenceRange
    from config.schema import Settings


@dataclass(frozen=True)
class JobContext:
    """What a job runs with: the store, one generation of settings, the reference table."""

    store: Store
    settings: Settings
    references: Mapping[str, ReferenceRange] = field(default_factory=dict)
    layout_override: Path | None = None  # a re-analysis with another layout (dashboard)

    @property
    def clock(self) -> Clock:
        return self.store.clock


@dataclass(frozen=True)
class Finding:
    """One analysed subject of a capture: a plate, a cytometry sample, a timecourse read."""

    subject: str  # unique within the capture (the results row's ``plate`` column)
    key: str  # identity across re-exports, for alert dedup/resolve: "instrument:barcode"
    name: str  # for people: "Plate 1 (plate.txt, reader-1)"
    kind: str  # what it is: "plate", "cytometry", …
    verdict: Verdict
    flags: list[Flag]
    body: dict[str, Any]  # the stored JSON: everything its report is rendered from


class Analyser(Protocol):
    """One capture kind's analysis (registered in ``acquisition.kinds``)."""

    @property
    def kind(self) -> str: ...

    def analyse(self, capture: Capture, ctx: JobContext) -> list[Finding]:
        """The findings of one capture. Bad input raises a PlatewatchError (quarantine);
        an unreadable archive raises OSError (retried)."""
        ...

    def render(
        self, capture: Capture, body: dict[str, Any], out_dir: Path, name: str
    ) -> dict[str, str]:
        """Write the report of one stored finding; returns {"png": path, "html": path}."""
        ...
