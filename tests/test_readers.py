"""`platewatch read` / `readers` against the wire-level fakes, and readers in the daemon."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from acquisition.store import alerts, captures, open_store, results
from datamodel import parse_well
from drivers.plate_model import PlateModel
from tests.daemon_rig import DaemonProcess, wait_for, write_config
from tests.drivers_rig import FAST, running_fake

ROOT = Path(__file__).resolve().parent.parent
LAYOUT = ROOT / "config" / "layouts" / "mtt-96.toml"
MODEL = PlateModel(seed=1, saturated=2)


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "service.py"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def reader_config(tmp_path: Path, protocol: str, port: str, options: dict[str, Any]) -> Path:
    opts = ", ".join(f"{k} = {json.dumps(v)}" for k, v in options.items())
    path = tmp_path / "pw.toml"
    path.write_text(
        f'[service]\nstate_dir = "{tmp_path / "state"}"\n'
        f'[store]\nurl = "sqlite:///{tmp_path / "state" / "p.db"}"\n'
        f"[alerts]\nconsole = false\n"
        f'[[reader]]\nname = "reader-1"\nprotocol = "{protocol}"\nport = "{port}"\n'
        f'layout = "{LAYOUT}"\noptions = {{ {opts} }}\n'
    )
    return path


@pytest.mark.parametrize("protocol", ["spectramax", "biotek"])
def test_read_json_returns_the_fakes_plate_in_the_right_orientation(
    tmp_path: Path, protocol: str
) -> None:
    with running_fake(protocol, tmp_path, "--saturated", "2") as fake:  # type: ignore[arg-type]
        config = reader_config(tmp_path, protocol, str(fake.link), FAST)
        out = cli(
            "read",
            "--config",
            config,
            "--reader",
            "reader-1",
            "--wavelength",
            "570",
            "--reference",
            "650",
            "--json",
        )
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout)
    (plate,) = record["plates"]
    assert [r["wavelength_nm"] for r in plate["reads"]] == [570.0, 650.0]
    read = plate["reads"][0]
    values, over = MODEL.measure(570.0, 48.0)
    planted = {parse_well(w) for w in MODEL.planted}
    assert {(int(r), int(c)) for r, c in zip(*np.nonzero(over), strict=True)} == planted
    for r in range(8):
        for c in range(12):
            if (r, c) in planted:
                assert read["status"][r][c] == "overflow" and read["values"][r][c] is None
            else:
                assert read["values"][r][c] == pytest.approx(values[r, c], abs=5.1e-5), (r, c)
    assert record["format"] == f"driver:{protocol}" and len(record["sha256"]) == 64


def test_read_store_captures_and_analyses_like_an_export(tmp_path: Path) -> None:
    with running_fake("spectramax", tmp_path, "--saturated", "2") as fake:
        config = reader_config(tmp_path, "spectramax", str(fake.link), FAST)
        out = cli(
            "read",
            "--config",
            config,
            "--reader",
            "reader-1",
            "--wavelength",
            "570",
            "--reference",
            "650",
            "--store",
            "--json",
        )
    assert out.returncode == 0, out.stderr
    capture = json.loads(out.stdout)["capture"]
    assert capture["outcome"] == "captured" and capture["analysed"] == "done"
    store = open_store(f"sqlite:///{tmp_path / 'state' / 'p.db'}")
    with store.engine.connect() as conn:
        (instrument, kind, archive) = conn.execute(
            select(captures.c.instrument, captures.c.kind, captures.c.archive_path)
        ).one()
        body = json.loads(conn.execute(select(results.c.body)).scalar_one())
    store.close()
    assert (instrument, kind) == ("reader-1", "plate")
    assert json.loads(Path(archive).read_text())["format"] == "platewatch-read"
    assert body["layout"] == str(LAYOUT)
    assert "saturated_wells" in [f["code"] for f in body["flags"]]  # the 2 planted wells
    assert {c["group"]["cell_line"] for c in body["curves"]} == {"REH", "MOLT-4P"}


@pytest.mark.parametrize(
    ("protocol", "port", "needle"),
    [
        ("spectramax", "/dev/does-not-exist", "reader-1"),
        ("teleport", "/dev/null", "protocol"),
    ],
)
def test_read_with_a_wrong_port_or_protocol_is_one_line_exit_2(
    tmp_path: Path, protocol: str, port: str, needle: str
) -> None:
    config = reader_config(tmp_path, protocol, port, {"timeout_s": 0.5, "reconnect_attempts": 1})
    out = cli("read", "--config", config, "--reader", "reader-1", "--wavelength", "570")
    assert out.returncode == 2, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and needle in out.stderr
    assert "Traceback" not in out.stderr


def test_read_a_silent_reader_times_out_in_one_line(tmp_path: Path) -> None:
    with running_fake("spectramax", tmp_path, "--silent") as fake:
        config = reader_config(
            tmp_path,
            "spectramax",
            str(fake.link),
            {**FAST, "timeout_s": 0.3, "reconnect_attempts": 1, "retries": 0},
        )
        out = cli("read", "--config", config, "--reader", "reader-1", "--wavelength", "570")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "reader-1" in out.stderr


def test_readers_lists_the_configured_readers_and_their_state(tmp_path: Path) -> None:
    with running_fake("spectramax", tmp_path) as fake:
        config = reader_config(tmp_path, "spectramax", str(fake.link), FAST)
        out = cli("readers", "--config", config, "--json")
    assert out.returncode == 0, out.stderr
    (row,) = [json.loads(line) for line in out.stdout.splitlines()]
    assert row["name"] == "reader-1" and row["state"] == "idle" and row["connected"]
    assert row["identity"]["model"]


@pytest.mark.timeout(180)
def test_an_unplugged_reader_alerts_offline_then_resolved_and_the_daemon_stays_healthy(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with running_fake("spectramax", tmp_path) as fake:
        options = {
            **FAST,
            "timeout_s": 0.5,
            "reconnect_attempts": 1,
            "backoff_s": 0.05,
            "backoff_max_s": 0.2,
        }
        opts = ", ".join(f"{k} = {json.dumps(v)}" for k, v in options.items())
        config = write_config(
            tmp_path / "pw.toml",
            state,
            [inbox],
            extra=(
                f'[[reader]]\nname = "reader-1"\nprotocol = "spectramax"\nport = "{fake.link}"\n'
                f"probe_seconds = 1.0\noptions = {{ {opts} }}\n"
            ),
        )
        daemon = DaemonProcess(config, tmp_path / "daemon.log")
        store = open_store(f"sqlite:///{state}/platewatch.db")

        def alert_kinds() -> list[tuple[str, str]]:
            with store.engine.connect() as conn:
                return [
                    tuple(r)
                    for r in conn.execute(
                        select(alerts.c.code, alerts.c.kind).order_by(alerts.c.id)
                    ).all()
                ]

        def published() -> dict[str, Any]:
            try:
                return json.loads((state / "daemon.json").read_text())  # type: ignore[no-any-return]
            except (OSError, ValueError):
                return {}

        try:
            assert daemon.wait_for_message("READY=1"), (tmp_path / "daemon.log").read_text()
            assert wait_for(
                lambda: [r["state"] for r in published().get("readers", [])] == ["idle"], timeout=30
            )
            fake.unplug(for_s=8.0)
            assert wait_for(lambda: ("reader_offline", "finding") in alert_kinds(), timeout=30), (
                alert_kinds()
            )
            assert published()["healthy"], published()
            assert wait_for(lambda: ("reader_offline", "resolved") in alert_kinds(), timeout=45), (
                alert_kinds()
            )
            assert alert_kinds().count(("reader_offline", "finding")) == 1  # once until resolved
            assert published()["healthy"]
            jsonl = state / "alerts.jsonl"
            assert wait_for(lambda: "reader reader-1: resolved" in jsonl.read_text(), timeout=20)
            assert "reader reader-1 is offline" in jsonl.read_text()
        finally:
            store.close()
            assert daemon.stop() == 0
