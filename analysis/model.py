"""The analysis side of the data model (DESIGN.md §4): flags, verdicts, JSON helpers.

Plate reads themselves (``PlateRead``, ``WellStatus``, well names) live in the top-level
``datamodel`` package, shared with drivers and readers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Severity = Literal["info", "warning", "critical"]
Verdict = Literal["pass", "warn", "fail"]

SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}

# Every flag code platewatch raises (DESIGN.md §5.1: add more, never rename).
FLAG_CODES: frozenset[str] = frozenset(
    {
        # plate
        "edge_effect",
        "plate_gradient",
        "no_dose_response",
        "partial_response",
        "ic50_extrapolated",
        "replicate_variability",
        "high_background",
        "low_signal",
        "no_signal",
        "saturated_wells",
        "invalid_wells",
        "low_z_prime",
        "control_out_of_range",
        "layout_mismatch",
        "missing_controls",
        "fit_failed",
        "wavelength_differs",
        # cytometry
        "few_events",
        "thresholds_disagree",
        "no_compensation",
        "saturated_events",
        "flow_instability",
        "low_viability_control",
        # timecourse
        "growth_stalled",
        "blank_rising",
        "edge_drift",
        "read_missed",
        # instruments, across plates, the daemon
        "reader_offline",
        "reader_error",
        "control_drift",
        "quarantined",
    }
)


@dataclass
class Flag:
    """A QC finding: what happened, the likely cause and what to do, with the numbers."""

    code: str
    severity: Severity
    message: str
    wells: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "wells": list(self.wells),
            "message": self.message,
            "metrics": self.metrics,
        }


@dataclass
class Check:
    """What one check found: its flags and the numbers it measured (merged by the assay)."""

    flags: list[Flag] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    def __iadd__(self, other: Check) -> Check:
        self.flags += other.flags
        self.metrics.update(other.metrics)
        return self


def rounded(value: float | None, digits: int = 4) -> float | None:
    """A number for JSON and messages: rounded, None when it is not finite."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def verdict_of(flags: list[Flag]) -> Verdict:
    worst = max((SEVERITY_RANK[f.severity] for f in flags), default=0)
    return "fail" if worst == 2 else "warn" if worst == 1 else "pass"


def jsonable(value: Any) -> Any:
    """Plain JSON data: NaN/inf → None, numpy scalars → Python, tuples → lists."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def safe_stem(name: str) -> str:
    """A file-name stem from instrument data that cannot escape the report folder."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "plate"
    return stem[:120]


def write_report_files(
    fig: Figure, out_dir: str | Path, name: str, page: Callable[[bytes], str]
) -> dict[str, str]:
    """Write ``<name>.png`` (the figure) and ``<name>.html`` (``page`` of the PNG's bytes)
    into ``out_dir``; returns their paths."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stem = safe_stem(name)
    png = folder / f"{stem}.png"
    html_path = folder / f"{stem}.html"
    fig.savefig(png)
    html_path.write_text(page(png.read_bytes()), encoding="utf-8")
    return {"png": str(png), "html": str(html_path)}


REPORT_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.verdict { color: white; padding: 0.2rem 0.6rem; border-radius: 4px; }
.v { color: white; padding: 0.1rem 0.5rem; border-radius: 4px; font-size: 0.85rem; }
.small { font-size: 0.8rem; color: #555; }
img { max-width: 100%; }
"""


def page_head(title: str) -> str:
    """The start of a self-contained report page, up to and including ``<body>``; the
    caller escapes ``title``."""
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>\n'
        f"<style>{REPORT_STYLE}</style></head><body>\n"
    )


def number_text(value: Any, digits: int = 3) -> str:
    """A number as a report shows it; an em dash for none or a non-finite value."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{float(value):.{digits}g}"
