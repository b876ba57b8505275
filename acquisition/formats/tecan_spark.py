"""Tecan SparkControl xlsx exports (Spark, Spark Cyto), English and German.

Signature: a cell ``Application: SparkControl`` (German ``Programm: SparkControl``)
in the first rows of a sheet. The sheet layouts (``<>`` grids, 384-well partial plates, kinetic with
cycles as rows, luminescence counts) are read by :mod:`acquisition.formats.tecan_sheet`.
"""

from __future__ import annotations

from acquisition.formats.tecan_sheet import application_reader

READER = application_reader(
    "tecan_spark", "sparkcontrol", priority=21, describe="Tecan SparkControl workbook"
)
