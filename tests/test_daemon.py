"""The daemon as users run it: a subprocess, real folders, signals, SIGKILL at random."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import fresh_pg_url
from tests.daemon_rig import DaemonProcess, counts, store_for, torture, wait_for, write_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = (ROOT / "examples" / "mtt_plate_clean.txt").read_bytes()
EDGE = (ROOT / "examples" / "mtt_plate_edge_effect.txt").read_bytes()


def plate(n: int) -> bytes:
    return EXAMPLE.replace(b"Plate Number\tPlate 1", f"Plate Number\tPlate {n}".encode())


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "service.py"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_capture_analyse_alert_quarantine_and_clean_stop(tmp_path: Path) -> None:
    inbox, state = tmp_path / "inbox", tmp_path / "state"
    inbox.mkdir()
    (inbox / "waiting.txt").write_bytes(plate(1))  # arrived while the daemon was down
    config = write_config(tmp_path / "pw.toml", state, [inbox])
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    try:
        assert daemon.wait_for_message("READY=1"), (tmp_path / "daemon.log").read_text()
        (inbox / "edge.txt").write_bytes(EDGE)
        (inbox / "junk.txt").write_bytes(bytes(range(256)) * 8)
        (inbox / "after_junk.txt").write_bytes(plate(2))
        store = store_for(f"sqlite:///{state}/platewatch.db")
        assert wait_for(lambda: counts(store)["jobs"] == {"done": 6, "dead": 1})
        assert daemon.wait_for_message("WATCHDOG=1"), daemon.messages[-5:]
        live = json.loads(cli("status", "--config", config, "--json").stdout)["daemon"]
        assert live["running"] and live["healthy"] and live["pid"] == daemon.proc.pid
        assert [w["alive"] for w in live["watchers"]] == [True]
        assert [w["alive"] for w in live["workers"]] == [True, True]
        alerts_file = state / "alerts.jsonl"
        assert wait_for(
            lambda: alerts_file.exists() and len(alerts_file.read_text().splitlines()) >= 2
        )
        text = alerts_file.read_text()
        assert "edge_effect" in text and "junk.txt" in text
        reason = next((state / "quarantine").glob("*junk.txt.reason.txt")).read_text()
        assert "binary content" in reason and len(reason.strip().splitlines()) == 1
        store.close()
    finally:
        code = daemon.stop()
    assert code == 0
    assert (inbox / "junk.txt").exists() and (
        inbox / "edge.txt"
    ).read_bytes() == EDGE  # never moved
    status = json.loads(cli("status", "--config", config, "--json").stdout)
    assert status["queue"] == {"done": 6, "dead": 1} and status["last_error"]["state"] == "dead"
    assert status["daemon"]["running"] is False  # stopped: the published state is stale
    rows = [
        json.loads(line)
        for line in cli("results", "--config", config, "--json").stdout.splitlines()
    ]
    assert len(rows) == 3 and {r["verdict"] for r in rows} == {"pass", "warn"}
    assert set(rows[0]) >= {
        "capture_id",
        "path",
        "source_sha256",
        "instrument",
        "kind",
        "verdict",
        "flags",
        "analyzed_at",
    }


def test_sighup_adds_a_watch_folder_without_restart(tmp_path: Path) -> None:
    first, second, state = tmp_path / "a", tmp_path / "b", tmp_path / "state"
    first.mkdir()
    second.mkdir()
    config = write_config(tmp_path / "pw.toml", state, [first])
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    try:
        assert daemon.wait_for_message("READY=1")
        write_config(config, state, [first, second])
        pid = daemon.proc.pid
        daemon.signal(signal.SIGHUP)
        (second / "new.txt").write_bytes(plate(3))
        store = store_for(f"sqlite:///{state}/platewatch.db")
        assert wait_for(lambda: counts(store)["results"] == 1, timeout=30)
        assert daemon.proc.pid == pid and daemon.proc.poll() is None
        store.close()
    finally:
        assert daemon.stop() == 0


@pytest.mark.timeout(400)
def test_sigkill_at_random_instants_loses_nothing_and_stores_nothing_twice(tmp_path: Path) -> None:
    """≥ 20 SIGKILLs while files stream in; bench/torture.py runs the long version (200)."""
    final = torture(tmp_path, kills=20, seed=20261125, plate=plate, every=0.4)
    print(f"\n{final}")
    assert final["jobs"] == {"done": 2 * final["files"]}  # nothing queued, running or dead
    assert final["captures"] == final["files"]  # every file captured once
    assert final["results"] == final["files"] and final["max_results_per_capture"] == 1
    assert final["integrity_ok"] and final["exit_code"] == 0


def test_two_daemons_on_one_postgresql_never_analyse_twice(tmp_path: Path) -> None:
    url = fresh_pg_url(f"platewatch_two_daemons_{abs(hash(str(tmp_path))) % 10**8}")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemons = []
    for name in ("pc-a", "pc-b"):
        config = write_config(
            tmp_path / f"{name}.toml", tmp_path / name, [inbox], url=url, instance=name
        )
        daemons.append(DaemonProcess(config, tmp_path / f"{name}.log"))
    try:
        for d in daemons:
            assert d.wait_for_message("READY=1")
        for n in range(30):
            (inbox / f"p{n:02d}.txt").write_bytes(plate(500 + n))
        store = store_for(url)
        assert wait_for(lambda: counts(store)["jobs"] == {"done": 60}, timeout=120), counts(store)
        final = counts(store)
        assert (
            final["captures"] == 30
            and final["results"] == 30
            and final["max_results_per_capture"] == 1
        )
        store.close()
    finally:
        codes = [d.stop() for d in daemons]
    assert codes == [0, 0]


def test_bad_config_for_run_is_one_line_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[service]\nworkerz = 2\n")
    out = cli("run", "--config", config)
    assert out.returncode == 2 and "service.workerz: unknown key" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
