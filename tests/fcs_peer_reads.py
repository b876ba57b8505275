"""Run in the peer environment (tests/peers.py): read FCS files with flowio, fcsparser and
FlowCal and save each one's raw events as .npy files (no pickle) for the cross-check.

    python fcs_peer_reads.py OUT_DIR FILE [FILE ...]

Prints one JSON document: {file: {peer: {"ok": bool, "datasets": [npy paths], "error": str,
"how": str}}}; FILE is ``path::number-of-datasets``. Raw values only: flowio ``as_array(preprocess=False)``, fcsparser's frame as
read, FlowCal's FCSData array (neither applies $PnE/$PnG).
"""

import json
import os
import sys
import warnings

import numpy as np

warnings.simplefilter("ignore")


def _save(out, stem, peer, k, array):
    path = os.path.join(out, f"{stem}.{peer}.{k}.npy")
    np.save(path, np.asarray(array, dtype=np.float64), allow_pickle=False)
    return path


def _why(exc):
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


def _flowio_chain(path, out, stem, peer, attempts):
    errors = []
    for how, attempt in attempts:
        try:
            datasets = attempt()
            paths = [
                _save(out, stem, peer, k, d.as_array(preprocess=False))
                for k, d in enumerate(datasets)
            ]
            return {"ok": True, "datasets": paths, "how": how, "error": "; ".join(errors)}
        except Exception as exc:  # a peer failing is a result, recorded
            errors.append(f"{how}: {_why(exc)}")
    return {"ok": False, "datasets": [], "how": "", "error": "; ".join(errors)}


def read_flowio(path, out, stem):
    """flowio as the SCIENCE notes say it must be called; when it refuses a file for
    disagreeing HEADER/TEXT offsets, each choice is recorded as its own peer."""
    import flowio

    results = {
        "flowio": _flowio_chain(
            path,
            out,
            stem,
            "flowio",
            [
                ("defaults", lambda: [flowio.FlowData(path)]),
                ("ignore_offset_error", lambda: [flowio.FlowData(path, ignore_offset_error=True)]),
                ("read_multiple_data_sets", lambda: flowio.read_multiple_data_sets(path)),
                (
                    "read_multiple_data_sets, ignore_offset_error",
                    lambda: flowio.read_multiple_data_sets(path, ignore_offset_error=True),
                ),
            ],
        )
    }
    if "DataOffsetDiscrepancyError" in results["flowio"]["error"]:
        results["flowio[header offsets]"] = _flowio_chain(
            path,
            out,
            stem,
            "flowio_header",
            [("use_header_offsets", lambda: [flowio.FlowData(path, use_header_offsets=True)])],
        )
        results["flowio[text offsets]"] = _flowio_chain(
            path,
            out,
            stem,
            "flowio_text",
            [
                (
                    "ignore_offset_discrepancy",
                    lambda: [flowio.FlowData(path, ignore_offset_discrepancy=True)],
                )
            ],
        )
    return results


def read_fcsparser(path, out, stem, n_datasets):
    import fcsparser

    paths = []
    try:
        for k in range(n_datasets):
            _, frame = fcsparser.parse(path, reformat_meta=True, data_set=k, dtype="float64")
            paths.append(_save(out, stem, "fcsparser", k, frame.to_numpy()))
    except Exception as exc:  # a peer failing is a result, recorded
        return {"ok": bool(paths), "datasets": paths, "how": "parse", "error": _why(exc)}
    return {"ok": True, "datasets": paths, "how": "parse", "error": ""}


def read_flowcal(path, out, stem):
    import FlowCal

    try:
        data = FlowCal.io.FCSData(path)
    except Exception as exc:  # a peer failing is a result, recorded
        return {"ok": False, "datasets": [], "how": "FCSData", "error": _why(exc)}
    return {
        "ok": True,
        "datasets": [_save(out, stem, "flowcal", 0, np.asarray(data))],
        "how": "FCSData (first dataset only)",
        "error": "",
    }


def main():
    out = sys.argv[1]
    report = {}
    for k, spec in enumerate(sys.argv[2:]):
        path, n = spec.rsplit("::", 1)
        stem = f"f{k}"
        report[path] = {
            **read_flowio(path, out, stem),
            "fcsparser": read_fcsparser(path, out, stem, int(n)),
            "flowcal": read_flowcal(path, out, stem),
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
