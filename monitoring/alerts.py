"""Alert delivery: the outbox dispatcher and where each severity goes.

The rules that write the outbox are in ``monitoring.rules``. The dispatcher delivers the outbox through apprise (any URL it
knows: mailto://, json://, slack://, msteams://, …), to ``<state_dir>/alerts.jsonl`` and
to the console, each destination with its own minimum severity; failures wait in the
outbox with exponential backoff and are delivered once the destination is back. A burst
(more than ``group_after`` plates in one pass) goes out as one grouped message.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import apprise
from sqlalchemy import select, update

from acquisition.clock import backoff
from acquisition.store import Store, alerts, deliveries
from analysis.model import SEVERITY_RANK
from config.schema import Settings

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

JSONL = "builtin:jsonl"
CONSOLE = "builtin:console"
MAX_ATTEMPTS = 50
COALESCE_SECONDS = 0.05  # one outbox pass per burst of finished jobs
_TITLE_VERDICT = {"fail": "FAILED", "warn": "needs a look"}


def destinations(settings: Settings, severity: str) -> list[str]:
    """Where an alert of ``severity`` goes."""
    cfg = settings.alerts
    rank = SEVERITY_RANK[severity]
    out = []
    if cfg.jsonl and rank >= SEVERITY_RANK[cfg.min_severity]:
        out.append(JSONL)
    if cfg.console and rank >= SEVERITY_RANK[cfg.min_severity]:
        out.append(CONSOLE)
    for target in cfg.targets():
        if rank >= SEVERITY_RANK[target.min_severity or cfg.min_severity]:
            out.append(target.url)
    return out


@dataclass
class Outgoing:
    delivery_id: int
    destination: str
    attempts: int
    alert: dict[str, Any]


Sender = Callable[[str, str, str, str], bool]  # (destination, title, body, severity) → delivered?


class Dispatcher:
    """Delivers the outbox in a thread of the daemon's main process."""

    def __init__(self, store: Store, settings: Settings, *, sender: Sender | None = None) -> None:
        self.store = store
        self.settings = settings
        self.sender = sender or self.send
        self.bell = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.sent = 0

    def apply(self, settings: Settings) -> None:
        """Take a new generation of settings (a reload); the next pass uses it."""
        self.settings = settings

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        self.bell.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.bell.wait(timeout=1.0):
                self._stop.wait(COALESCE_SECONDS)  # let a burst of finished jobs gather
            self.bell.clear()
            try:
                self.dispatch_once()
            except Exception as exc:  # a consumer: log, keep going, never touch captures
                log.exception("alert dispatch failed")
                self.last_error = str(exc)

    def due(self) -> list[Outgoing]:
        query = (
            select(deliveries.c.id, deliveries.c.destination, deliveries.c.attempts, alerts)
            .join(alerts, alerts.c.id == deliveries.c.alert_id)
            .where(
                deliveries.c.state == "pending", deliveries.c.next_attempt_at <= self.store.now()
            )
            .order_by(deliveries.c.id)
            .limit(500)
        )
        with self.store.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            Outgoing(
                int(r["id"]),
                str(r["destination"]),
                int(r["attempts"]),
                {k: r[k] for k in alerts.c.keys()},
            )
            for r in rows
        ]

    def dispatch_once(self) -> int:
        """Send what is due; returns how many deliveries succeeded."""
        by_dest: dict[str, list[Outgoing]] = defaultdict(list)
        for item in self.due():
            by_dest[item.destination].append(item)
        delivered = 0
        for dest, items in by_dest.items():
            for title, body, severity, batch in self.compose(items):
                ok = False
                try:
                    ok = self.sender(dest, title, body, severity)
                except Exception as exc:
                    log.warning("alert to %s failed: %s", _redact(dest), exc)
                self._mark(batch, ok)
                delivered += len(batch) if ok else 0
        self.sent += delivered
        return delivered

    def compose(self, items: list[Outgoing]) -> list[tuple[str, str, str, list[Outgoing]]]:
        """One message per plate; one grouped message when a burst names many plates."""
        by_plate: dict[str, list[Outgoing]] = defaultdict(list)
        for item in items:
            by_plate[item.alert["plate_key"]].append(item)
        messages = []
        for group in by_plate.values():
            worst = max((i.alert["severity"] for i in group), key=lambda s: SEVERITY_RANK[s])
            body = "\n".join(f"- {i.alert['body']}" for i in group)
            messages.append((str(group[0].alert["title"]), body, worst, group))
        if len(messages) <= self.settings.alerts.group_after:
            return messages
        worst = max((m[2] for m in messages), key=lambda s: SEVERITY_RANK[s])
        body = "\n\n".join(f"{title}\n{body}" for title, body, _, _ in messages)
        return [
            (
                f"platewatch: {len(messages)} plates need attention",
                body,
                worst,
                [i for m in messages for i in m[3]],
            )
        ]

    def _mark(self, batch: list[Outgoing], ok: bool) -> None:
        t = self.store.now()
        with self.store.begin() as conn:
            for item in batch:
                if ok:
                    values: dict[str, Any] = {
                        "state": "sent",
                        "sent_at": t,
                        "attempts": item.attempts + 1,
                    }
                else:
                    attempts = item.attempts + 1
                    values = {
                        "attempts": attempts,
                        "next_attempt_at": t + backoff(attempts, base=2.0),
                        "last_error": "delivery failed",
                        "state": "failed" if attempts >= MAX_ATTEMPTS else "pending",
                    }
                conn.execute(
                    update(deliveries).where(deliveries.c.id == item.delivery_id).values(**values)
                )

    def send(self, destination: str, title: str, body: str, severity: str) -> bool:
        if destination == JSONL:
            path = self.settings.service.state_dir / "alerts.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            line = json.dumps(
                {"at": time.time(), "severity": severity, "title": title, "body": body},
                ensure_ascii=False,
            )
            with path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            return True
        if destination == CONSOLE:
            log.warning("ALERT %s: %s\n%s", severity.upper(), title, body)
            return True
        notifier = apprise.Apprise()
        if not notifier.add(destination):
            log.error("alert destination is not a valid apprise URL: %s", _redact(destination))
            return False
        kind = {"critical": apprise.NotifyType.FAILURE, "warning": apprise.NotifyType.WARNING}.get(
            severity, apprise.NotifyType.INFO
        )
        return bool(notifier.notify(body=body, title=title, notify_type=kind))


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
