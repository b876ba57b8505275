"""Alerts through apprise to real local receivers: an HTTP server (json://) and SMTP (aiosmtpd)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from acquisition.capture import Capturer
from acquisition.kinds import JobContext
from acquisition.pipeline import references
from acquisition.queue import claim
from acquisition.store import Store, alerts, deliveries, open_store
from acquisition.worker import Hooks, process_job
from config.schema import Settings
from monitoring.alerts import Dispatcher
from monitoring.rules import alert_for_quarantine, alerts_for_result
from tests.plate_sim import Defects, simulate_plate, to_gen5_text

ROOT = Path(__file__).resolve().parent.parent
LAYOUT = ROOT / "config" / "layouts" / "mtt-96.toml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """A local webhook receiver that records every JSON body posted to it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.bodies: list[dict[str, Any]] = []
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(free_port())
    r.start()
    yield r
    r.stop()


def make_settings(tmp_path: Path, urls: list[Any], **alerts_cfg: Any) -> Settings:
    return Settings.model_validate(
        {
            "service": {"state_dir": str(tmp_path / "state")},
            "store": {"url": f"sqlite:///{tmp_path / 'state' / 'p.db'}"},
            "watch": [
                {"path": str(tmp_path / "inbox"), "instrument": "reader-1", "layout": str(LAYOUT)}
            ],
            "alerts": {"urls": urls, "console": False, **alerts_cfg},
        }
    )


def analyse(store: Store, settings: Settings, path: Path) -> None:
    """Capture a file and run its job in-process, as a daemon worker would."""
    Capturer(store, settings.service.state_dir).capture("reader-1", path, "plate")
    hooks = Hooks(on_result=alerts_for_result, on_dead=alert_for_quarantine)
    while (job := claim(store, "test", 60)) is not None:
        process_job(JobContext(store, settings, references(settings)), job, hooks)


def write_plate(folder: Path, name: str, seed: int, defects: Defects | None = None) -> Path:
    from analysis.layout import load_layout

    folder.mkdir(parents=True, exist_ok=True)
    sim = simulate_plate(load_layout(LAYOUT), seed, defects)
    path = folder / name
    path.write_text(to_gen5_text(sim.read), encoding="cp1252")
    return path


def test_webhook_and_email_delivery(tmp_path: Path, receiver: Receiver) -> None:
    mailbox = Mailbox()
    smtp_port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        settings = make_settings(
            tmp_path,
            [
                f"json://127.0.0.1:{receiver.port}/hook",
                f"mailto://127.0.0.1:{smtp_port}?from=platewatch@lab.example&to=ops@lab.example&mode=insecure",
            ],
        )
        store = open_store(settings.store.url)
        analyse(store, settings, write_plate(tmp_path / "inbox", "edge.txt", 3, Defects(edge=0.3)))
        assert Dispatcher(store, settings).dispatch_once() >= 2
        (body,) = receiver.bodies
        assert "edge.txt" in body["title"] and "edge_effect" in body["message"]
        assert "Evaporation" in body["message"]  # what to do
        (mail,) = mailbox.messages
        assert b"edge_effect" in mail and b"edge.txt" in mail
        lines = (settings.service.state_dir / "alerts.jsonl").read_text().splitlines()
        assert len(lines) == 1 and "edge_effect" in lines[0]
        store.close()
    finally:
        controller.stop()


def test_receiver_down_alerts_wait_in_outbox_and_arrive_once(tmp_path: Path) -> None:
    port = free_port()
    settings = make_settings(tmp_path, [f"json://127.0.0.1:{port}/hook"], jsonl=False)
    store = open_store(settings.store.url)
    junk = tmp_path / "inbox" / "junk.txt"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(bytes(range(256)) * 8)
    analyse(store, settings, junk)
    dispatcher = Dispatcher(store, settings)
    assert dispatcher.dispatch_once() == 0  # nobody listening
    with store.engine.connect() as conn:
        state, attempts = conn.execute(select(deliveries.c.state, deliveries.c.attempts)).one()
    assert (state, attempts) == ("pending", 1)
    assert dispatcher.dispatch_once() == 0  # backing off: not due yet
    receiver = Receiver(port)
    receiver.start()
    try:
        with store.begin() as conn:  # the backoff has run out
            conn.execute(deliveries.update().values(next_attempt_at=0))
        assert dispatcher.dispatch_once() == 1
        assert dispatcher.dispatch_once() == 0
        (body,) = receiver.bodies
        assert "junk.txt" in body["title"] and "quarantine" in body["message"]
    finally:
        receiver.stop()
        store.close()


def test_dedup_then_resolved_when_a_re_export_passes(tmp_path: Path, receiver: Receiver) -> None:
    from acquisition.reprocess import queue_reprocess

    settings = make_settings(tmp_path, [f"json://127.0.0.1:{receiver.port}/hook"])
    store = open_store(settings.store.url)
    dispatcher = Dispatcher(store, settings)
    inbox = tmp_path / "inbox"
    analyse(store, settings, write_plate(inbox, "plate7.txt", 7, Defects(edge=0.3)))
    dispatcher.dispatch_once()
    assert len(receiver.bodies) == 1 and "edge_effect" in receiver.bodies[0]["message"]
    queue_reprocess(store)  # the same capture analysed again: the same findings
    hooks = Hooks(on_result=alerts_for_result, on_dead=alert_for_quarantine)
    while (job := claim(store, "test", 60)) is not None:
        process_job(JobContext(store, settings, references(settings)), job, hooks)
    dispatcher.dispatch_once()
    assert len(receiver.bodies) == 1  # the same plate and codes: alerted once
    analyse(store, settings, write_plate(inbox / "fixed", "plate7.txt", 9))  # a clean re-export
    dispatcher.dispatch_once()
    assert len(receiver.bodies) == 2
    resolved = receiver.bodies[1]
    assert "resolved" in resolved["title"] and "edge_effect is gone" in resolved["message"]
    store.close()


def test_burst_is_grouped_and_severity_routes(tmp_path: Path, receiver: Receiver) -> None:
    critical = Receiver(free_port())
    critical.start()
    try:
        settings = make_settings(
            tmp_path,
            [
                f"json://127.0.0.1:{receiver.port}/hook",
                {"url": f"json://127.0.0.1:{critical.port}/hook", "min_severity": "critical"},
            ],
            group_after=3,
        )
        store = open_store(settings.store.url)
        for n in range(6):
            analyse(
                store,
                settings,
                write_plate(tmp_path / "inbox", f"p{n}.txt", 20 + n, Defects(edge=0.3)),
            )
        Dispatcher(store, settings).dispatch_once()
        (grouped,) = receiver.bodies
        assert "6 plates need attention" in grouped["title"]
        assert critical.bodies == []  # edge effects are warnings
        with store.engine.connect() as conn:
            plates = conn.execute(select(func.count(alerts.c.plate_key.distinct()))).scalar()
        assert plates == 6
        store.close()
    finally:
        critical.stop()
