"""SIGKILL torture, the long version: 200 kills at random instants while exports stream in.

Afterwards every file must have exactly one capture and one result, no job may be left
queued or running, and SQLite's integrity check must pass. The test suite runs the same
code with 20 kills (tests/test_daemon.py).

    python -m bench.torture [--kills 200] [--seed 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tests.daemon_rig import torture

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = (ROOT / "examples" / "mtt_plate_clean.txt").read_bytes()


def plate(n: int) -> bytes:
    return EXAMPLE.replace(b"Plate Number\tPlate 1", f"Plate Number\tPlate {n}".encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        final = torture(Path(tmp), args.kills, args.seed, plate)
    ok = (
        final["jobs"] == {"done": 2 * final["files"]}
        and final["captures"] == final["files"] == final["results"]
        and final["max_results_per_capture"] == 1
        and final["integrity_ok"]
        and final["exit_code"] == 0
    )
    print(
        f"{final['kills']} SIGKILLs over {time.monotonic() - start:.0f} s, {final['files']} exports written"
    )
    print(
        f"captures {final['captures']}, results {final['results']}, max results per capture "
        f"{final['max_results_per_capture']}, jobs {final['jobs']}, integrity_check "
        f"{'ok' if final['integrity_ok'] else 'FAILED'}, final SIGTERM exit {final['exit_code']}"
    )
    print("verdict: " + ("nothing lost, nothing stored twice" if ok else "FAILED"))
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
