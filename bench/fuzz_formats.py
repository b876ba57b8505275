"""Fuzz every registered export reader with mutated copies of its seed files.

Seeds are the corpus and example files each reader claims, plus generated ones
(tests/format_seeds.py); mutations are byte flips, truncation, token insertion, line and
delimiter damage, number and decimal changes, line-end and encoding changes, and for xlsx
zip- and XML-level damage and inflation bombs (tests/format_mutations.py). Every case runs
``acquisition.formats.read_any`` in a worker process with an address-space cap and a hard
wall-time limit, so a hang or a memory blow-up is counted, not suffered. Crashes are
shrunk (chunks deleted while the same exception type and location persist) and saved
under ``bench/fuzz_out/<reader>/``; the run fails if there is any crash, hang or oom.

    python -m bench.fuzz_formats [--cases 10000] [--reader NAME] [--seed 1] [--jobs 2]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import re
import selectors
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bench.fuzz_worker import case_rng
from tests.format_mutations import choose_operators, mutate
from tests.format_seeds import Seed, seeds_by_reader

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "fuzz_out"
KINDS = ("ok", "incomplete", "format_error", "crash", "hang", "oom")
BAD = ("crash", "hang", "oom", "harness_error")  # harness_error: a mutation operator failed
SHRINK_SECONDS = 60.0


@dataclass
class Case:
    reader: str
    seed_index: int
    number: int
    operators: list[str]
    rng_seed: str


@dataclass
class Shrink:
    """A crashing input to minimise before it is saved."""

    case: Case
    reply: dict[str, Any]
    data: bytes


@dataclass
class ReaderTally:
    seeds: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    signatures: Counter[str] = field(default_factory=Counter)
    slowest_s: float = 0.0
    peak_rss_mib: float = 0.0
    peak_case: str = ""
    seconds_by_seed: dict[int, float] = field(default_factory=dict)
    cases_by_seed: Counter[int] = field(default_factory=Counter)


@dataclass
class Worker:
    """One sandboxed worker process and the task it is running."""

    number: int
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    buffer: bytes = b""
    task: dict[str, Any] | None = None
    started: float = 0.0
    deadline: float = 0.0


class Pool:
    """Worker processes, one task each at a time; killed and replaced on a hang or a death."""

    def __init__(self, jobs: int, seeds: dict[str, list[Seed]], memory_mib: int) -> None:
        self.seeds_message = _line(
            {
                "op": "seeds",
                "memory_mib": memory_mib,
                "seeds": {
                    reader: [{"name": s.name, "data": _b64(s.data)} for s in items]
                    for reader, items in seeds.items()
                },
            }
        )
        OUT.mkdir(parents=True, exist_ok=True)
        self.selector = selectors.DefaultSelector()
        self.workers = [self._spawn(n) for n in range(jobs)]

    def _spawn(self, number: int) -> Worker:
        env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
        log = (OUT / f"worker-{number}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.fuzz_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            cwd=ROOT,
            env=env,
        )
        assert proc.stdin is not None and proc.stdout is not None  # Popen(PIPE) made them
        proc.stdin.write(self.seeds_message)
        proc.stdin.flush()
        worker = Worker(number, proc, log)
        self.selector.register(proc.stdout, selectors.EVENT_READ, worker)
        return worker

    def _replace(self, worker: Worker) -> None:
        stdout = worker.proc.stdout
        if stdout is not None:
            self.selector.unregister(stdout)
        if worker.proc.poll() is None:
            worker.proc.kill()
        worker.proc.wait()
        worker.log.close()
        for pipe in (worker.proc.stdin, stdout):
            if pipe is not None:
                pipe.close()
        self.workers[self.workers.index(worker)] = self._spawn(worker.number)

    def idle(self) -> list[Worker]:
        return [w for w in self.workers if w.task is None]

    def busy(self) -> bool:
        return any(w.task is not None for w in self.workers)

    def submit(self, worker: Worker, task: dict[str, Any], seconds: float) -> None:
        assert worker.proc.stdin is not None  # Popen(PIPE) made it
        worker.task = task
        worker.started = time.monotonic()
        worker.deadline = worker.started + seconds
        worker.proc.stdin.write(_line(task))
        worker.proc.stdin.flush()

    def collect(self) -> list[tuple[dict[str, Any], dict[str, Any], float]]:
        """Finished tasks as (task, reply, seconds); hangs and deaths get a made-up reply."""
        done: list[tuple[dict[str, Any], dict[str, Any], float]] = []
        now = time.monotonic()
        wait = min((w.deadline for w in self.workers if w.task is not None), default=now + 1)
        for key, _ in self.selector.select(timeout=max(0.0, wait - now)):
            worker: Worker = key.data
            chunk = os.read(key.fd, 1 << 20)
            if not chunk:
                if worker.task is None:  # gone between tasks: nothing was lost
                    self._replace(worker)
                else:
                    done.append(self._died(worker))
                continue
            worker.buffer += chunk
            while b"\n" in worker.buffer and worker.task is not None:
                line, worker.buffer = worker.buffer.split(b"\n", 1)
                reply = json.loads(line)
                done.append((worker.task, reply, time.monotonic() - worker.started))
                worker.task = None
                if reply.get("leaving"):  # after a MemoryError or its share of cases
                    self._replace(worker)
        now = time.monotonic()
        for worker in list(self.workers):
            if worker.task is not None and now > worker.deadline:
                task = worker.task
                self._replace(worker)
                done.append((task, {"kind": "hang", "error": "timeout"}, now - worker.started))
        return done

    def _died(self, worker: Worker) -> tuple[dict[str, Any], dict[str, Any], float]:
        task = worker.task or {}  # collect() calls this only for a worker with a task
        code = worker.proc.wait()
        seconds = time.monotonic() - worker.started
        self._replace(worker)
        if code == -signal.SIGKILL:
            return task, {"kind": "oom", "error": "killed (SIGKILL)"}, seconds
        name = signal.Signals(-code).name if code < 0 else f"exit {code}"
        return task, {"kind": "crash", "error": f"worker died: {name}", "where": "?"}, seconds

    def close(self) -> None:
        for worker in self.workers:
            if worker.proc.stdin is not None:
                worker.proc.stdin.close()
            worker.proc.wait(timeout=30)
            worker.log.close()
            if worker.proc.stdout is not None:
                worker.proc.stdout.close()
        self.selector.close()


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode() + b"\n"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def plan(seeds: dict[str, list[Seed]], cases: int, seed: int) -> list[Case]:
    """Every reader's cases: seeds in turn, operators chosen by a per-case random stream."""
    out = []
    for reader, items in seeds.items():
        for n in range(cases if items else 0):
            k = n % len(items)
            rng_seed = f"{seed}:{reader}:{n}"
            ops = choose_operators(items[k].data, random.Random(rng_seed + ":ops"))
            out.append(Case(reader, k, n, ops, rng_seed))
    return out


def _task(case: Case) -> dict[str, Any]:
    return {
        "op": "case",
        "reader": case.reader,
        "seed": case.seed_index,
        "operators": case.operators,
        "rng": case.rng_seed,
    }


def _save(case: Case, seeds: dict[str, list[Seed]], reply: dict[str, Any], data: bytes) -> Path:
    """The reproducer and a note saying where it came from; one file per signature."""
    seed = seeds[case.reader][case.seed_index]
    where = re.sub(r"[^A-Za-z0-9]+", "_", str(reply.get("where", "")))[-60:]
    folder = OUT / case.reader
    folder.mkdir(parents=True, exist_ok=True)
    stem = (
        f"{reply['kind']}-{reply.get('error', '')}-{where}-{hashlib.sha256(data).hexdigest()[:8]}"
    )
    path = folder / (re.sub(r"[^A-Za-z0-9_.-]+", "_", stem) + ".bin")
    path.write_bytes(data)
    note = {
        "seed": seed.name,
        "operators": case.operators,
        "rng": case.rng_seed,
        "outcome": {k: v for k, v in reply.items() if k in ("kind", "error", "where", "message")},
        "bytes": len(data),
    }
    path.with_suffix(".json").write_text(json.dumps(note, indent=2) + "\n")
    return path


def run(args: argparse.Namespace) -> int:
    start = time.monotonic()
    seeds = seeds_by_reader()
    if args.reader:
        if args.reader not in seeds:
            raise SystemExit(f"no reader named {args.reader!r} (readers: {', '.join(seeds)})")
        seeds = {args.reader: seeds[args.reader]}
    cases = plan(seeds, args.cases, args.seed)
    tallies = {reader: ReaderTally(seeds=len(items)) for reader, items in seeds.items()}
    print(
        f"{len(cases)} cases over {len(seeds)} readers, {args.jobs} workers, "
        f"{args.timeout:.0f} s and {args.memory_mib} MiB per case"
    )
    pool = Pool(args.jobs, seeds, args.memory_mib)
    queue: list[Case | Shrink] = list(reversed(cases))
    running: dict[int, Case | Shrink] = {}
    saved: dict[tuple[str, str], Path] = {}
    next_id = 0
    try:
        while queue or pool.busy():
            for worker in pool.idle()[: len(queue)]:
                item = queue.pop()
                next_id += 1
                running[next_id] = item
                if isinstance(item, Case):
                    pool.submit(worker, {"id": next_id, **_task(item)}, args.timeout)
                else:
                    request = {"id": next_id, "op": "shrink", "reader": item.case.reader,
                               "seed": item.case.seed_index, "data": _b64(item.data),
                               "signature": [item.reply["error"], item.reply["where"]],
                               "seconds": SHRINK_SECONDS}  # fmt: skip
                    pool.submit(worker, request, SHRINK_SECONDS + 30)
            for task, reply, seconds in pool.collect():
                item = running.pop(int(task["id"]))
                if isinstance(item, Shrink):  # a hung or dead shrink keeps the original input
                    data = base64.b64decode(reply["data"]) if "data" in reply else item.data
                    sig = _signature(item.reply)
                    saved[(item.case.reader, sig)] = _save(item.case, seeds, item.reply, data)
                    continue
                tally = tallies[item.reader]
                tally.outcomes[reply["kind"]] += 1
                tally.slowest_s = max(tally.slowest_s, seconds)
                by_seed = tally.seconds_by_seed
                by_seed[item.seed_index] = by_seed.get(item.seed_index, 0.0) + seconds
                tally.cases_by_seed[item.seed_index] += 1
                rss = float(reply.get("rss_mib", 0.0))
                if rss > tally.peak_rss_mib:
                    seed = seeds[item.reader][item.seed_index].name
                    tally.peak_rss_mib, tally.peak_case = rss, f"{seed} {item.operators}"
                if reply["kind"] not in BAD:
                    continue
                sig = _signature(reply)
                tally.signatures[sig] += 1
                if tally.signatures[sig] > 1:
                    continue
                if "data" in reply:
                    queue.append(Shrink(item, reply, base64.b64decode(reply["data"])))
                else:
                    saved[(item.reader, sig)] = _save(item, seeds, reply, _regenerate(item, seeds))
            done = sum(sum(t.outcomes.values()) for t in tallies.values())
            if args.progress and done and done % 1000 == 0:
                print(f"  {done}/{len(cases)} cases, {time.monotonic() - start:.0f} s", flush=True)
    finally:
        pool.close()
    _report(tallies, saved, time.monotonic() - start, seeds)
    bad = sum(t.outcomes[k] for t in tallies.values() for k in BAD)
    return 1 if bad else 0


def _signature(reply: dict[str, Any]) -> str:
    return f"{reply['kind']}: {reply.get('error', '')} at {reply.get('where', '?')}"


def _regenerate(case: Case, seeds: dict[str, list[Seed]]) -> bytes:
    """The input of a case again (hangs and deaths send nothing back); b"" if that fails."""
    seed = seeds[case.reader][case.seed_index].data
    try:
        return mutate(seed, case.operators, case_rng(case.rng_seed))
    except Exception:  # the harness_error the worker reported: nothing to save
        return b""


def _report(
    tallies: dict[str, ReaderTally],
    saved: dict[tuple[str, str], Path],
    elapsed: float,
    seeds: dict[str, list[Seed]],
) -> None:
    columns = (*KINDS, "harness_error")
    print()
    print(
        f"{'reader':<14}{'seeds':>6}{'cases':>8}"
        + "".join(f"{k:>14}" for k in columns)
        + f"{'slowest s':>11}{'read +MiB':>10}"
    )
    for reader, tally in tallies.items():
        total = sum(tally.outcomes.values())
        cells = "".join(f"{tally.outcomes[k]:>14}" for k in columns)
        print(
            f"{reader:<14}{tally.seeds:>6}{total:>8}{cells}"
            f"{tally.slowest_s:>11.2f}{tally.peak_rss_mib:>10.0f}"
        )
    print("\nlargest growth of a worker's resident set during one read:")
    for reader, tally in tallies.items():
        print(f"  {reader}: {tally.peak_rss_mib:.0f} MiB, {tally.peak_case}")
    print(f"\n{elapsed:.0f} s in all; slowest seeds (mean seconds per case):")
    for reader, tally in tallies.items():
        means = {k: tally.seconds_by_seed[k] / n for k, n in tally.cases_by_seed.items()}
        slow = sorted(means, key=means.__getitem__, reverse=True)[:3]
        listed = ", ".join(f"{seeds[reader][k].name} {means[k]:.3f}" for k in slow)
        print(f"  {reader}: {listed}")
    for reader, tally in tallies.items():
        for sig, count in tally.signatures.most_common():
            where = saved.get((reader, sig))
            print(f"  {reader}: {count} x {sig}" + (f"\n      -> {where}" if where else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="cases per reader")
    parser.add_argument("--reader", help="only this reader")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per case")
    parser.add_argument("--memory-mib", type=int, default=1024, help="address space per worker")
    parser.add_argument("--progress", action="store_true")
    raise SystemExit(run(parser.parse_args()))


if __name__ == "__main__":
    main()
