"""Store and queue contract: one body of tests over SQLite and PostgreSQL (STYLE.md §12)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from acquisition.capture import Capturer
from acquisition.queue import LeaseLost, claim, complete, enqueue, fail, release_leases
from acquisition.store import (
    SCHEMA_VERSION,
    captures,
    insert_row,
    jobs,
    open_store,
    results,
    schema_info,
    utc_now,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mtt_plate_clean.txt"


def _capture(store, n: int) -> int:  # type: ignore[no-untyped-def]
    with store.begin() as conn:
        capture_id = insert_row(
            conn,
            captures,
            instrument="r",
            source_path=f"/x/{n}",
            file_name=f"{n}.txt",
            sha256=f"{n:064d}",
            size=1,
            mtime_ns=1,
            archive_path=f"/a/{n}",
            kind="plate",
            captured_at=utc_now(),
        )
        enqueue(conn, capture_id)
    return capture_id


def _result(conn, job) -> None:  # type: ignore[no-untyped-def]
    insert_row(
        conn,
        results,
        capture_id=job.capture_id,
        job_id=job.id,
        plate="P",
        kind="plate",
        verdict="pass",
        analyzed_at=utc_now(),
        body="{}",
    )


def test_schema_is_versioned_and_reopening_is_idempotent(store_url: str) -> None:
    store = open_store(store_url)
    store.close()
    store = open_store(store_url)
    with store.engine.connect() as conn:
        assert conn.execute(select(schema_info.c.version)).scalars().all() == [SCHEMA_VERSION]
    store.close()


def test_capture_is_idempotent_on_instrument_and_hash(store_url: str, tmp_path: Path) -> None:
    store = open_store(store_url)
    src = tmp_path / "in" / "plate.txt"
    src.parent.mkdir()
    src.write_bytes(EXAMPLE.read_bytes())
    capturer = Capturer(store, tmp_path / "state")
    first = capturer.capture("reader-1", src, "plate")
    again = capturer.capture("reader-1", src, "plate")
    other = capturer.capture("reader-2", src, "plate")
    assert (
        first.outcome == "captured" and again.outcome == "duplicate" and other.outcome == "captured"
    )
    with store.engine.connect() as conn:
        row = (
            conn.execute(select(captures).where(captures.c.id == first.capture_id)).mappings().one()
        )
        assert conn.execute(select(func.count()).select_from(jobs)).scalar() == 2
    assert Path(row["archive_path"]).read_bytes() == src.read_bytes()
    assert src.read_bytes() == EXAMPLE.read_bytes()  # the instrument's file is untouched
    store.close()


def test_each_job_is_claimed_by_exactly_one_of_many_workers(store_url: str) -> None:
    store = open_store(store_url)
    ids = {_capture(store, n) for n in range(60)}
    claimed: list[int] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while (job := claim(store, name, 60)) is not None:
            complete(store, job, lambda conn, job=job: _result(conn, job))
            with lock:
                claimed.append(job.capture_id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(claimed) == sorted(ids)
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(results)).scalar() == 60
        assert conn.execute(select(func.count()).where(jobs.c.state != "done")).scalar() == 0
    store.close()


def test_expired_lease_is_taken_over_and_the_late_worker_stores_nothing(store_url: str) -> None:
    store = open_store(store_url)
    _capture(store, 1)
    slow = claim(store, "slow", lease_seconds=0.05)
    assert slow is not None
    assert claim(store, "fast", 60) is None  # still leased
    time.sleep(0.1)
    fast = claim(store, "fast", 60)
    assert fast is not None and fast.id == slow.id and fast.attempts == 2
    complete(store, fast, lambda conn: _result(conn, fast))
    with pytest.raises(LeaseLost):
        complete(store, slow, lambda conn: _result(conn, slow))
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(results)).scalar() == 1
    store.close()


def test_effects_and_done_commit_together(store_url: str) -> None:
    store = open_store(store_url)
    _capture(store, 1)
    job = claim(store, "w", 60)
    assert job is not None

    def broken(conn) -> None:  # type: ignore[no-untyped-def]
        _result(conn, job)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        complete(store, job, broken)
    with store.engine.connect() as conn:
        assert conn.execute(select(jobs.c.state)).scalar() == "running"
        assert conn.execute(select(func.count()).select_from(results)).scalar() == 0
    store.close()


def test_failures_back_off_then_die_and_run_on_dead(store_url: str) -> None:
    store = open_store(store_url)
    _capture(store, 1)
    job = claim(store, "w", 60)
    assert job is not None
    assert fail(store, job, "flaky", max_attempts=2) == "queued"
    assert claim(store, "w", 60) is None  # backing off
    with store.begin() as conn:
        conn.execute(jobs.update().values(next_attempt_at=0))
    job = claim(store, "w", 60)
    assert job is not None and job.attempts == 2
    seen: list[str] = []
    assert (
        fail(store, job, "flaky again", max_attempts=2, on_dead=lambda conn: seen.append("dead"))
        == "dead"
    )
    assert seen == ["dead"]
    with store.engine.connect() as conn:
        assert conn.execute(select(jobs.c.state, jobs.c.last_error)).one() == (
            "dead",
            "flaky again",
        )
    store.close()


def test_leases_of_a_killed_run_return_without_costing_an_attempt(store_url: str) -> None:
    store = open_store(store_url)
    _capture(store, 1)
    job = claim(store, "lab-pc/boot1/0", 600)
    assert job is not None and job.attempts == 1
    assert release_leases(store, "other-pc/") == 0
    assert release_leases(store, "lab-pc/") == 1
    again = claim(store, "lab-pc/boot2/0", 600)
    assert again is not None and again.attempts == 1
    store.close()


def test_newer_schema_is_refused(store_url: str) -> None:
    from acquisition.store import StoreError

    store = open_store(store_url)
    with store.begin() as conn:
        conn.execute(schema_info.update().values(version=SCHEMA_VERSION + 1))
    store.close()
    with pytest.raises(StoreError, match="newer than this platewatch"):
        open_store(store_url)


def test_sqlite_runs_in_wal_with_full_sync(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    store.close()


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "..", "/abs/path.txt", "a\\..\\b", "", "ok name (1).txt"]
)
def test_instrument_names_never_escape_the_state_directory(tmp_path: Path, name: str) -> None:
    """DESIGN.md §7: file names and barcodes from instruments are data, not paths."""
    from acquisition.capture import archive_path
    from analysis.model import safe_stem

    stem = safe_stem(name)
    assert stem and "/" not in stem and "\\" not in stem and not stem.startswith(".")
    path = archive_path(tmp_path, name, "0" * 64, name)
    assert path.resolve().is_relative_to(tmp_path.resolve())
