"""FCS exports: each capture (re)analyses its experiment once the experiment is complete.

A cytometer writes one FCS file per tube into a folder per experiment. A capture of an
FCS file does not analyse that file alone: it finds its experiment — the captures of the
same instrument in the same folder with the same experiment keywords (``EXPERIMENT
NAME``, ``PLATE NAME``, …; ``acquisition.cytometry.group_experiments``), the newest
capture per file — and analyses all its tubes as one Annexin V/PI batch, the controls
found among them. The capture's job is queued ``[cytometry] quiet_seconds`` after the
file arrived (``Capturer(delays=…)``); a job that finds a newer file in its experiment
leaves the analysis to that file's job, so an experiment is analysed when no file has come
for the quiet time, and again when a late file arrives. Each tube is one finding. The
density plots need the events, which are not stored: their plot data are kept beside the
reports as ``.npz`` (plain arrays, no pickle) so the report job draws them later.
"""

from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from acquisition.capture import Capture
from acquisition.cytometry import analyze_fcs_batch, group_experiments, read_fcs_keywords
from acquisition.kinds.base import Finding, JobContext
from acquisition.store import captures
from analysis.cytometry_model import CytometryDefaults, CytometryResult, PlotData
from analysis.model import Flag
from errors import AnalysisError

ARRAYS = ("fsc", "ssc", "fsc_other", "annexin", "pi")


def experiment_of(capture: Capture, ctx: JobContext) -> tuple[str, list[Capture]]:
    """The experiment's name and its captures (the newest per source file)."""
    with ctx.store.engine.connect() as conn:
        rows = (
            conn.execute(
                select(captures)
                .where(captures.c.instrument == capture.instrument, captures.c.kind == "cytometry")
                .order_by(captures.c.id)
            )
            .mappings()
            .all()
        )
    folder = capture.source.parent
    newest: dict[str, Capture] = {}
    for row in rows:
        other = Capture.from_row(dict(row))
        if other.source.parent == folder:
            newest[other.source_path] = other  # ordered by id: the last one wins
    by_archive = {c.archive: c for c in newest.values()}
    keywords = {c.archive: read_fcs_keywords(c.archive) for c in newest.values()}
    for group in group_experiments(list(by_archive), keywords):
        members = [by_archive[p] for p in group.files]
        if any(m.id == capture.id for m in members) or capture.archive in group.files:
            return group.name or folder.name, members
    return folder.name, [capture]


class CytometryAnalyser:
    kind = "cytometry"

    def analyse(self, capture: Capture, ctx: JobContext) -> list[Finding]:
        name, members = experiment_of(capture, ctx)
        if any(m.id > capture.id for m in members):
            return []  # a later file of this experiment came in: its job analyses the whole
        watch = next((w for w in ctx.settings.watch if w.instrument == capture.instrument), None)
        cyto = ctx.settings.cytometry
        patterns = (
            {k: tuple(v) for k, v in cyto.control_patterns.items()}
            if cyto.control_patterns
            else None
        )
        by_archive = {m.archive: m for m in members}
        batch = analyze_fcs_batch(
            list(by_archive),
            channels=watch.channels if watch else None,
            thresholds=cyto,
            patterns=patterns,
        )
        plot_dir = ctx.settings.service.state_dir / "reports" / "plotdata"
        findings = []
        for n, result in enumerate(batch.results):
            member = by_archive[Path(result.path)]
            body = result.to_dict() | {
                "path": member.source_path,
                "experiment": name,
                "tubes": len(members),
                "capture_ids": sorted(m.id for m in members),
                "display": {"transform": cyto.transform, "arcsinh_cofactor": cyto.arcsinh_cofactor},
            }
            if result.plot is not None:
                body["plot"] = _save_plot(plot_dir / f"{capture.id:06d}_{n:03d}.npz", result.plot)
            findings.append(
                Finding(
                    subject=f"{Path(member.file_name).stem}"[:190],
                    key=f"{capture.instrument}:{name}/{Path(member.file_name).stem}",
                    name=f"{member.file_name} ({name}, {capture.instrument})",
                    kind="cytometry",
                    verdict=result.verdict,
                    flags=result.flags,
                    body=body,
                )
            )
        if not findings:
            raise AnalysisError(
                f"experiment {name}: no tube could be analysed", source=capture.source_path
            )
        return findings

    def render(
        self, capture: Capture, body: dict[str, Any], out_dir: Path, name: str
    ) -> dict[str, str]:
        from analysis.cytometry_report import write_cytometry_report

        result = CytometryResult(
            path=str(body["path"]),
            role=body["role"],
            verdict=body["verdict"],
            flags=[
                Flag(
                    f["code"], f["severity"], f["message"], f.get("wells", []), f.get("metrics", {})
                )
                for f in body["flags"]
            ],
            populations=body.get("populations"),
            gates=body.get("gates") or {},
            compensation=body.get("compensation") or {},
            well=body.get("well"),
            plot=_load_plot(body["plot"]) if body.get("plot") else None,
        )
        display = body.get("display") or {}
        th = replace(
            CytometryDefaults(),
            transform=display.get("transform", "arcsinh"),
            arcsinh_cofactor=float(display.get("arcsinh_cofactor", 150.0)),
        )
        files = write_cytometry_report([result], out_dir, name, th)
        return {"png": result.report.get("png", ""), **files}


def _save_plot(path: Path, plot: PlotData) -> dict[str, Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: getattr(plot, k) for k in ARRAYS if getattr(plot, k) is not None}
    np.savez_compressed(path, **arrays)
    scalars = {f.name: getattr(plot, f.name) for f in fields(plot) if f.name not in ARRAYS}
    return {"file": str(path), **json.loads(json.dumps(scalars, default=list))}


def _load_plot(saved: dict[str, Any]) -> PlotData | None:
    path = Path(saved["file"])
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: (data[k] if k in data.files else None) for k in ARRAYS}

    def pair(value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value

    return PlotData(
        fsc=arrays["fsc"],  # type: ignore[arg-type]
        ssc=arrays["ssc"],  # type: ignore[arg-type]
        fsc_other=arrays["fsc_other"],
        other_kind=saved.get("other_kind"),
        debris_threshold=saved.get("debris_threshold"),
        singlet_bounds=pair(saved.get("singlet_bounds")),
        annexin=arrays["annexin"],  # type: ignore[arg-type]
        pi=arrays["pi"],  # type: ignore[arg-type]
        thresholds=pair(saved.get("thresholds")),
        names=pair(saved.get("names")),
    )


ANALYSER = CytometryAnalyser()
