"""Fuzz the FCS reader: truncated, bit-flipped and lying-header files (hypothesis).

Every case is a seed file (simulated variants of every format the reader takes, and the
small files of the corpus) with up to three mutations drawn by hypothesis: truncation, bit
flips (anywhere, or in HEADER + TEXT), a HEADER offset field rewritten, a keyword's value
replaced (offsets kept or shifted), bytes deleted or inserted. Each case runs in a worker
process under a memory cap (``RLIMIT_AS``) and a hard time limit; the outcome is one of
ok / incomplete / FormatError / crash (any other exception, a message that is not one
line, NaN/inf in a message, or the worker dying) / hang. Files that read are also put
through the ``parse --json`` record and, for the simulated Annexin V/PI seeds, the whole
analysis. Crashing inputs are minimised and saved under ``bench/fuzz_out/``.

    python -m bench.fuzz_fcs [--cases 10000] [--workers 1] [--seed 0] [--memory-mb 1536]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import re
import resource
import time
import traceback
import warnings
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent / "fuzz_out"
CORPUS = ROOT.parent / "shared" / "corpus" / "fcs"
SMALL_CORPUS = 160_000  # bytes: corpus files up to this size are seeds
TIME_LIMIT_S = 10.0

Mutation = tuple[Any, ...]
Case = tuple[int, tuple[Mutation, ...]]

KEYS = [
    "$TOT",
    "$PAR",
    "$P1B",
    "$P2B",
    "$P3B",
    "$P1R",
    "$P2R",
    "$P1E",
    "$P2E",
    "$P1N",
    "$BEGINDATA",
    "$ENDDATA",
    "$NEXTDATA",
    "$DATATYPE",
    "$BYTEORD",
    "$MODE",
    "$SPILLOVER",
    "SPILL",
    "$BEGINSTEXT",
    "$ENDSTEXT",
    "$TIMESTEP",
    "$P1G",
    "$DFC1TO3",
    "$COMP",
]
NASTY = [
    "0",
    "-1",
    "1",
    "2",
    "7",
    "8",
    "24",
    "63",
    "64",
    "65",
    "4294967296",
    "99999999999999999999",
    "1e308",
    "1e-308",
    "nan",
    "inf",
    "-inf",
    "",
    " ",
    "*",
    "1,2,3,4",
    "4,3,2,1",
    "3,4,1,2",
    "1,2",
    "A",
    "F",
    "D",
    "I",
    "L",
    "C",
    "x",
    "4,0",
    "0,0",
    "9,9",
    "-4,1",
    "2,a,b,1,0,0,1",
    "2,BL1-A,BL3-A,1,0.1,0.02,1",
    "2,BL1-A,BL1-A,1,1,1,1",
    "2,BL1-A,BL3-A,0,0,0,0",
    "3,1,2",
    "1e400,2",
    "0x10",
    "١٢",
    "\x00",
    "58",
    "256",
    "1000000000",
]


# --- seeds -------------------------------------------------------------------------------


def make_seeds() -> tuple[list[bytes], list[str], set[int]]:
    """(seed bytes, names, indices of the Annexin V/PI seeds that the analysis also runs on)."""
    from tests.fcs_sim import SampleSpec, fcs_bytes, simulate
    from tests.fcs_writer import Param, build_dataset, build_file

    seeds: list[bytes] = []
    names: list[str] = []
    analysable: set[int] = set()
    sim = simulate(SampleSpec(events=400, seed=1), {"annexin", "pi"})
    spill = np.array([[1.0, 0.15], [0.02, 1.0]])
    for variant in ("fcs3.1-float", "fcs3.0-float-be", "fcs3.0-int", "fcs2.0-log"):
        analysable.add(len(seeds))
        seeds.append(fcs_bytes(sim, variant=variant, spillover=spill))  # type: ignore[arg-type]
        names.append(f"sim {variant}")
    rng = np.random.default_rng(2)
    data = rng.integers(0, 4096, size=(60, 4)).astype(np.float64)
    mixed = [
        Param("A", None, 8, 256),
        Param("B", None, 16, 4096),
        Param("C", None, 24, 2**20),
        Param("D", None, 32, 2**20),
    ]
    seeds.append(build_dataset(data, mixed, version="FCS3.0", datatype="I", order="big"))
    names.append("mixed 8/16/24/32 big-endian")
    seeds.append(
        build_dataset(
            data,
            [Param(f"P{k}", None, 10, 1024) for k in range(4)],
            version="FCS2.0",
            datatype="I",
            delimiter="|",
        )
    )
    names.append("10-bit words, | delimiter")
    seeds.append(
        build_dataset(
            data,
            [Param(f"P{k}", None, 64, 2**40) for k in range(4)],
            version="FCS3.1",
            datatype="D",
            blank_header_data=True,
        )
    )
    names.append("doubles, blank HEADER offsets")
    seeds.append(
        build_dataset(
            data, [Param(f"P{k}", None, 6, 1e6) for k in range(4)], version="FCS3.0", datatype="A"
        )
    )
    names.append("ASCII fixed width")
    seeds.append(
        build_file(
            [
                {
                    "data": data,
                    "params": [Param(f"P{k}", None, 16, 4096) for k in range(4)],
                    "version": "FCS2.0",
                    "datatype": "I",
                },
                {
                    "data": data,
                    "params": [Param(f"P{k}", None, 32, 4096) for k in range(4)],
                    "version": "FCS3.0",
                    "datatype": "I",
                    "enddata_off_by_one": True,
                },
            ]
        )
    )
    names.append("two datasets ($NEXTDATA)")
    for path in sorted(CORPUS.rglob("*")):
        if (
            path.is_file()
            and path.stat().st_size <= SMALL_CORPUS
            and path.read_bytes()[:3] == b"FCS"
        ):
            seeds.append(path.read_bytes())
            names.append(path.name)
    return seeds, names, analysable


def _text_span(raw: bytes) -> tuple[int, int]:
    try:
        return int(raw[10:18]), int(raw[18:26])
    except ValueError:
        return 58, min(len(raw) - 1, 4096)


def mutate(raw: bytes, mutations: tuple[Mutation, ...]) -> bytes:
    data = bytearray(raw)
    for m in mutations:
        kind = m[0]
        if not data:
            break
        if kind == "truncate":
            data = data[: int(m[1] * len(data))]
        elif kind == "flip":
            _, where, spots = m
            _, text_end = _text_span(bytes(data))
            span = len(data) if where == "any" else min(len(data), text_end + 64)
            for frac, bit in spots:
                data[int(frac * (span - 1))] ^= 1 << bit
        elif kind == "header":
            _, field, value = m
            start = 10 + 8 * field
            data[start : start + 8] = value.encode("latin-1")[:8].rjust(8)
        elif kind == "keyword":
            _, key, value, keep_length = m
            data = bytearray(_replace_keyword(bytes(data), key, value, keep_length))
        elif kind == "delete":
            _, frac, length = m
            at = int(frac * len(data))
            del data[at : at + length]
        elif kind == "insert":
            _, frac, blob = m
            at = int(frac * len(data))
            data[at:at] = blob
    return bytes(data)


def _replace_keyword(raw: bytes, key: str, value: str, keep_length: bool) -> bytes:
    start, end = _text_span(raw)
    if not (0 < start < end < len(raw)):
        return raw
    d = raw[start : start + 1]
    pattern = (
        re.escape(d + key.encode()) + re.escape(d) + b"([^" + re.escape(d) + b"]*)" + re.escape(d)
    )
    match = re.search(pattern, raw[start : end + 1])
    new = value.encode("utf-8")
    if match is None:  # add it at the end of TEXT
        return raw[: end + 1] + key.encode() + d + new + d + raw[end + 1 :]
    a, b = start + match.start(1), start + match.end(1)
    if keep_length:
        width = b - a
        new = new[:width].rjust(width) if len(new) <= width else new[:width]
    return raw[:a] + new + raw[b:]


# --- the worker ---------------------------------------------------------------------------


def _worker(conn: Connection, memory_mb: int) -> None:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from acquisition.cytometry import analyze_fcs_batch
    from acquisition.formats.fcs import fcs_record, read_fcs_bytes
    from errors import FormatError, IncompleteFileError, PlatewatchError

    seeds, _, analysable = make_seeds()
    warnings.simplefilter("error")  # a numpy RuntimeWarning on bad data is a bug to fix
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        seed, mutations = message
        raw = mutate(seeds[seed], mutations) if isinstance(mutations, tuple) else mutations
        source = Path("fuzz.fcs")
        try:
            cf = read_fcs_bytes(raw, source)
            json.dumps(fcs_record(cf, path="fuzz.fcs"), allow_nan=False)
            if seed in analysable and cf.primary.n_events:
                channels = {"annexin": _ch(cf, 4), "pi": _ch(cf, 5)}
                try:
                    batch = analyze_fcs_batch([source], files={source: cf}, channels=channels)
                    json.dumps(batch.to_dicts(), allow_nan=False)
                    for result in batch.results:
                        for flag in result.flags:
                            _check_message(flag.message)
                except PlatewatchError as exc:
                    _check_message(str(exc))
            conn.send(("ok", ""))
        except IncompleteFileError as exc:
            conn.send(_checked("incomplete", exc))
        except FormatError as exc:
            conn.send(_checked("format", exc))
        except Exception as exc:  # finding these is the fuzzer's job: recorded as crashes
            conn.send(("crash", _signature(exc)))


def _ch(cf: Any, k: int) -> str:
    params = cf.primary.parameters
    return str(params[k].name) if len(params) > k else "missing"


def _check_message(text: str) -> None:
    words = re.findall(r"[a-z]+", text.lower())
    if "\n" in text or "nan" in words or "inf" in words:
        raise ValueError(f"bad message: {text[:200]!r}")


def _checked(outcome: str, exc: Exception) -> tuple[str, str]:
    try:
        _check_message(str(exc))
    except ValueError as bad:
        return "crash", f"{bad}"
    return outcome, ""


def _signature(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = frames[-1] if frames else None
    place = f"{Path(where.filename).name}:{where.lineno}" if where else "?"
    return f"{type(exc).__name__} at {place}: {str(exc)[:160]}\n{''.join(traceback.format_exception(exc))[-3000:]}"


class Pool:
    """Worker processes with a memory cap; a case that takes too long kills its worker."""

    def __init__(self, n: int, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        self.ctx = mp.get_context("fork")
        self.workers = [self._start() for _ in range(n)]

    def _start(self) -> tuple[Any, Connection]:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker, args=(child, self.memory_mb), daemon=True)
        proc.start()
        child.close()
        return proc, parent

    def run(self, k: int, case: Any) -> tuple[str, str]:
        proc, conn = self.workers[k]
        conn.send(case)
        if conn.poll(TIME_LIMIT_S):
            try:
                result: tuple[str, str] = conn.recv()
                return result
            except EOFError:
                pass
            self._replace(k)
            return "crash", f"worker died (exit code {proc.exitcode})"
        self._replace(k)
        return "hang", f"no answer within {TIME_LIMIT_S} s"

    def _replace(self, k: int) -> None:
        proc, conn = self.workers[k]
        proc.kill()
        proc.join(5)
        conn.close()
        self.workers[k] = self._start()

    def close(self) -> None:
        for proc, conn in self.workers:
            try:
                conn.send(None)
            except OSError:
                pass
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)


# --- generating cases with hypothesis -----------------------------------------------------


def mutations_strategy() -> st.SearchStrategy[tuple[Mutation, ...]]:
    frac = st.floats(0, 1, allow_nan=False)
    one = st.one_of(
        st.tuples(st.just("truncate"), frac),
        st.tuples(
            st.just("flip"),
            st.sampled_from(["any", "head"]),
            st.lists(st.tuples(frac, st.integers(0, 7)), min_size=1, max_size=8),
        ),
        st.tuples(
            st.just("header"),
            st.integers(0, 5),
            st.one_of(
                st.sampled_from(["", "0", "99999999", "-1", "abcdefgh", "       1"]),
                st.integers(0, 99_999_999).map(str),
            ),
        ),
        st.tuples(
            st.just("keyword"),
            st.sampled_from(KEYS),
            st.one_of(st.sampled_from(NASTY), st.integers(-10, 10**12).map(str)),
            st.booleans(),
        ),
        st.tuples(st.just("delete"), frac, st.integers(1, 64)),
        st.tuples(st.just("insert"), frac, st.binary(min_size=1, max_size=16)),
    )
    return st.lists(one, min_size=1, max_size=3).map(tuple)


def generate(n_seeds: int, cases: int, random_seed: int) -> list[Case]:
    """The cases hypothesis draws (collected first, so workers can run them)."""
    found: list[Case] = []

    @hypothesis_seed(random_seed)
    @settings(
        max_examples=cases,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.integers(0, n_seeds - 1), mutations_strategy())
    def collect(index: int, mutations: tuple[Mutation, ...]) -> None:
        found.append((index, mutations))

    collect()
    return found


# --- minimising crashers ------------------------------------------------------------------


def minimise(pool: Pool, raw: bytes, seed: int, signature: str) -> bytes:
    """Smaller inputs that crash the same way: cut the tail, then remove chunks."""
    key = signature.splitlines()[0].split(":")[0:2]

    def same(candidate: bytes) -> bool:
        outcome, sig = pool.run(0, (seed, candidate))
        return outcome == "crash" and sig.splitlines()[0].split(":")[0:2] == key

    best = raw
    chunk = max(1, len(best) // 2)
    while chunk >= 1 and len(best) > 1:
        changed = False
        for start in range(0, len(best), chunk):
            candidate = best[:start] + best[start + chunk :]
            if candidate and same(candidate):
                best, changed = candidate, True
                break
        if not changed:
            chunk //= 2
        if len(best) <= 64 and chunk < 2:
            break
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory-mb", type=int, default=1536)
    args = parser.parse_args()

    seeds, names, _ = make_seeds()
    start = time.perf_counter()
    cases = generate(len(seeds), args.cases, args.seed)
    generated = time.perf_counter() - start
    pool = Pool(max(1, args.workers), args.memory_mb)
    counts: Counter[str] = Counter()
    crashes: dict[str, tuple[int, tuple[Mutation, ...], str]] = {}
    start = time.perf_counter()
    try:
        pending = list(cases)
        k = 0
        while pending:
            index, mutations = pending.pop()
            outcome, detail = pool.run(k % len(pool.workers), (index, mutations))
            k += 1
            counts[outcome] += 1
            if outcome in ("crash", "hang"):
                sig = detail.splitlines()[0] if detail else outcome
                crashes.setdefault(sig, (index, mutations, detail))
        elapsed = time.perf_counter() - start
        OUT.mkdir(exist_ok=True)
        for sig, (index, mutations, detail) in crashes.items():
            raw = mutate(seeds[index], mutations)
            small = minimise(pool, raw, index, detail)
            name = hashlib.sha256(sig.encode()).hexdigest()[:12]
            (OUT / f"{name}.fcs").write_bytes(small)
            (OUT / f"{name}.txt").write_text(
                f"seed: {names[index]}\nmutations: {mutations!r}\nminimised: {len(raw)} → {len(small)} bytes\n\n{detail}\n",
                encoding="utf-8",
            )
    finally:
        pool.close()
    total = sum(counts.values())
    print(
        f"FCS fuzz: {total} cases over {len(seeds)} seeds ({len(seeds) - 9} corpus files ≤ "
        f"{SMALL_CORPUS // 1000} kB), hypothesis generation {generated:.1f} s, run {elapsed:.1f} s "
        f"({args.workers} worker(s), memory cap {args.memory_mb} MiB, time limit {TIME_LIMIT_S:g} s)"
    )
    for outcome in ("ok", "incomplete", "format", "crash", "hang"):
        print(f"  {outcome:<11} {counts.get(outcome, 0):6d}")
    if crashes:
        print(f"distinct crash/hang signatures: {len(crashes)} (reproducers in {OUT})")
        for sig in crashes:
            print(f"  {sig[:200]}")


if __name__ == "__main__":
    main()
