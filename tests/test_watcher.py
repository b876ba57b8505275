"""Real watchdog observers on real temporary folders (INSTRUMENTS.md folder facts)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from acquisition.capture import Captured, Capturer
from acquisition.store import Store, captures, open_store
from acquisition.watcher import Watcher
from config.schema import WatchSettings
from tests.daemon_rig import wait_for

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = (ROOT / "examples" / "mtt_plate_clean.txt").read_bytes()


def count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(captures)).scalar_one())


@pytest.fixture(params=[False, True], ids=["inotify", "polling"])
def rig(request, tmp_path: Path) -> Iterator[tuple[Watcher, Store, Path, list[Captured]]]:  # type: ignore[no-untyped-def]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    store = open_store(f"sqlite:///{tmp_path / 'state' / 'p.db'}")
    seen: list[Captured] = []
    watcher = Watcher(Capturer(store, tmp_path / "state"), seen.append)
    watcher.add(
        WatchSettings(path=inbox, instrument="reader-1", stable_seconds=0.5, polling=request.param)
    )
    watcher.start()
    yield watcher, store, inbox, seen
    watcher.stop()
    store.close()


def plate_text(n: int) -> bytes:
    """A distinct valid Gen5 export per n (one value changed)."""
    return EXAMPLE.replace(b"Plate Number\tPlate 1", f"Plate Number\tPlate {n}".encode())


def test_file_written_in_one_go(rig) -> None:  # type: ignore[no-untyped-def]
    _watcher, store, inbox, seen = rig
    (inbox / "plate.txt").write_bytes(plate_text(1))
    assert wait_for(lambda: count(store) == 1)
    assert [c.outcome for c in seen] == ["captured"]


def test_trickled_file_is_never_captured_half_written(rig) -> None:  # type: ignore[no-untyped-def]
    _watcher, store, inbox, _seen = rig
    data = plate_text(2)
    path = inbox / "slow.txt"
    step = len(data) // 6
    with path.open("wb") as fh:  # one open handle, as vendor software writes
        for i in range(0, len(data), step):
            fh.write(data[i : i + step])
            fh.flush()
            time.sleep(0.6)  # longer than stable_seconds: only completeness can hold it back
            if i + step < len(data):
                assert count(store) == 0, f"captured with {i + step} of {len(data)} bytes written"
    assert wait_for(lambda: count(store) == 1)
    with store.engine.connect() as conn:
        archived = Path(conn.execute(select(captures.c.archive_path)).scalar_one())
    assert archived.read_bytes() == data


def test_file_moved_in(rig, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _watcher, store, inbox, _seen = rig
    outside = tmp_path / "export.tmpfile"
    outside.write_bytes(plate_text(3))
    os.replace(outside, inbox / "moved.txt")
    assert wait_for(lambda: count(store) == 1)


def test_vendor_temp_files_are_ignored(rig) -> None:  # type: ignore[no-untyped-def]
    _watcher, store, inbox, _seen = rig
    for name in ("~$plate.txt", "plate.tmp", "plate.part", "plate.layout.toml"):
        (inbox / name).write_bytes(plate_text(4))
    (inbox / "real.txt").write_bytes(plate_text(5))
    assert wait_for(lambda: count(store) == 1)
    time.sleep(1.0)
    assert count(store) == 1


def test_five_hundred_files_at_once(rig) -> None:  # type: ignore[no-untyped-def]
    _watcher, store, inbox, _seen = rig
    for n in range(500):
        (inbox / f"p{n:03d}.txt").write_bytes(plate_text(1000 + n))
    assert wait_for(lambda: count(store) == 500, timeout=120)


def test_files_that_arrived_while_down_are_captured_at_start_up(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "sub").mkdir(parents=True)
    (inbox / "early.txt").write_bytes(plate_text(6))
    (inbox / "sub" / "nested.txt").write_bytes(plate_text(7))
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    watcher = Watcher(Capturer(store, tmp_path / "state"), lambda c: None)
    watcher.add(WatchSettings(path=inbox, instrument="r", stable_seconds=0.2))
    watcher.start()
    try:
        assert watcher.rescan() == 2
        assert wait_for(lambda: count(store) == 2)
        assert watcher.rescan() == 0  # already captured as they are now
    finally:
        watcher.stop()
        store.close()


def test_dead_observer_is_restarted_and_missing_folder_retried(tmp_path: Path) -> None:
    inbox = tmp_path / "share"
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    watcher = Watcher(Capturer(store, tmp_path / "state"), lambda c: None)
    watcher.add(WatchSettings(path=inbox, instrument="r", stable_seconds=0.2, polling=True))
    watcher.start()
    try:
        assert watcher.supervise() is False  # the share is not mounted yet
        inbox.mkdir()
        assert watcher.supervise() is True
        folder = watcher.folders[inbox]
        assert folder.observer is not None
        folder.observer.stop()
        folder.observer.join()
        assert watcher.supervise() is True and folder.restarts >= 1
        (inbox / "after.txt").write_bytes(plate_text(8))
        assert wait_for(lambda: count(store) == 1)
    finally:
        watcher.stop()
        store.close()
