"""Compensation keywords of an FCS dataset → a :class:`Spillover` (SCIENCE.md §6).

* ``$SPILLOVER`` (FCS 3.1) and ``SPILL`` (BD FACSDiva): ``n,name1,…,namen,s11,s12,…,snn``,
  row-major, rows the fluorochromes, columns the detectors. Names are ``$PnN`` values,
  sometimes ``$PnS`` labels, and in Beckman's Gallios parameter numbers.
* ``$COMP`` (FCS 3.0): ``n,s11,…,snn`` over the first n parameters.
* ``$DFCmTOn`` (FCS 2.0, Beckman): the percentage of detector FLm's dye seen in FLn; the
  numbers are FL detector numbers, not parameter numbers.

A keyword that cannot be used (names no parameter, too few numbers, a singular matrix) is
recorded as a warning and skipped: the file still reads, without that matrix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

from acquisition.formats.fcs_text import digits, quoted
from datamodel.cytometry import FcsParameter, Spillover

SPILLOVER_KEYS = ("$SPILLOVER", "SPILL", "$SPILL", "SPILLOVER")
_DFC = re.compile(r"\$DFC([0-9]{1,3})TO([0-9]{1,3})")
_MAX_CONDITION = 1e10


def find_spillover(
    keywords: dict[str, str], parameters: Sequence[FcsParameter]
) -> tuple[Spillover | None, list[str]]:
    """The first usable compensation keyword of a dataset, and warnings about the others."""
    warnings: list[str] = []
    for key in SPILLOVER_KEYS:
        if keywords.get(key, "").strip():
            found, why = _named_matrix(key, keywords[key], parameters)
            if found is not None:
                return found, warnings
            warnings.append(f"{key} not used: {why}")
    if keywords.get("$COMP", "").strip():
        found, why = _comp(keywords["$COMP"], parameters)
        if found is not None:
            return found, warnings
        warnings.append(f"$COMP not used: {why}")
    dfc = {k: v for k, v in keywords.items() if _DFC.fullmatch(k)}
    if dfc:
        found, why = _dfc(dfc, parameters)
        if found is not None:
            return found, warnings
        warnings.append(f"$DFCmTOn not used: {why}")
    return None, warnings


def _numbers(tokens: Sequence[str]) -> list[float] | None:
    out: list[float] = []
    for token in tokens:
        try:
            value = float(token)
        except ValueError:
            return None
        if not math.isfinite(value):
            return None
        out.append(value)
    return out


def _checked(
    channels: tuple[str, ...], matrix: np.ndarray, source: str
) -> tuple[Spillover | None, str]:
    if len(set(channels)) != len(channels):
        return None, "a channel is named twice"
    if np.any(np.diag(matrix) == 0):
        return None, "a zero on the diagonal"
    if not np.isfinite(np.linalg.cond(matrix)) or np.linalg.cond(matrix) > _MAX_CONDITION:
        return None, "the matrix is singular"
    return Spillover(channels, matrix, source), ""


def _resolve(name: str, parameters: Sequence[FcsParameter]) -> str | None:
    """A spillover channel name → a $PnN: by name, by unique label, or by parameter number."""
    text = name.strip()
    for p in parameters:
        if p.name == text:
            return p.name
    labelled = [p for p in parameters if p.label is not None and p.label == text]
    if len(labelled) == 1:
        return labelled[0].name
    if digits(text) and 1 <= int(text) <= len(parameters):
        return parameters[int(text) - 1].name
    return None


def _named_matrix(
    key: str, value: str, parameters: Sequence[FcsParameter]
) -> tuple[Spillover | None, str]:
    tokens = value.split(",")
    head = tokens[0].strip()
    if not digits(head) or int(head) < 1:
        return None, f"starts with {quoted(head, 20)}, not a channel count"
    n = int(head)
    if n > len(parameters):
        return None, f"{n} channels, the dataset has {len(parameters)} parameters"
    if len(tokens) < 1 + n + n * n:
        return None, f"{len(tokens) - 1} entries for {n} channels (needs {n + n * n})"
    names = tokens[1 : 1 + n]
    channels: list[str] = []
    for name in names:
        resolved = _resolve(name, parameters)
        if resolved is None:
            return (
                None,
                f"names channel {quoted(name.strip(), 30)}, which the dataset does not have",
            )
        channels.append(resolved)
    values = _numbers(tokens[1 + n : 1 + n + n * n])
    if values is None:
        return None, "a matrix entry is not a finite number"
    return _checked(tuple(channels), np.array(values, dtype=np.float64).reshape(n, n), key)


def _comp(value: str, parameters: Sequence[FcsParameter]) -> tuple[Spillover | None, str]:
    tokens = value.split(",")
    head = tokens[0].strip()
    if not digits(head) or not 1 <= int(head) <= len(parameters):
        return None, f"starts with {quoted(head, 20)}, not a parameter count"
    n = int(head)
    values = _numbers(tokens[1 : 1 + n * n])
    if values is None or len(values) != n * n:
        return None, f"needs {n * n} numbers"
    channels = tuple(p.name for p in parameters[:n])
    return _checked(channels, np.array(values, dtype=np.float64).reshape(n, n), "$COMP")


def _fl_parameter(number: int, parameters: Sequence[FcsParameter]) -> str | None:
    pattern = re.compile(rf"FL\s*{number}(?![0-9])", re.IGNORECASE)
    hits = [p for p in parameters if pattern.match(p.name)]
    if not hits:
        return None
    logs = [p for p in hits if "LOG" in p.name.upper()]
    return (logs or hits)[0].name


def _dfc(dfc: dict[str, str], parameters: Sequence[FcsParameter]) -> tuple[Spillover | None, str]:
    entries: list[tuple[str, str, float]] = []
    for key, value in dfc.items():
        match = _DFC.fullmatch(key)
        if match is None:
            continue
        src, dst = int(match.group(1)), int(match.group(2))
        if src == dst:
            continue  # some writers put 0 on the diagonal; it is 1 by definition
        numbers = _numbers([value])
        if numbers is None:
            return None, f"{key}={quoted(value, 20)} is not a number"
        a, b = _fl_parameter(src, parameters), _fl_parameter(dst, parameters)
        if a is None or b is None:
            if numbers[0] != 0:
                return None, f"{key} names a detector FL{src if a is None else dst} not in the data"
            continue
        entries.append((a, b, numbers[0] / 100.0))
    channels = tuple(sorted({c for a, b, _ in entries for c in (a, b)}, key=_order(parameters)))
    if len(channels) < 2:
        return None, "fewer than two detectors"
    matrix = np.eye(len(channels))
    for a, b, v in entries:
        matrix[channels.index(a), channels.index(b)] = v
    return _checked(channels, matrix, "$DFCiTOj")


def _order(parameters: Sequence[FcsParameter]):  # type: ignore[no-untyped-def]
    position = {p.name: k for k, p in enumerate(parameters)}
    return lambda name: position.get(name, len(position))
