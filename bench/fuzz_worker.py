"""The sandboxed worker of bench/fuzz_formats.py: one JSON task per stdin line, one reply each.

Tasks: ``seeds`` (once, first: the seed files and the address-space cap), ``case``
(mutate a seed, read it, reply the outcome; crashes carry the input), ``shrink`` (delete
chunks of a crashing input while the same exception type and location persist). The
protocol runs on a private copy of stdout; fd 1 is pointed at stderr (the log) so nothing
a library prints can corrupt it. A worker leaves after a MemoryError and after
``RECYCLE_AFTER`` cases; the pool starts a fresh one.
"""

from __future__ import annotations

import base64
import json
import os
import random
import resource
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.format_mutations import mutate
from tests.format_oracle import Outcome, classify, crash

MiB = 1024 * 1024
RECYCLE_AFTER = 1000  # cases per worker process, so one read's peak RSS is not the heap's


def case_rng(rng_seed: str) -> random.Random:
    return random.Random(rng_seed + ":mutate")


def shrink(data: bytes, fails: Callable[[bytes], bool], deadline: float) -> bytes:
    """Delete ever smaller chunks while ``fails`` holds (lines first, then bytes)."""
    lines = data.splitlines(keepends=True)
    if len(lines) > 1:
        kept = _shrink_parts(lines, lambda parts: fails(b"".join(parts)), deadline)
        data = b"".join(kept)
    return bytes(_shrink_parts(list(data), lambda parts: fails(bytes(parts)), deadline))


def _shrink_parts(
    parts: list[Any], fails: Callable[[list[Any]], bool], deadline: float
) -> list[Any]:
    chunk = max(1, len(parts) // 2)
    while time.monotonic() < deadline:
        i, changed = 0, False
        while i < len(parts) and time.monotonic() < deadline:
            candidate = parts[:i] + parts[i + chunk :]
            if candidate and fails(candidate):
                parts, changed = candidate, True
            else:
                i += chunk
        if chunk == 1 and not changed:
            break
        chunk = max(1, chunk // 2) if not changed else chunk
    return parts


def _reset_peak_rss() -> None:
    """Start a new peak-RSS measurement (Linux: writing 5 to clear_refs resets VmHWM)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass  # elsewhere the peak is the worker's lifetime peak: an upper bound


def _rss_mib(field: str) -> float:
    """VmRSS (now) or VmHWM (peak since the last reset) of this process, in MiB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reply(out: Any, message: dict[str, Any]) -> None:
    out.write(json.dumps(message).encode() + b"\n")
    out.flush()


def _as_reply(outcome: Outcome) -> dict[str, Any]:
    return {
        "kind": outcome.kind,
        "error": outcome.error,
        "where": outcome.where,
        "message": outcome.message[:300],
    }


def main() -> None:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    warnings.simplefilter("ignore")  # openpyxl warns about every odd part; not our signal
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    seeds: dict[str, list[tuple[str, bytes]]] = {}
    cases = 0
    for raw in sys.stdin.buffer:
        task = json.loads(raw)
        op = task["op"]
        if op == "seeds":
            seeds = {
                reader: [(s["name"], base64.b64decode(s["data"])) for s in items]
                for reader, items in task["seeds"].items()
            }
            cap = int(task["memory_mib"]) * MiB
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
            continue
        name, seed = seeds[task["reader"]][task["seed"]]
        path = Path(name)
        if op == "case":
            try:
                data = mutate(seed, task["operators"], case_rng(task["rng"]))
            except Exception as exc:  # a bug of the harness, not of a reader: counted apart
                reply = _as_reply(crash(exc))
                reply["kind"] = "harness_error"
            else:
                _reset_peak_rss()
                before = _rss_mib("VmRSS")
                outcome = classify(path, data)
                reply = _as_reply(outcome)
                # what the read added to the resident set (the mutation and earlier cases
                # leave heap behind that a read may reuse, so this is a lower bound)
                reply["rss_mib"] = max(0.0, _rss_mib("VmHWM") - before)
                if outcome.kind == "crash":
                    reply["data"] = base64.b64encode(data).decode()
        else:  # shrink
            signature = tuple(task["signature"])

            def fails(
                candidate: bytes, signature: tuple[str, ...] = signature, path: Path = path
            ) -> bool:
                outcome = classify(path, candidate)
                return outcome.kind == "crash" and (outcome.error, outcome.where) == signature

            data = base64.b64decode(task["data"])
            small = shrink(data, fails, time.monotonic() + float(task["seconds"]))
            reply = {"kind": "shrunk", "data": base64.b64encode(small).decode()}
        reply["id"] = task["id"]
        cases += 1
        # a fresh process next: what a MemoryError or heap growth leaves is not clean
        reply["leaving"] = reply["kind"] == "oom" or cases >= RECYCLE_AFTER
        _reply(out, reply)
        if reply["leaving"]:
            break


if __name__ == "__main__":
    main()
