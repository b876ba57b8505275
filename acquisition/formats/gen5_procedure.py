"""Gen5 'Procedure Details': the read steps, and what each data label of the export means.

A read step is ``Read<TAB><step label>`` followed by ``<TAB>Absorbance Endpoint`` (or
``Fluorescence``/``Luminescence``/``Alpha`` … ``Endpoint``/``Spectrum``/``Area Scan``),
or, without a step label, ``Read<TAB>Absorbance Endpoint`` itself. Its settings lines
name the wavelengths (``Wavelengths:  450, 630``), filter sets (``Excitation: 485/20,
Emission: 528/20``), pathlength correction (``977 / 900``) and, for kinetic steps, the
enclosing ``Start Kinetic<TAB>Runtime …, Interval 0:01:00, 6 Reads``.

Data labels of the export are ``<step label>:<measurement>`` or a bare measurement, where
a measurement is a wavelength (``450``, ``977 [Test]``), a filter pair (``485,528``,
``485/20,528/20``), ``Lum``, ``Alpha`` or ``Spectrum``; ``Read 2:450`` numbers unnamed
steps. Every other label (``Blank 450``, ``[Concentration]``, ``Max V [450]``, ``Ratio``…)
is derived by Gen5 from the raw reads and is not a read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from acquisition.formats.text import parse_clock
from datamodel import ReadMode

_MODE_LINE = re.compile(
    r"^(absorbance|fluorescence polarization|fluorescence|luminescence|alpha\w*|time[- ]resolved fluorescence)"
    r"\s+(endpoint|spectrum|area scan|kinetic)?\b",
    re.IGNORECASE,
)
_NUM = r"[0-9]+(?:\.[0-9]+)?"
_SPEC = re.compile(
    rf"^(?:(?P<abs>{_NUM})(?:/{_NUM})?|(?P<ex>{_NUM})(?:/{_NUM})?,(?P<em>{_NUM})(?:/{_NUM})?"
    r"|(?P<lum>lum(?:inescence)?|full light|hole|plug)|(?P<alpha>alpha\w*)|(?P<spectrum>spectrum))"
    r"(?:\s*\[(?P<tag>test|ref|parallel|perpendicular)\])?$",
    re.IGNORECASE,
)


@dataclass
class ReadStep:
    """One ``Read`` step of the procedure."""

    label: str | None
    mode: ReadMode = "absorbance"
    kind: str = "endpoint"  # endpoint | spectrum | area scan
    wavelengths: list[float] = field(default_factory=list)
    filters: list[tuple[float | None, float | None]] = field(default_factory=list)
    kinetic: bool = False
    full_plate: bool = False


@dataclass
class Procedure:
    steps: list[ReadStep] = field(default_factory=list)
    plate_type: str = ""
    kinetic_interval_s: float | None = None
    kinetic_reads: int | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def full_plate(self) -> bool:
        return any(s.full_plate for s in self.steps)


def _mode(word: str) -> ReadMode:
    low = word.lower()
    if low.startswith("abs"):
        return "absorbance"
    if low.startswith("lum"):
        return "luminescence"
    return "fluorescence"  # fluorescence, polarization, TRF, AlphaScreen/AlphaLISA (RFU)


def _numbers(text: str) -> list[float]:
    return [float(m) for m in re.findall(r"(?<![/0-9.])([0-9]+(?:\.[0-9]+)?)", text)]


def parse_procedure(lines: list[str]) -> Procedure:
    """The procedure's read steps from the lines of its block."""
    proc = Procedure(lines=lines)
    step: ReadStep | None = None
    in_kinetic = False
    for raw in lines:
        cells = [c.strip() for c in raw.split("\t")]
        key = next((c for c in cells if c), "")
        rest = [c for c in cells[cells.index(key) + 1 :] if c] if key else []
        if key == "Plate Type" and rest:
            proc.plate_type = rest[0]
            continue
        if key == "Start Kinetic":
            in_kinetic = True
            text = " ".join(rest)
            interval = re.search(r"Interval\s+([0-9:.]+)", text)
            if interval:
                proc.kinetic_interval_s = parse_clock(interval.group(1))
            count = re.search(r"([0-9]+)\s+Reads", text)
            if count:
                proc.kinetic_reads = int(count.group(1))
            continue
        if key == "End Kinetic":
            in_kinetic = False
            continue
        if key == "Read" and rest:
            mode_line = _MODE_LINE.match(rest[0])
            step = ReadStep(label=None if mode_line else rest[0], kinetic=in_kinetic)
            if mode_line:
                step.mode = _mode(mode_line.group(1))
                step.kind = (mode_line.group(2) or "endpoint").lower()
            proc.steps.append(step)
            continue
        if step is None:
            continue
        text = " ".join(c for c in cells if c)
        mode_line = _MODE_LINE.match(text)
        if mode_line and len(text) < 60:
            step.mode = _mode(mode_line.group(1))
            step.kind = (mode_line.group(2) or "endpoint").lower()
        elif text == "Full Plate":
            step.full_plate = True
        elif text.startswith("Wavelengths:"):
            step.wavelengths.extend(_numbers(text.split(":", 1)[1]))
        elif "Excitation:" in text or "Emission:" in text:
            ex = re.search(rf"Excitation:\s*({_NUM})", text)
            em = re.search(rf"Emission:\s*({_NUM})", text)
            step.filters.append(
                (float(ex.group(1)) if ex else None, float(em.group(1)) if em else None)
            )
    return proc


@dataclass(frozen=True)
class Measurement:
    """What one data label is: its step, read mode, wavelength and excitation."""

    step: ReadStep | None
    mode: ReadMode
    wavelength_nm: float | None
    excitation_nm: float | None = None
    spectrum: bool = False


_DERIVED_PREFIX = re.compile(
    r"^(blank|delta|ratio|mean|max|min|sum|slope|onset|lag|integral|area|std|cv|\[|well)",
    re.IGNORECASE,
)


def classify(label: str, proc: Procedure) -> Measurement | None:
    """The measurement a data label names, or None for a derived dataset."""
    text = label.strip()
    prefix, spec = text.rsplit(":", 1) if ":" in text else ("", text)
    if not spec or _DERIVED_PREFIX.match(text):
        return None
    match = _SPEC.match(spec.strip())
    if match is None:
        return None
    step: ReadStep | None = None
    named = [s for s in proc.steps if s.label]
    if prefix:
        number = re.fullmatch(r"Read\s*([0-9]+)", prefix.strip())
        if number and 0 < int(number.group(1)) <= len(proc.steps):
            step = proc.steps[int(number.group(1)) - 1]
        else:
            step = next((s for s in named if s.label == prefix.strip()), None)
            if step is None and proc.steps:
                return None  # '<derived name>:450' style labels of a known procedure
    elif len(proc.steps) == 1:
        step = proc.steps[0]
    elif proc.steps:
        step = _step_for_spec(match, proc.steps)
    if match.group("lum"):
        return Measurement(step, "luminescence", None)
    if match.group("alpha"):
        return Measurement(step, "fluorescence", None)
    if match.group("spectrum"):
        mode = step.mode if step else "absorbance"
        return Measurement(step, mode, None, spectrum=True)
    if match.group("em"):
        return Measurement(step, "fluorescence", float(match.group("em")), float(match.group("ex")))
    value = float(match.group("abs"))
    mode = step.mode if step else "absorbance"
    if mode == "fluorescence" and step and step.filters:
        ex = next((e for e, m in step.filters if m == value), None)
        return Measurement(step, mode, value, ex)
    if mode == "luminescence":
        return Measurement(step, mode, None)
    return Measurement(step, mode, value)


def _step_for_spec(match: re.Match[str], steps: list[ReadStep]) -> ReadStep | None:
    """An unnamed label among several steps: the step whose settings hold it."""
    if match.group("lum"):
        return next((s for s in steps if s.mode == "luminescence"), None)
    if match.group("em"):
        em = float(match.group("em"))
        return next((s for s in steps if any(m == em for _, m in s.filters)), None)
    if match.group("abs"):
        value = float(match.group("abs"))
        return next((s for s in steps if value in s.wavelengths), None)
    return None
