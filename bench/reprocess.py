"""`platewatch reprocess` of an archive on one and on two cores.

Captures ``--plates`` simulated Gen5 plates into a fresh state directory (SQLite WAL),
then times whole `platewatch reprocess --workers N` runs (process start to exit, queueing
included) for N = 1 and 2, without and with the PNG + HTML reports, each on its own
fresh archive. Goal (issue 14): both cores used — 2 workers well above one.

    python -m bench.reprocess [--plates 1000] [--report-plates 60]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.daemon_rig import archive_of_plates

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plates", type=int, default=1000)
    parser.add_argument(
        "--report-plates", type=int, default=60, help="plates for the runs with reports"
    )
    args = parser.parse_args()
    for reports, plates in (("--no-reports", args.plates), ("--reports", args.report_plates)):
        walls: dict[int, float] = {}
        for workers in (1, 2):
            config = archive_of_plates(Path(tempfile.mkdtemp(prefix="pw-bench-rp-")), plates)
            command = [sys.executable, str(ROOT / "service.py"), "reprocess", "--config"]
            command += [str(config), "--workers", str(workers), reports]
            start = time.perf_counter()
            run = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
            walls[workers] = time.perf_counter() - start
            if run.returncode != 0:
                raise SystemExit(run.stderr)
            print(
                f"{reports:12s} --workers {workers}: {plates} plates in {walls[workers]:.1f} s,"
                f" {plates / walls[workers]:.1f} plates/s  ({run.stdout.strip()})"
            )
        print(f"{reports:12s} 2 workers / 1: {walls[1] / walls[2]:.2f}x")


if __name__ == "__main__":
    main()
