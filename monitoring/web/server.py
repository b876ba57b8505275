"""Running the dashboard: uvicorn in a thread of the daemon, restarted when it fails.

The web server is a consumer: when it crashes it is restarted (with backoff) and the
failure is reported in the daemon's state, but capture and analysis never wait for it and
the daemon's health check (systemd's watchdog) does not depend on it.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

from acquisition.clock import backoff
from monitoring.web.app import WebContext, create_app
from monitoring.web.security import parse_bind

log = logging.getLogger(__name__)


class WebServer:
    def __init__(self, ctx: WebContext, bind: str) -> None:
        self.ctx = ctx
        self.host, self.port = parse_bind(bind)
        self.app = create_app(ctx)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.restarts = 0
        self.last_error: str | None = None
        self.url: str | None = None
        self._bound = threading.Event()

    def start(self, timeout: float = 15.0) -> str:
        """Start serving; returns the URL once the socket is bound (port 0: a free one)."""
        self._thread = threading.Thread(target=self._run, name="web", daemon=True)
        self._thread.start()
        self._bound.wait(timeout)
        return self.url or f"http://{self.host}:{self.port}"

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        import uvicorn

        attempt = 0
        sock: socket.socket | None = None
        while not self._stop.is_set():
            try:
                if sock is None:
                    family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
                    sock = socket.socket(family, socket.SOCK_STREAM)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind((self.host, self.port))
                    sock.listen(128)
                    port = sock.getsockname()[1]
                    host = f"[{self.host}]" if ":" in self.host else self.host
                    self.url = f"http://{host}:{port}"
                    self._bound.set()
                config = uvicorn.Config(
                    self.app, log_level="warning", access_log=False, lifespan="off"
                )
                self._server = uvicorn.Server(config)
                self._server.install_signal_handlers = lambda: None  # the daemon owns signals
                self._server.run(sockets=[sock])
                attempt = 0
            except Exception as exc:  # a consumer: reported and restarted, never fatal
                attempt += 1
                self.restarts += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("dashboard server failed; restarting it")
                if sock is not None and not self._bound.is_set():
                    sock.close()
                    sock = None
                self._stop.wait(backoff(attempt, base=0.5, cap=30.0))
                continue
            if not self._stop.is_set():  # it returned on its own: start it again
                self.restarts += 1
                self._stop.wait(1.0)
        if sock is not None:
            sock.close()

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def state(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "alive": self.alive(),
            "restarts": self.restarts,
            "last_error": self.last_error,
        }


def wait_until_serving(url: str, timeout: float = 10.0) -> bool:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/api/health", timeout=2):
                return True
        except OSError:
            time.sleep(0.05)
    return False
