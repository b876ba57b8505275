"""allotropy (0.1.150) as the cross-check peer: its ASM reduced to plate → read → well → value.

allotropy lives in the peer environment (``tests/peers.py``). ``allotropy_reads`` runs
``allotropy.to_allotrope.allotrope_from_file(path, Vendor[VENDOR])`` there on a batch of
files and reduces every ASM document to ``{plate: {read key: {well: value}}}``:

* plate: the measurement's ``well plate identifier``;
* read key: ``"<detection type>|wl=<detector wavelength>|ex=<excitation>|#<n>"`` where n
  counts the measurements of one well with the same settings (three reads at 426 nm are
  #0, #1, #2), plus ``|t=<s>`` or ``|nm=<wavelength>`` for each point of a kinetic or
  spectrum data cube;
* value: the number, or ``"!<error text>"`` when allotropy attached an error document to
  the measurement (its value is then a placeholder, ``-0.0``); errors allotropy copies
  onto raw measurements from Group-block calculations (``Result: Error``) are not
  measurement errors and are left out.

allotropy's units are not platewatch's: it labels every absorbance ``mAU`` while the
numbers are the reader's OD, so values are compared as numbers and units are ignored.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from tests.peers import run_peer

PEER_SCRIPT = r"""
import json, sys, warnings
warnings.filterwarnings("ignore")
from allotropy.to_allotrope import allotrope_from_file
from allotropy.parser_factory import Vendor

MEASURES = ("absorbance", "fluorescence", "luminescence")

def measurements(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "measurement document" and isinstance(value, list):
                yield from value
            else:
                yield from measurements(value)
    elif isinstance(node, list):
        for item in node:
            yield from measurements(item)

def setting(dc, key):
    value = dc.get(key)
    return value.get("value") if isinstance(value, dict) else None

def reduce(doc):
    plates, counts = {}, {}
    for m in measurements(doc["plate reader aggregate document"]["plate reader document"]):
        sample = m.get("sample document", {})
        plate, well = str(sample.get("well plate identifier")), sample.get("location identifier")
        dcs = m.get("device control aggregate document", {}).get("device control document") or [{}]
        dc = dcs[0]
        base = "%s|wl=%s|ex=%s" % (dc.get("detection type"), setting(dc, "detector wavelength setting"),
                                   setting(dc, "excitation wavelength setting"))
        n = counts.get((plate, well, base), 0)
        counts[(plate, well, base)] = n + 1
        key = "%s|#%d" % (base, n)
        found = [k for k in MEASURES if k in m]
        # An error document on the measurement itself (feature: the read mode) replaces
        # the number, which is then a -0.0 placeholder; errors that allotropy copies from
        # Group-block calculations (features 'Result', 'R', …) leave the number alone.
        errors = [
            e.get("error")
            for e in m.get("error aggregate document", {}).get("error document", [])
            if any(w in str(e.get("error feature", "")).lower() for w in MEASURES)
        ]
        reads = plates.setdefault(plate, {})
        cube = next((v for k, v in m.items() if k.endswith("data cube")), None)
        if found:
            value = m[found[0]]["value"]
            reads.setdefault(key, {})[well] = ("!" + str(errors[0])) if errors else value
        elif cube is not None:
            concept = cube["cube-structure"]["dimensions"][0].get("concept", "")
            axis = "t" if "time" in concept else "nm"
            dims = cube["data"]["dimensions"][0] if cube["data"]["dimensions"] else []
            values = cube["data"]["measures"][0] if cube["data"]["measures"] else []
            if not values:
                reads.setdefault(key + "|empty-cube", {})[well] = None
            for d, v in zip(dims, values):
                reads.setdefault("%s|%s=%g" % (key, axis, d), {})[well] = v
    return plates

out = {}
for path, vendor in json.loads(sys.argv[1]):
    try:
        out[path] = {"plates": reduce(allotrope_from_file(path, Vendor[vendor]))}
    except Exception as exc:  # a peer that cannot read a file is a finding, not a crash
        out[path] = {"error": "%s: %s" % (type(exc).__name__, str(exc)[:300])}
print(json.dumps(out))
"""


def allotropy_reads(files: list[tuple[str, str]]) -> dict[str, Any]:
    """{path: {"plates": {plate: {read key: {well: value}}}} or {"error": text}}."""
    return dict(_cached(json.dumps(sorted(files))))


@cache
def _cached(batch: str) -> tuple[tuple[str, Any], ...]:
    result = run_peer(PEER_SCRIPT, batch)
    return tuple(result.items())


def parse_key(key: str) -> dict[str, Any]:
    """A read key's parts: detection, wl, ex (floats or None), n, and t/nm when a cube."""
    parts = key.split("|")
    out: dict[str, Any] = {"detection": parts[0], "empty_cube": False, "t": None, "nm": None}
    for part in parts[1:]:
        if part == "empty-cube":
            out["empty_cube"] = True
        elif part.startswith("#"):
            out["n"] = int(part[1:])
        else:
            name, value = part.split("=", 1)
            out[name] = None if value == "None" else float(value)
    return out
