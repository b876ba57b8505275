"""FCS files → one Annexin V/PI batch: roles, channels, analysis, report (issue 11).

What the CLI's ``analyze`` (FCS files given together) and, later, the daemon's experiment
jobs call. It reads the files, finds the controls among them (``--control ROLE=FILE``, then
the ``TUBE NAME``/``$SRC``/``$FIL`` keywords, then the file stem, against configurable
patterns, FACSDiva's ``Compensation Controls_<detector> Stained Control`` included),
resolves the Annexin V and PI channels (given, else the files' own ``$PnS`` labels when they
are unambiguous, else an AnalysisError listing the channels), runs the pure analysis and
writes the report.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acquisition.cytometry_channels import resolve_channels
from acquisition.formats.fcs import read_fcs
from acquisition.formats.fcs_text import parse_header, parse_text
from analysis.cytometry import analyze_batch
from analysis.cytometry_model import (
    CytometryDefaults,
    CytometryResult,
    CytometryThresholds,
    Role,
    SampleInput,
)
from datamodel.cytometry import CytometryFile, FcsDataset
from errors import AnalysisError, FormatError

# Role → regular expressions (case-insensitive) matched against the tube's names, after
# "_" and "-" are read as spaces. Configurable: ``[cytometry.control_patterns]``.
DEFAULT_PATTERNS: dict[str, tuple[str, ...]] = {
    "unstained": (
        r"\bun ?stained\b",
        r"\bunst\b",
        r"\bno (stain|dye)s?\b",
        r"\bautofluorescence\b",
    ),
    "annexin_only": (
        r"\bannexin( v)?( fitc)? only\b",
        r"\bann?v( fitc)? only\b",
        r"\bfitc only\b",
        r"\bannexin( v)? single( stain)?\b",
    ),
    "pi_only": (
        r"\bpi only\b",
        r"\bpropidium( iodide)? only\b",
        r"\bpi single( stain)?\b",
    ),
    "untreated": (
        r"\buntreated\b",
        r"\bvehicle\b",
        r"\bdmso\b",
        r"\bmock\b",
        r"\bno drug\b",
    ),
}
ROLE_KEYWORDS = ("TUBE NAME", "$SRC", "$FIL")
_DIVA = re.compile(r"Compensation Controls_(?P<detector>.+?) Stained Control", re.IGNORECASE)
_DIVA_UNSTAINED = re.compile(r"Compensation Controls_Unstained Control", re.IGNORECASE)
ROLE_NAMES: tuple[Role, ...] = ("unstained", "annexin_only", "pi_only", "untreated", "sample")


@dataclass
class CytometryBatch:
    """What one batch gave: a result per analysed tube, and the files left out (and why)."""

    results: list[CytometryResult]
    channels: dict[str, str | None]
    roles: dict[str, str]  # path → role, and how it was found
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def to_dicts(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.results]


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[_\-.]+", " ", text).lower().split())


def _matches(text: str, patterns: Mapping[str, Sequence[str]]) -> str | None:
    norm = _normalise(text)
    for role in ("unstained", "annexin_only", "pi_only", "untreated"):
        for pattern in patterns.get(role, ()):
            if re.search(pattern, norm, re.IGNORECASE):
                return role
    return None


def _names_of(path: Path, ds: FcsDataset) -> list[tuple[str, str]]:
    """(where, text) of the names a tube carries, in the order they are trusted."""
    names = []
    tube, src = ds.keyword("TUBE NAME"), ds.keyword("$SRC")
    if tube:
        names.append(("TUBE NAME", tube))
    if src and tube:
        names.append(("$SRC_TUBE NAME", f"{src}_{tube}"))
    for key in ROLE_KEYWORDS[1:]:
        value = ds.keyword(key)
        if value:
            names.append((key, value))
    names.append(("file name", path.stem))
    return names


def _diva_role(text: str, channels: Mapping[str, str | None], ds: FcsDataset) -> str | None:
    if _DIVA_UNSTAINED.search(text):
        return "unstained"
    match = _DIVA.search(text)
    if match is None:
        return None
    detector = match.group("detector").strip().lower()
    for role, key in (("annexin_only", "annexin"), ("pi_only", "pi")):
        channel = channels.get(key)
        if not channel:
            continue
        label = (ds.parameter(channel).label or "").lower() if channel in _names(ds) else ""
        stems = {channel.lower(), re.sub(r"-[ahw]$", "", channel.lower())}
        if detector in stems or (label and detector in label):
            return role
    return "other_control"


def _names(ds: FcsDataset) -> set[str]:
    return {p.name for p in ds.parameters}


def find_roles(
    files: Mapping[Path, FcsDataset],
    channels: Mapping[str, str | None],
    *,
    controls: Mapping[str, Path] | None = None,
    patterns: Mapping[str, Sequence[str]] | None = None,
) -> dict[Path, tuple[str, str]]:
    """Each file's role and how it was found ("--control", the keyword, "file name")."""
    rules = patterns if patterns is not None else DEFAULT_PATTERNS
    explicit: dict[Path, str] = {}
    for role, path in (controls or {}).items():
        if role not in ("unstained", "annexin_only", "pi_only", "untreated"):
            raise AnalysisError(
                f"--control {role}=…: the roles are unstained, annexin_only, pi_only, untreated"
            )
        key = _same_file(Path(path), files)
        if key is None:
            raise AnalysisError(f"--control {role}={path}: that file is not among the inputs")
        explicit[key] = role
    roles: dict[Path, tuple[str, str]] = {}
    for path, ds in files.items():
        if path in explicit:
            roles[path] = (explicit[path], "--control")
            continue
        found: tuple[str, str] | None = None
        for where, text in _names_of(path, ds):
            matched = _diva_role(text, channels, ds) or _matches(text, rules)
            if matched is not None:
                found = (matched, where)
                break
        roles[path] = found or ("sample", "")
    taken = set(explicit.values())
    for path, (role, where) in roles.items():
        if role in taken and where != "--control" and role != "untreated":
            roles[path] = ("sample", f"a {role} control was given explicitly")
    return roles


def _same_file(path: Path, files: Mapping[Path, FcsDataset]) -> Path | None:
    for candidate in files:
        if candidate == path or candidate.resolve() == path.resolve():
            return candidate
    return None


def analyze_fcs_batch(
    paths: Sequence[Path],
    *,
    channels: Mapping[str, str] | None = None,
    controls: Mapping[str, Path] | None = None,
    thresholds: CytometryThresholds | None = None,
    patterns: Mapping[str, Sequence[str]] | None = None,
    report_dir: Path | None = None,
    report_name: str = "cytometry",
    files: Mapping[Path, CytometryFile] | None = None,
) -> CytometryBatch:
    """Analyse FCS files as one batch. Raises FormatError for a file that cannot be read
    (IncompleteFileError while one is still being written) and AnalysisError when the
    channels or controls cannot be resolved."""
    th = thresholds or CytometryDefaults()
    datasets: dict[Path, FcsDataset] = {}
    given = [Path(p) for p in paths]
    known = {p.resolve() for p in given}
    given += [Path(c) for c in (controls or {}).values() if Path(c).resolve() not in known]
    for raw in dict.fromkeys(given):  # a --control file not among the inputs joins them
        path = Path(raw)
        cf = files[path] if files is not None and path in files else read_fcs(path)
        datasets[path] = cf.primary  # a tube without events is analysed: few_events says so
    if not datasets:
        raise AnalysisError("no FCS files to analyse")
    channel_map = resolve_channels(datasets, channels or {})
    roles = find_roles(datasets, channel_map.to_dict(), controls=controls, patterns=patterns)
    samples: list[SampleInput] = []
    skipped: list[tuple[str, str]] = []
    for path, ds in datasets.items():
        role, _ = roles[path]
        if role == "other_control":
            skipped.append((str(path), "a compensation control for another detector"))
            continue
        samples.append(SampleInput(str(path), role, ds))  # type: ignore[arg-type]
    results = analyze_batch(samples, channel_map, th)
    if report_dir is not None:
        from analysis.cytometry_report import write_cytometry_report

        write_cytometry_report(results, report_dir, report_name, th)
    return CytometryBatch(
        results=results,
        channels=channel_map.to_dict(),
        roles={str(p): f"{r} ({w})" if w else r for p, (r, w) in roles.items()},
        skipped=skipped,
    )


# --- the daemon's grouping of files into experiments --------------------------------------

GROUP_KEYWORDS = ("EXPERIMENT NAME", "PLATE NAME", "PLATE ID", "$PLATEID", "$PROJ")


@dataclass
class Experiment:
    """Files that belong together: the same folder and the same experiment keywords."""

    folder: Path
    name: str  # the experiment/plate name, or "" when the files carry none
    files: list[Path]


def read_fcs_keywords(path: Path) -> dict[str, str]:
    """The first dataset's TEXT keywords only (cheap: the events are not read)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(58)
            header = parse_header(head, 0, path)
            fh.seek(0)
            text_end = header.text[1]
            if text_end > 64 * 1024 * 1024:
                raise FormatError("TEXT segment larger than 64 MiB", source=path)
            buf = fh.read(text_end + 1)
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror or exc}", source=path) from None
    return parse_text(buf, header.text[0], header.text[1], path).keywords


def group_experiments(
    files: Iterable[Path], keywords: Mapping[Path, Mapping[str, str]] | None = None
) -> list[Experiment]:
    """Files → experiments by folder, then ``EXPERIMENT NAME``/``PLATE NAME``/… keywords.

    Controls are grouped with their samples: FACSDiva keeps compensation controls under
    their own ``$SRC`` specimen, so ``$SRC`` and ``TUBE NAME`` do not split a group.
    ``keywords`` may be handed in (the daemon has them); else they are read from the files.
    """
    groups: dict[tuple[Path, str], list[Path]] = {}
    for path in files:
        kw = (
            keywords[path] if keywords is not None and path in keywords else read_fcs_keywords(path)
        )
        name = next((kw[k].strip() for k in GROUP_KEYWORDS if kw.get(k, "").strip()), "")
        groups.setdefault((path.parent, name), []).append(path)
    out = [Experiment(folder, name, sorted(paths)) for (folder, name), paths in groups.items()]
    # a folder whose tubes carry no experiment keyword joins the single named group beside it
    by_folder: dict[Path, list[Experiment]] = {}
    for e in out:
        by_folder.setdefault(e.folder, []).append(e)
    merged: list[Experiment] = []
    for experiments in by_folder.values():
        named = [e for e in experiments if e.name]
        unnamed = [e for e in experiments if not e.name]
        if len(named) == 1 and unnamed:
            named[0].files = sorted(named[0].files + [p for e in unnamed for p in e.files])
            merged.append(named[0])
        else:
            merged.extend(experiments)
    return sorted(merged, key=lambda e: (str(e.folder), e.name))
