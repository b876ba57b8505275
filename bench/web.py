"""Dashboard latency with 10,000 stored results: overview and plate page, p50/p95/p99.

A store is filled with 10,000 plate results (real analyses of simulated plates, copied
with new ids so the tables have the size of months of use, flags and alerts included),
the dashboard is served by uvicorn in a thread as the daemon runs it, and a load
generator on loopback (N client threads with keep-alive connections, in another process)
requests the pages. Goal (issue #15): p95 ≤ 100 ms for the overview and the plate page.

    python -m bench.web [--results 10000] [--requests 400] [--clients 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from acquisition.store import alerts, captures, flags, insert_row, jobs, open_store, results
from config.schema import Settings
from monitoring.metrics import metrics_text
from monitoring.web.app import WebContext
from monitoring.web.security import access_for
from monitoring.web.server import WebServer, wait_until_serving

ROOT = Path(__file__).resolve().parent.parent

CLIENT = r"""
import http.client, json, sys, threading, time
host, port, n, clients = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
paths = json.loads(sys.argv[5])
out = {p: [] for p in paths}
lock = threading.Lock()
def worker(k):
    conn = http.client.HTTPConnection(host, port, timeout=30)
    for i in range(n // clients):
        path = paths[(i + k) % len(paths)]
        t = time.perf_counter()
        conn.request("GET", path)
        r = conn.getresponse(); r.read()
        dt = time.perf_counter() - t
        assert r.status == 200, (path, r.status)
        with lock:
            out[path].append(dt)
threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(out))
"""


def fill(store_url: str, state: Path, n: int) -> int:
    """n results (with their capture, job, flags and alerts); returns a result id to view."""
    from acquisition.pipeline import analyze_file
    from config import load_config

    settings = load_config()
    analysed = []
    for name in ("mtt_plate_clean.txt", "mtt_plate_edge_effect.txt", "mtt_plate_failed.txt"):
        (item,) = analyze_file(
            ROOT / "examples" / name, settings, layout=ROOT / "config" / "layouts" / "mtt-96.toml"
        )
        analysed.append((name, item.result.to_dict(name) | {"layout": "mtt-96.toml"}, item.result))
    store = open_store(store_url)
    now = time.time()
    with store.begin() as conn:
        for i in range(n):
            name, body, result = analysed[i % 3]
            capture_id = insert_row(
                conn, captures, instrument=f"reader-{i % 4}", source_path=f"/exports/{i}_{name}",
                file_name=f"{i}_{name}", sha256=f"{i:064d}", size=1000, mtime_ns=0,
                archive_path=str(state / "archive" / f"{i}"), kind="plate", captured_at="2026-11-01T00:00:00.000+00:00",
            )  # fmt: skip
            job_id = insert_row(
                conn, jobs, capture_id=capture_id, purpose="analyze", state="done", attempts=1,
                next_attempt_at=now, created_at=now - 1, updated_at=now,
            )  # fmt: skip
            rid = insert_row(
                conn, results, capture_id=capture_id, job_id=job_id, plate=result.plate_id, kind="plate",
                verdict=result.verdict, analyzed_at="2026-11-01T00:00:01.000+00:00", body=json.dumps(body),
            )  # fmt: skip
            for f in result.flags:
                conn.execute(
                    flags.insert().values(
                        result_id=rid,
                        code=f.code,
                        severity=f.severity,
                        message=f.message,
                        wells="[]",
                    )
                )
                if f.severity != "info" and i % 10 == 0:
                    insert_row(
                        conn, alerts, plate_key=f"reader-{i % 4}:{i}", code=f.code, severity=f.severity,
                        kind="finding", title=f"{i}_{name}", body=f.message, capture_id=capture_id, created_at=now,
                    )  # fmt: skip
    store.close()
    return n - 1  # a failed plate near the top


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        url = f"sqlite:///{state / 'p.db'}"
        t = time.perf_counter()
        plate_id = fill(url, state, args.results)
        print(f"filled {args.results} results in {time.perf_counter() - t:.1f} s")
        settings = Settings.model_validate(
            {"service": {"state_dir": str(state)}, "store": {"url": url}}
        )
        store = open_store(url)
        ctx = WebContext(
            store,
            settings,
            access_for("127.0.0.1:0", "", read_only=False),
            lambda: None,
            metrics_text(store, lambda: None),
        )
        server = WebServer(ctx, "127.0.0.1:0")
        base = server.start()
        assert wait_until_serving(base)
        host, port = base.removeprefix("http://").split(":")
        paths = ["/", f"/plates/{plate_id}", "/api/overview", "/fragment/overview", "/metrics"]
        subprocess.run(
            [sys.executable, "-c", CLIENT, host, port, "40", "2", json.dumps(paths)],
            check=True,
            capture_output=True,
        )  # warm
        out = subprocess.run(
            [sys.executable, "-c", CLIENT, host, port, str(args.requests), str(args.clients), json.dumps(paths)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        timings = json.loads(out.stdout)
        server.stop()
        store.close()
    print(f"{'page':<22} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  goal")
    for path, values in timings.items():
        values.sort()

        def p(q: float, v: list[float] = values) -> float:
            return 1000 * v[min(len(v) - 1, int(q * len(v)))]

        goal = (
            " ≤ 100 ms p95: " + ("met" if p(0.95) <= 100 else "MISSED")
            if path in ("/", paths[1])
            else ""
        )
        print(
            f"{path:<22} {len(values):>5} {statistics.median(values) * 1000:>8.1f} {p(0.95):>8.1f} {p(0.99):>8.1f} {goal}"
        )


if __name__ == "__main__":
    main()
