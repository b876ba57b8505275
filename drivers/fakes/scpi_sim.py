"""pyvisa-sim definitions of a SCPI absorbance reader, written from the plate model.

pyvisa-sim answers fixed dialogues (no state machine, no delays: INSTRUMENTS.md), so the
reader's plate is the model's plate at one age, one dialogue per wavelength, matching the
default :class:`drivers.scpi.ScpiCommands` (``READ:ABS? 570`` → 96 comma-separated ODs,
row by row, ``OVER`` for an over-range well). ``python -m drivers.fakes.scpi_sim`` rewrites
``drivers/fakes/scpi_reader.yaml`` (seed 1, two planted saturated wells, 48 h);
``ResourceManager("…/scpi_reader.yaml@sim")`` serves it at ``TCPIP::127.0.0.1::INSTR``,
``ASRL1::INSTR`` and ``USB0::0x1234::0x5678::SIM0001::INSTR``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from drivers.plate_model import PlateModel

YAML_PATH = Path(__file__).with_name("scpi_reader.yaml")
WAVELENGTHS = (405, 450, 490, 540, 570, 595, 600, 620, 630, 650, 690, 750)
RESOURCES = ("TCPIP::127.0.0.1::INSTR", "ASRL1::INSTR", "USB0::0x1234::0x5678::SIM0001::INSTR")
DEFAULT_MODEL = PlateModel(seed=1, saturated=2)
DEFAULT_HOURS = 48.0


def plate_reply(model: PlateModel, nm: float, hours: float) -> str:
    values, over = model.measure(nm, hours)
    return ",".join(
        "OVER" if over[r, c] else f"{values[r, c]:.4f}"
        for r in range(model.rows)
        for c in range(model.cols)
    )


def render(model: PlateModel = DEFAULT_MODEL, hours: float = DEFAULT_HOURS) -> str:
    def q(text: str) -> str:
        return json.dumps(text)  # a JSON string is a valid YAML double-quoted scalar

    lines = [
        "# Written by `python -m drivers.fakes.scpi_sim` from the platewatch plate model:",
        f"# seed {model.seed}, {len(model.planted)} planted saturated wells, plate age {hours:g} h.",
        'spec: "1.1"',
        "devices:",
        "  platewatch_reader:",
        "    eom:",
    ]
    for kind in ("ASRL INSTR", "TCPIP INSTR", "USB INSTR"):
        lines += [f"      {kind}:", '        q: "\\n"', '        r: "\\n"']
    lines += [
        f"    error: {q('ERR 100,command not found')}",
        "    dialogues:",
        f"      - q: {q('*IDN?')}",
        f"        r: {q(f'Platewatch,Simulated SCPI Reader,SIM{model.seed:04d},1.0')}",
        f"      - q: {q('STAT?')}",
        f"        r: {q('READY')}",
        f"      - q: {q('TEMP?')}",
        f"        r: {q('37.0')}",
    ]
    for nm in WAVELENGTHS:
        lines += [
            f"      - q: {q(f'READ:ABS? {nm}')}",
            f"        r: {q(plate_reply(model, nm, hours))}",
        ]
    lines.append("resources:")
    for resource in RESOURCES:
        lines += [f"  {resource}:", "    device: platewatch_reader"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=YAML_PATH)
    args = parser.parse_args(argv)
    args.out.write_text(render(), encoding="utf-8")


if __name__ == "__main__":
    main()
