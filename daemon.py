"""The platewatch daemon: wires watcher, workers, store and alerts (DESIGN.md §1, §6).

Kept beside ``service.py`` (the CLI) so that both stay small: this module composes, it
does not compute. One process: observer threads and the stabiliser capture files; analysis
runs in spawned worker processes; the alert dispatcher is a thread. Each pass of the main
loop does three separate things: **supervise** (restart a dead observer or worker),
**check health** (observers, stabiliser, dispatcher, workers alive, queued work being
taken), **publish** (``daemon.json`` for ``platewatch status``, sd_notify for systemd:
``READY=1`` after the first rescan, ``STATUS=``, ``WATCHDOG=1`` only while healthy).

Settings come in generations: the workers of one generation all run the same settings,
and a reload (SIGHUP) makes a new generation and replaces every worker with one of it.
SIGTERM drains in-flight jobs and exits 0.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acquisition.capture import Captured, Capturer
from acquisition.daemon_state import DaemonState, WatcherState, WorkerState
from acquisition.instruments import Instruments
from acquisition.queue import QueueCounts, counts, release_leases
from acquisition.scheduler import Missed, Scheduler
from acquisition.store import Store, open_store
from acquisition.watcher import Watcher
from acquisition.worker import Hooks, worker_main
from config import load_config
from config.schema import Settings
from drivers import ReaderAlert
from monitoring.alerts import Dispatcher
from monitoring.rules import (
    alert_for_quarantine,
    alerts_for_result,
    read_missed_alert,
    reader_alert,
)
from monitoring.web.server import WebServer

log = logging.getLogger(__name__)


def sd_notify(message: str) -> bool:
    """Send one sd_notify message; False when not run by systemd (no NOTIFY_SOCKET)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)  # a notify socket nobody reads must never stall the daemon
            sock.connect(address)
            sock.send(message.encode())
        return True
    except OSError:
        return False


def watchdog_interval() -> float:
    """Half of systemd's WatchdogSec (WATCHDOG_USEC), or 1 s when not supervised by it."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    return int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 else 1.0


@dataclass(frozen=True)
class Generation:
    """One version of the settings; every worker of a generation runs exactly these."""

    number: int
    settings: Settings
    as_json: str


@dataclass
class WorkerSlot:
    index: int
    generation: int = 0
    process: Any = None
    stop: Any = None  # this worker's own stop event (a reload retires one slot at a time)
    restarts: int = 0


@dataclass
class Health:
    healthy: bool
    problems: list[str]
    queue: QueueCounts
    status: str


@dataclass
class Daemon:
    settings: Settings
    config_path: Path | None = None  # what SIGHUP re-reads; None: reload is refused
    on_web_url: Callable[[str], None] | None = None  # told the dashboard's URL once it listens
    store: Store = field(init=False)
    instance: str = field(init=False)
    boot: str = field(init=False)

    def __post_init__(self) -> None:
        self.instance = self.settings.service.instance or socket.gethostname()
        self.boot = f"{os.getpid()}-{int(time.time())}"
        self._ctx = mp.get_context("spawn")
        self._doorbell = self._ctx.Semaphore(0)
        self._alert_bell = self._ctx.Event()
        self._slots: list[WorkerSlot] = []
        self._retiring: list[WorkerSlot] = []
        self._stopping = threading.Event()
        self._reload = threading.Event()
        self._last_progress = time.monotonic()
        self.generation = Generation(1, self.settings, self.settings.model_dump_json())
        self._last_state: DaemonState | None = None

    # -- start-up -----------------------------------------------------------------------
    def start(self) -> None:
        state = self.settings.service.state_dir
        for sub in ("archive", "quarantine", "reports", "layouts"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        for watch in self.settings.watch:  # inboxes inside the state dir are ours to create
            if watch.path.resolve().is_relative_to(state.resolve()):
                watch.path.mkdir(parents=True, exist_ok=True)
        self.store = open_store(self.settings.store.url)
        released = release_leases(self.store, f"{self.instance}/")
        if released:
            log.info("returned %d job(s) left running by a previous run to the queue", released)
        for i in range(self.settings.service.workers):
            slot = WorkerSlot(i)
            self._slots.append(slot)
            self._spawn(slot)
        self.dispatcher = Dispatcher(self.store, self.settings)
        self.dispatcher.start()
        threading.Thread(target=self._relay_alert_bell, name="alert-bell", daemon=True).start()
        self.capturer = Capturer(
            self.store, state, delays={"cytometry": self.settings.cytometry.quiet_seconds}
        )
        self.watcher = Watcher(
            self.capturer,
            self._on_captured,
            incomplete_wait=self.settings.service.incomplete_wait_seconds,
        )
        for watch in self.settings.watch:
            self.watcher.add(watch)
        self.watcher.start()
        self._start_instruments(self.settings)
        self._start_web()
        queued = self.watcher.rescan()
        self.watcher.check_pending()
        log.info("start-up rescan queued %d file(s)", queued)
        self._doorbell.release()
        sd_notify("READY=1\nSTATUS=watching " + ", ".join(str(w.path) for w in self.settings.watch))

    def _spawn(self, slot: WorkerSlot) -> None:
        generation = self.generation
        owner = f"{self.instance}/{self.boot}/{generation.number}.{slot.index}"
        hooks = Hooks(on_result=alerts_for_result, on_dead=alert_for_quarantine)
        slot.generation = generation.number
        slot.stop = self._ctx.Event()
        slot.process = self._ctx.Process(
            target=worker_main,
            args=(
                generation.as_json,
                owner,
                slot.stop,
                self._doorbell,
                self._alert_bell,
                hooks,
                logging.getLogger().level,
                os.getpid(),
            ),
            name=f"platewatch-worker-{generation.number}.{slot.index}",
            daemon=False,
        )
        slot.process.start()

    def _relay_alert_bell(self) -> None:
        """Workers (other processes) ring when they stored alerts: wake the dispatcher now."""
        while not self._stopping.is_set():
            if self._alert_bell.wait(timeout=0.5):
                self._alert_bell.clear()
                self.dispatcher.bell.set()

    def _start_web(self) -> None:
        """The dashboard in its own thread (a consumer: it never holds up capture)."""
        self.web: WebServer | None = None
        web = self.settings.web
        if not web.enabled:
            return
        from monitoring.metrics import metrics_text
        from monitoring.web.app import WebContext
        from monitoring.web.security import access_for

        ctx = WebContext(
            store=self.store,
            settings=self.settings,
            access=access_for(web.bind, web.token, read_only=False),
            state=lambda: self._last_state,
            metrics=metrics_text(self.store, lambda: self._last_state),
        )
        self.web = WebServer(ctx, web.bind)
        url = self.web.start()
        log.info("dashboard at %s", url)
        if self.on_web_url is not None:
            self.on_web_url(url)

    def _start_instruments(self, settings: Settings) -> None:
        """The readers, their probes and the timecourse scheduler that drives them."""
        self.instruments = Instruments(settings.reader, self._on_reader_alert)
        self.instruments.start()
        self.scheduler = Scheduler(
            self.store,
            self.instruments,
            self.capturer,
            [r.name for r in settings.reader],
            on_missed=self._on_missed,
            on_captured=lambda _id: self._doorbell.release(),
            tick_seconds=settings.service.tick_seconds,
        )
        self.scheduler.start()

    def _stop_instruments(self) -> None:
        self.scheduler.stop()
        self.instruments.stop()

    def _on_missed(self, missed: Missed) -> None:
        try:
            read_missed_alert(
                self.store,
                self.settings,
                timecourse_id=missed.timecourse_id,
                name=missed.name,
                reader=missed.reader,
                indices=missed.indices,
                due=missed.due,
                at_startup=missed.at_startup,
            )
        except Exception:
            log.exception("cannot record the read_missed alert of %s", missed.name)
            return
        self.dispatcher.bell.set()

    def _on_reader_alert(self, alert: ReaderAlert) -> None:
        """From a reader's thread: record the alert (its own transaction), ring the dispatcher.

        Never raises: a store hiccup is logged, and the next probe reports again.
        """
        try:
            written = reader_alert(
                self.store,
                self.settings,
                code=alert.code,
                severity=alert.severity,
                reader=alert.reader,
                message=alert.message,
                resolved=alert.resolved,
            )
        except Exception:
            log.exception("cannot record the %s alert of reader %s", alert.code, alert.reader)
            return
        if written:
            self.dispatcher.bell.set()

    def _on_captured(self, outcome: Captured) -> None:
        if outcome.outcome == "captured":
            self._doorbell.release()

    # -- running ------------------------------------------------------------------------
    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self._stopping.set())
        signal.signal(signal.SIGINT, lambda *_: self._stopping.set())
        signal.signal(signal.SIGHUP, lambda *_: self._reload.set())
        self.start()
        next_rescan = time.monotonic() + self.settings.service.rescan_seconds
        next_ping, ping_every, last_status = 0.0, watchdog_interval(), ""
        try:
            while not self._stopping.wait(timeout=0.2):
                if self._reload.is_set():
                    self._reload.clear()
                    self.reload()
                if time.monotonic() >= next_rescan:
                    self.watcher.rescan()
                    next_rescan = time.monotonic() + self.settings.service.rescan_seconds
                if time.monotonic() < next_ping:
                    continue
                next_ping = time.monotonic() + ping_every
                self.supervise()
                health = self.health()
                self.publish(health)
                status = health.status if health.healthy else f"unhealthy: {health.status}"
                message = "WATCHDOG=1" if health.healthy else ""
                if status != last_status:
                    message += f"\nSTATUS={status}"
                    last_status = status
                if message.strip():
                    sd_notify(message.strip())
        finally:
            self.shutdown()
        return 0

    def supervise(self) -> None:
        """Restart what died: observers (a share that dropped), reader probes, workers."""
        self.watcher.supervise()
        self.instruments.supervise()
        if self._stopping.is_set():
            return
        for slot in self._slots:
            if slot.process is not None and not slot.process.is_alive():
                log.error(
                    "worker %d exited (code %s); restarting it on settings generation %d",
                    slot.index,
                    slot.process.exitcode,
                    self.generation.number,
                )
                slot.restarts += 1
                self._spawn(slot)
        self._retiring = [s for s in self._retiring if s.process.is_alive()]

    def health(self) -> Health:
        """Whether everything that must run runs and queued work is being taken."""
        problems = []
        if not self.watcher.all_alive():
            problems.append("an observer cannot watch its folder")
        if not self.watcher.alive():
            problems.append("stabiliser stopped")
        if not self.dispatcher.alive():
            problems.append("alert dispatcher stopped")
        if not self.instruments.alive():
            problems.append("a reader's probe thread stopped")
        if not self.scheduler.alive():
            problems.append("the timecourse scheduler stopped")
        dead = [s.index for s in self._slots if s.process is None or not s.process.is_alive()]
        if dead:
            problems.append(f"worker(s) {dead} not running")
        queue = counts(self.store)
        if queue.running or not queue.due:
            self._last_progress = time.monotonic()
        elif time.monotonic() - self._last_progress > max(
            60.0, self.settings.service.lease_seconds
        ):
            problems.append(f"{queue.due} job(s) waiting and no worker taking them")
        status = (
            f"{queue.queued} queued, {queue.running} running, "
            f"{self.watcher.stats.captured} captured"
        )
        return Health(not problems, problems, queue, "; ".join(problems) or status)

    def publish(self, health: Health) -> None:
        """Write the live state for `platewatch status` and the dashboard."""
        stats = self.watcher.stats
        state = DaemonState(
            pid=os.getpid(),
            instance=self.instance,
            updated_at=time.time(),
            healthy=health.healthy,
            problems=health.problems,
            generation=self.generation.number,
            queue=health.queue.by_state,
            queued_due=health.queue.due,
            watchers=[
                WatcherState(
                    path=str(path),
                    instrument=folder.watch.instrument,
                    polling=folder.watch.polling,
                    alive=folder.alive(),
                    restarts=folder.restarts,
                )
                for path, folder in self.watcher.folders.items()
            ],
            workers=[
                WorkerState(
                    index=s.index,
                    alive=bool(s.process and s.process.is_alive()),
                    restarts=s.restarts,
                    generation=s.generation,
                    pid=s.process.pid if s.process else None,
                )
                for s in self._slots
            ],
            readers=self.instruments.states(),
            pending_files=len(self.watcher.pending),
            captured=stats.captured,
            duplicates=stats.duplicates,
            watch_error=stats.last_error,
            alerts_sent=self.dispatcher.sent,
            alert_error=self.dispatcher.last_error,
            extra={
                "scheduler": {
                    "ticks": self.scheduler.ticks,
                    "last_tick_at": self.scheduler.last_tick_at,
                    "lateness": self.scheduler.lateness(),
                },
                "web": self.web.state() if self.web is not None else None,
            },
        )
        self._last_state = state
        try:
            state.write(self.settings.service.state_dir)
        except OSError as exc:
            log.warning("cannot write the daemon state: %s", exc.strerror)

    def stop(self) -> None:
        """Ask the running daemon to drain and stop (what SIGTERM does)."""
        self._stopping.set()

    def reload(self) -> None:
        """SIGHUP: a new settings generation for watchers, alerts and every worker."""
        if self.config_path is None:
            log.warning("reload ignored: the daemon was not started from a config file")
            return
        try:
            fresh = load_config(self.config_path)
        except Exception as exc:
            log.error("reload refused, keeping the running configuration: %s", exc)
            return
        old = {w.path: w for w in self.settings.watch}
        new = {w.path: w for w in fresh.watch}
        for path in old.keys() - new.keys():
            self.watcher.remove(path)
            log.info("stopped watching %s", path)
        for path, watch in new.items():
            if path not in old or old[path] != watch:
                self.watcher.remove(path)
                self.watcher.add(watch)
        if (
            fresh.reader != self.settings.reader
            or fresh.service.tick_seconds != self.settings.service.tick_seconds
        ):
            self._stop_instruments()
            self._start_instruments(fresh)
            log.info("readers reopened (%d configured)", len(fresh.reader))
        self.settings = fresh
        self.generation = Generation(self.generation.number + 1, fresh, fresh.model_dump_json())
        self.dispatcher.apply(fresh)
        self._replace_workers()
        self.watcher.rescan()
        log.info(
            "configuration reloaded: settings generation %d, %d watch folder(s); every worker "
            "restarted onto it",
            self.generation.number,
            len(new),
        )

    def _replace_workers(self) -> None:
        """Retire every worker (it finishes its job) and start one of the new generation."""
        count = self.settings.service.workers
        for slot in self._slots:
            slot.stop.set()
            self._retiring.append(slot)
        for _ in self._slots:
            self._doorbell.release()  # wake idle old workers so they see their stop
        self._slots = []
        for i in range(count):
            slot = WorkerSlot(i)
            self._slots.append(slot)
            self._spawn(slot)

    def shutdown(self) -> None:
        sd_notify("STOPPING=1")
        log.info("stopping: finishing in-flight jobs")
        self.watcher.stop()
        self._stop_instruments()
        if self.web is not None:
            self.web.stop()
        everyone = self._slots + self._retiring
        for slot in everyone:
            if slot.stop is not None:
                slot.stop.set()
        for _ in everyone:
            self._doorbell.release()
        for slot in everyone:
            if slot.process is not None:
                slot.process.join(timeout=max(30.0, self.settings.service.lease_seconds))
                if slot.process.is_alive():
                    slot.process.terminate()
        self.dispatcher.bell.set()
        self.dispatcher.dispatch_once()
        self.dispatcher.stop()
        self.store.close()
        log.info("stopped")


def run_daemon(config_path: Path | None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # it logs every tick at INFO
    return Daemon(load_config(config_path), config_path).run()
