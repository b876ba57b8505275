"""Which parameters carry Annexin V, PI, scatter and time (SCIENCE.md §6).

Channel names vary by instrument (FITC is ``FL1-A``, ``BL1-A``, ``B1-A``, ``BL 530/30-A``…),
so the fluorescence channels come from the user (``--channel annexin=BL1-A``, or the watch
folder's ``channels``), else from the files' own ``$PnS`` stain labels when those name
Annexin V and PI unambiguously. Names alone are only suggestions, in the error message.
Scatter and time channels are found by their conventional names unless given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from analysis.cytometry_model import ChannelMap
from datamodel.cytometry import FcsDataset, FcsParameter
from errors import AnalysisError

KEYS = ("annexin", "pi", "fsc_a", "fsc_h", "fsc_w", "ssc_a", "time")
_ANNEXIN_LABEL = re.compile(r"annexin|\bann?v\b|\banx", re.IGNORECASE)
_FITC_LABEL = re.compile(r"\bfitc\b", re.IGNORECASE)
_PI_LABEL = re.compile(r"(?<![a-z])pi(?![a-z])|propidium", re.IGNORECASE)
_FITC_NAME = re.compile(r"fitc|fl-?1\b|bl-?1\b|\bb1-|530|525|ax488|alexa ?488|gfp", re.IGNORECASE)
_PI_NAME = re.compile(
    r"\bpi\b|fl-?[23]\b|bl-?[23]\b|\bb[23]-|pe-a|percp|585|610|615|620|670|695|yl", re.IGNORECASE
)
# Conventional scatter/time names, most preferred first (full match, case-insensitive).
_SCATTER: dict[str, tuple[str, ...]] = {
    "fsc_a": (
        r"fsc[-_ ]?a(rea)?",
        r"fs[-_ ]?a(rea)?",
        r"fs int lin",
        r"fs lin",
        r"fsc",
        r"fs",
        r"fsc[-_ ]?lin[-_ ]?a",
        r"fsc[0-9]?[-_ ]?area",
        r"fsc[-_ ]?h(eight)?",
        r"fs[-_ ]?h",
    ),
    "fsc_h": (r"fsc[-_ ]?h(eight)?", r"fs[-_ ]?h(eight)?", r"fs peak lin", r"fsc[-_ ]?lin[-_ ]?h"),
    "fsc_w": (r"fsc[-_ ]?w(idth)?", r"fs[-_ ]?w(idth)?", r"fs tof lin"),
    "ssc_a": (
        r"ssc[-_ ]?a(rea)?",
        r"ss[-_ ]?a(rea)?",
        r"ss int lin",
        r"ss lin",
        r"ssc",
        r"ss",
        r"ssc[-_ ]?lin[-_ ]?a",
        r"ssc[0-9]?[-_ ]?area",
        r"side scatter",
        r"ssc[-_ ]?h(eight)?",
        r"ss[-_ ]?h",
    ),
    "time": (r"time", r"hdr-t", r"time lsw"),
}


def _is_area(p: FcsParameter) -> bool:
    name = p.name.lower()
    return name.endswith("-a") or "area" in name or not re.search(r"-[hw]$|height|width", name)


def _by_label(ds: FcsDataset, pattern: re.Pattern[str]) -> list[FcsParameter]:
    hits = [p for p in ds.parameters if p.label and pattern.search(p.label)]
    areas = [p for p in hits if _is_area(p)]
    return areas or hits


def describe_channels(ds: FcsDataset) -> str:
    return ", ".join(p.name + (f" ({p.label})" if p.label else "") for p in ds.parameters)


def _suggest(ds: FcsDataset) -> str:
    fitc = [p.name for p in ds.parameters if _FITC_NAME.search(p.name) and _is_area(p)]
    pi = [p.name for p in ds.parameters if _PI_NAME.search(p.name) and _is_area(p)]
    parts = []
    if fitc:
        parts.append(f"FITC-like by name: {', '.join(fitc[:6])}")
    if pi:
        parts.append(f"PI-like by name: {', '.join(pi[:6])}")
    return ("; " + "; ".join(parts)) if parts else ""


def _scatter(ds: FcsDataset, key: str, taken: set[str]) -> str | None:
    for pattern in _SCATTER[key]:
        for p in ds.parameters:
            if p.name not in taken and re.fullmatch(pattern, p.name.strip(), re.IGNORECASE):
                return p.name
    return None


def resolve_channels(
    datasets: Mapping[Path, FcsDataset], given: Mapping[str, str | None]
) -> ChannelMap:
    """The channel map for a batch; AnalysisError (one line: the channels and labels)."""
    unknown = sorted(set(given) - set(KEYS))
    if unknown:
        raise AnalysisError(
            f"unknown channel role(s) {', '.join(unknown)} (roles: {', '.join(KEYS)})"
        )
    first_path, first = next(iter(datasets.items()))
    chosen: dict[str, str | None] = {k: v for k, v in given.items() if v}
    for key, pattern, fallback in (
        ("annexin", _ANNEXIN_LABEL, _FITC_LABEL),
        ("pi", _PI_LABEL, None),
    ):
        if key in chosen:
            continue
        hits = _by_label(first, pattern)
        if not hits and fallback is not None:
            hits = _by_label(first, fallback)
        if len(hits) != 1:
            what = "no" if not hits else f"{len(hits)} ({', '.join(p.name for p in hits)})"
            raise AnalysisError(
                f"cannot tell which channel carries {'Annexin V' if key == 'annexin' else 'PI'}: "
                f"{what} $PnS labels name it. Pass --channel annexin=NAME --channel pi=NAME. "
                f"Channels: {describe_channels(first)}{_suggest(first)}",
                source=first_path,
            )
        chosen[key] = hits[0].name
    taken = {v for v in chosen.values() if v}
    for key in ("fsc_a", "ssc_a", "fsc_h", "fsc_w", "time"):
        if key not in chosen:
            found = _scatter(first, key, taken)
            if found is not None:
                chosen[key] = found
                taken.add(found)
    for key in ("fsc_a", "ssc_a"):
        if not chosen.get(key):
            raise AnalysisError(
                f"no {key.upper().replace('_', '-')} channel found by name; pass --channel "
                f"{key}=NAME. Channels: {describe_channels(first)}",
                source=first_path,
            )
    if chosen["annexin"] == chosen["pi"]:
        raise AnalysisError(f"Annexin V and PI are both {chosen['annexin']}: give two channels")
    for path, ds in datasets.items():
        names = {p.name for p in ds.parameters}
        lacking = [f"{k}={v}" for k, v in chosen.items() if v and v not in names]
        if lacking:
            raise AnalysisError(
                f"no channel {', '.join(lacking)} in this file. Channels: {describe_channels(ds)}",
                source=path,
            )
    return ChannelMap(
        annexin=str(chosen["annexin"]),
        pi=str(chosen["pi"]),
        fsc_a=str(chosen["fsc_a"]),
        ssc_a=str(chosen["ssc_a"]),
        fsc_h=chosen.get("fsc_h"),
        fsc_w=chosen.get("fsc_w"),
        time=chosen.get("time"),
    )
