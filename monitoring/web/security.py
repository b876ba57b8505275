"""Who may see the dashboard and change things through it (DESIGN.md §7).

* The server binds 127.0.0.1 unless configured otherwise; any other bind requires a token
  (``[web] token`` or ``PLATEWATCH_TOKEN``). With a token, every request must carry it —
  ``Authorization: Bearer …`` (scripts), or the session cookie a browser gets by entering
  it once at ``/login`` — compared in constant time.
* State-changing requests are POST and carry a CSRF token (double submit: a random value
  in a SameSite=Strict cookie, repeated in the form or the ``X-CSRF-Token`` header), and
  their ``Origin``, when sent, must be this server.
* The read-only dashboard (``platewatch serve``) refuses every state change.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from dataclasses import dataclass

from errors import ConfigError

SESSION_COOKIE = "pw_session"
CSRF_COOKIE = "pw_csrf"
CSRF_HEADER = "x-csrf-token"


def parse_bind(bind: str) -> tuple[str, int]:
    """'127.0.0.1:8080' → ('127.0.0.1', 8080); '[::1]:8080' and ':8080' too (ConfigError)."""
    text = bind.strip()
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"web.bind: {bind!r} is not host:port", source="[web]")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Access:
    token: str  # "" = no token (loopback only)
    read_only: bool
    secret: bytes  # signs the session cookie

    @property
    def needs_token(self) -> bool:
        return bool(self.token)

    def token_ok(self, offered: str | None) -> bool:
        if not self.token or offered is None:
            return not self.token
        return hmac.compare_digest(offered.encode("utf-8"), self.token.encode("utf-8"))

    def session_value(self) -> str:
        """What the session cookie holds once the token was given: a MAC of the token."""
        return hmac.new(self.secret, self.token.encode("utf-8"), hashlib.sha256).hexdigest()

    def session_ok(self, cookie: str | None) -> bool:
        return (
            bool(self.token)
            and cookie is not None
            and hmac.compare_digest(cookie, self.session_value())
        )


def access_for(bind: str, token: str, *, read_only: bool) -> Access:
    """The access rule of a server at ``bind``; ConfigError when it would be open to a network."""
    host, _ = parse_bind(bind)
    token = token or os.environ.get("PLATEWATCH_TOKEN", "")
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"web.bind = {bind!r} is reachable from the network: set [web] token (or the "
            "PLATEWATCH_TOKEN environment variable), or bind 127.0.0.1",
            source="[web]",
        )
    return Access(token=token, read_only=read_only, secret=secrets.token_bytes(32))


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def csrf_ok(cookie: str | None, offered: str | None) -> bool:
    return bool(cookie) and bool(offered) and hmac.compare_digest(str(cookie), str(offered))
