"""Tecan i-control xlsx exports (infinite M200/M1000/F200, …), English and German.

Signature: a cell ``Application: Tecan i-control`` (German ``Programm: Tecan i-control``)
in the first rows of a sheet. The sheet layouts (``<>`` grids, kinetic one row per well,
several reads per well) are read by :mod:`acquisition.formats.tecan_sheet`.
"""

from __future__ import annotations

from acquisition.formats.tecan_sheet import application_reader

READER = application_reader(
    "tecan_icontrol", "tecan i-control", priority=20, describe="Tecan i-control workbook"
)
