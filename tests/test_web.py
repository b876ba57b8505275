"""The dashboard and its API (issue #15): every endpoint, the token rule, CSRF, paths,
the read-only server, Prometheus metrics, and schemathesis against the OpenAPI description."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from acquisition.capture import Capturer
from acquisition.kinds import JobContext
from acquisition.pipeline import references
from acquisition.queue import claim
from acquisition.store import Store, open_store
from acquisition.worker import Hooks, process_job
from config.schema import Settings
from monitoring.metrics import metrics_text
from monitoring.rules import alert_for_quarantine, alerts_for_result
from monitoring.web.app import WebContext
from monitoring.web.security import access_for
from monitoring.web.server import WebServer, wait_until_serving

ROOT = Path(__file__).resolve().parent.parent
LAYOUT = ROOT / "config" / "layouts" / "mtt-96.toml"
EXAMPLES = ("mtt_plate_clean.txt", "mtt_plate_edge_effect.txt", "mtt_plate_failed.txt")


@dataclass
class Site:
    url: str
    store: Store
    settings: Settings
    inbox: Path

    def analyse(self, *names: str) -> None:
        capturer = Capturer(self.store, self.settings.service.state_dir)
        for name in names:
            target = self.inbox / name
            data = (ROOT / "examples" / name.split("__")[-1]).read_bytes()
            if "__" in name:  # a re-export of another plate: new bytes, a new capture
                data = data.replace(b"Plate Number\tPlate ", b"Plate Number\tPlate 9")
            target.write_bytes(data)
            capturer.capture("reader-1", target)
        ctx = JobContext(self.store, self.settings, references(self.settings))
        hooks = Hooks(on_result=alerts_for_result, on_dead=alert_for_quarantine)
        while (job := claim(self.store, "t", 60)) is not None:
            process_job(ctx, job, hooks)


def _settings(tmp_path: Path) -> Settings:
    return Settings.model_validate(
        {
            "service": {"state_dir": str(tmp_path / "state")},
            "store": {"url": f"sqlite:///{tmp_path / 'state' / 'p.db'}"},
            "watch": [
                {"path": str(tmp_path / "inbox"), "instrument": "reader-1", "layout": str(LAYOUT)}
            ],
            "alerts": {"console": False},
        }
    )


def _serve(
    settings: Settings,
    store: Store,
    *,
    token: str = "",
    read_only: bool = False,
    bind: str = "127.0.0.1:0",
) -> WebServer:
    ctx = WebContext(
        store=store,
        settings=settings,
        access=access_for(bind, token, read_only=read_only),
        state=lambda: None,
        metrics=metrics_text(store, lambda: None),
        poll_seconds=0.2,
    )
    server = WebServer(ctx, bind)
    url = server.start()
    assert wait_until_serving(url) or token, url
    return server


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    settings = _settings(tmp_path)
    (tmp_path / "inbox").mkdir()
    store = open_store(settings.store.url)
    server = _serve(settings, store)
    s = Site(server.url or "", store, settings, tmp_path / "inbox")
    s.analyse(*EXAMPLES)
    try:
        yield s
    finally:
        server.stop()
        store.close()


def get(
    url: str, headers: dict[str, str] | None = None, opener: Any = None
) -> tuple[int, bytes, Any]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with (opener or urllib.request.build_opener()).open(request, timeout=20) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers


def post(
    url: str, data: bytes = b"", headers: dict[str, str] | None = None, opener: Any = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method="POST", headers=headers or {})
    try:
        with (opener or urllib.request.build_opener()).open(request, timeout=20) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_every_page_and_endpoint_answers(site: Site) -> None:
    for path in (
        "/",
        "/alerts",
        "/trends",
        "/timecourses",
        "/plates/1",
        "/fragment/overview",
        "/fragment/plates/3",
    ):
        status, body, _ = get(site.url + path)
        assert status == 200, (path, body[:200])
        assert b'<script src="/static/app.js">' in body or path.startswith("/fragment")
    status, body, _ = get(site.url + "/")
    for name in EXAMPLES:
        assert name.encode() in body
    for verdict in (b"pass", b"warn", b"fail"):
        assert b'class="badge ' + verdict + b'"' in body
    assert b"edge_effect" in body and b"control_out_of_range" in body
    status, body, _ = get(site.url + "/plates/3")
    assert b"saturated_wells" in body and b"Dilute" in body  # flags with cause and action
    api = {
        "/api/health": dict,
        "/api/overview": dict,
        "/api/results": list,
        "/api/results/2": dict,
        "/api/alerts": list,
        "/api/alerts?open=false": list,
        "/api/trends": list,
        "/api/timecourses": list,
        "/api/instruments": list,
    }
    for path, kind in api.items():
        status, body, headers = get(site.url + path)
        assert status == 200 and headers["content-type"].startswith("application/json"), path
        assert isinstance(json.loads(body), kind), path
    results = json.loads(get(site.url + "/api/results")[1])
    assert {r["verdict"] for r in results} == {"pass", "warn", "fail"}
    assert get(site.url + "/api/results/999")[0] == 404
    assert get(site.url + "/api/timecourses/5")[0] == 404
    status, body, _ = get(site.url + "/openapi.json")
    assert status == 200 and "/api/results" in json.loads(body)["paths"]
    status, png, headers = get(site.url + "/files/report/1.png")
    assert status == 200 and png[:4] == b"\x89PNG"
    status, data, _ = get(site.url + "/files/archive/1")
    assert status == 200 and data == (ROOT / "examples" / EXAMPLES[0]).read_bytes()


def test_paths_never_leave_the_state_directory(site: Site, tmp_path: Path) -> None:
    for path in (
        "/files/report/1.txt",
        "/files/report/..%2F..%2Fetc%2Fpasswd",
        "/files/archive/..%2F1",
        "/static/../../../etc/passwd",
        "/static/%2e%2e/%2e%2e/config/platewatch.toml",
    ):
        status, body, _ = get(site.url + path)
        assert status in (400, 404, 422), (path, status)
        assert b"root:" not in body and b"[service]" not in body
    # a result whose stored report path points outside the state dir is refused
    from sqlalchemy import update

    from acquisition.store import results

    with site.store.begin() as conn:
        conn.execute(
            update(results)
            .where(results.c.id == 1)
            .values(report=json.dumps({"png": "/etc/passwd"}))
        )
    assert get(site.url + "/files/report/1.png")[0] == 404


def _csrf_opener(url: str) -> tuple[Any, str]:
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    get(url + "/alerts", opener=opener)
    token = next(c.value for c in jar if c.name == "pw_csrf")
    return opener, token


def test_acknowledging_needs_post_and_the_csrf_token(site: Site) -> None:
    alerts = json.loads(get(site.url + "/api/alerts")[1])
    first = alerts[0]["id"]
    assert get(site.url + f"/api/alerts/{first}/ack")[0] == 405  # GET never changes state
    assert post(site.url + f"/api/alerts/{first}/ack")[0] == 403  # no CSRF token
    opener, token = _csrf_opener(site.url)
    assert (
        post(
            site.url + f"/api/alerts/{first}/ack", headers={"X-CSRF-Token": "wrong"}, opener=opener
        )[0]
        == 403
    )
    status, body = post(
        site.url + f"/api/alerts/{first}/ack",
        headers={"X-CSRF-Token": token, "Origin": "http://evil.example"},
        opener=opener,
    )
    assert status == 403 and b"cross-origin" in body
    status, body = post(
        site.url + f"/api/alerts/{first}/ack", headers={"X-CSRF-Token": token}, opener=opener
    )
    assert status == 200 and json.loads(body)["acknowledged"] is True
    remaining = {a["id"] for a in json.loads(get(site.url + "/api/alerts")[1])}
    assert first not in remaining
    form = f"csrf={token}".encode()
    second = next(iter(remaining))
    status, _ = post(
        site.url + f"/alerts/{second}/ack",
        form,
        {"Content-Type": "application/x-www-form-urlencoded"},
        opener,
    )
    assert status in (200, 303)


def test_reanalysis_with_an_uploaded_layout_is_parsed_and_size_limited(site: Site) -> None:
    opener, token = _csrf_opener(site.url)
    boundary = "pwboundary"

    def form(filename: str, content: bytes) -> bytes:
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{token}\r\n'.encode(),
            f'--{boundary}\r\nContent-Disposition: form-data; name="layout_file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + content
            + b"\r\n",
            f"--{boundary}--\r\n".encode(),
        ]
        return b"".join(parts)

    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    status, body = post(
        site.url + "/plates/1/reanalyse",
        form("evil.toml", b"[meta]\ninclude = '/etc/passwd'\n"),
        headers,
        opener,
    )
    assert status == 400 and b"include" in body
    status, body = post(
        site.url + "/plates/1/reanalyse",
        form("junk.toml", b"\x00\x01 not a layout"),
        headers,
        opener,
    )
    assert status == 400 and b"not a usable layout" in body
    status, _ = post(
        site.url + "/plates/1/reanalyse", form("big.toml", b"#" * 300_000), headers, opener
    )
    assert status == 413
    status, _ = post(
        site.url + "/plates/1/reanalyse", form("mtt.toml", LAYOUT.read_bytes()), headers, opener
    )
    assert status in (200, 303)
    job = claim(site.store, "t", 60)
    assert job is not None and job.purpose == "reanalyse" and job.params["layout"].endswith(".toml")


def test_a_network_bind_needs_a_token_compared_in_constant_time(tmp_path: Path) -> None:
    from errors import ConfigError

    with pytest.raises(ConfigError, match="token"):
        access_for("0.0.0.0:8080", "", read_only=False)
    settings = _settings(tmp_path)
    store = open_store(settings.store.url)
    server = _serve(settings, store, token="s3cret-token", bind="0.0.0.0:0")
    url = (server.url or "").replace("0.0.0.0", "127.0.0.1")
    try:
        assert get(url + "/api/results")[0] == 401
        assert get(url + "/api/results", {"Authorization": "Bearer nope"})[0] == 401
        assert get(url + "/api/results", {"Authorization": "Bearer s3cret-token"})[0] == 200
        assert get(url + "/metrics")[0] == 401
        status, body, _ = get(url + "/")
        assert status == 200 and b"Sign in" in body  # the browser is sent to the login page
        jar = CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        assert (
            post(
                url + "/login",
                b"token=wrong&next=/",
                {"Content-Type": "application/x-www-form-urlencoded"},
                opener,
            )[1].find(b"wrong token")
            >= 0
        )
        post(
            url + "/login",
            b"token=s3cret-token&next=/",
            {"Content-Type": "application/x-www-form-urlencoded"},
            opener,
        )
        status, body, _ = get(url + "/api/results", opener=opener)
        assert status == 200  # the session cookie carries the token's MAC, not the token
        assert all("s3cret" not in c.value for c in jar)
    finally:
        server.stop()
        store.close()


def test_the_read_only_dashboard_refuses_every_change(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    store = open_store(settings.store.url)
    server = _serve(settings, store, read_only=True)
    try:
        opener, token = _csrf_opener(server.url or "")
        status, body = post(
            (server.url or "") + "/api/alerts/1/ack", headers={"X-CSRF-Token": token}, opener=opener
        )
        assert status == 403 and b"read-only" in body
        assert b"Acknowledge" not in get((server.url or "") + "/alerts")[1]
    finally:
        server.stop()
        store.close()


def _metrics(url: str) -> dict[str, float]:
    status, body, headers = get(url + "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            key = sample.name + json.dumps(sample.labels, sort_keys=True)
            out[key] = sample.value
    return out


def test_metrics_parse_and_move_when_files_arrive(site: Site) -> None:
    before = _metrics(site.url)
    captures = '{"instrument": "reader-1", "kind": "plate"}'
    assert before["platewatch_captures_total" + captures] == 3
    assert before["platewatch_analysis_latency_seconds_count{}"] == 3
    site.analyse("second__mtt_plate_edge_effect.txt")
    after = _metrics(site.url)
    assert after["platewatch_captures_total" + captures] == 4
    assert (
        after['platewatch_results_total{"kind": "plate", "verdict": "warn"}']
        == before['platewatch_results_total{"kind": "plate", "verdict": "warn"}'] + 1
    )
    assert after["platewatch_analysis_latency_seconds_count{}"] == 4
    assert any(k.startswith("platewatch_queue_jobs") for k in after)
    assert any(
        k.startswith("platewatch_alerts_delivered") or k.startswith("platewatch_alerts_raised")
        for k in after
    )


def test_schemathesis_finds_no_server_error(site: Site) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(site.url + "/openapi.json")
    failures = []
    for operation in schema.get_all_operations():
        op = operation.ok()
        if op.method.upper() != "GET" or op.path == "/api/events":
            continue
        strategy = op.as_strategy()

        @settings(
            max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        @given(case=strategy)
        def check(case: Any) -> None:
            response = case.call(base_url=site.url)
            if response.status_code >= 500:
                failures.append((case.path, case.query, response.status_code))

        check()
    assert not failures, failures[:5]


def test_platewatch_serve_is_a_read_only_dashboard(site: Site, tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "serve.toml"
    config.write_text(
        f'[service]\nstate_dir = "{site.settings.service.state_dir}"\n[store]\nurl = "{site.settings.store.url}"\n'
    )
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "service.py"), "serve", "--config", str(config), "--bind", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_until_serving(url, timeout=30)
        assert len(json.loads(get(url + "/api/results")[1])) == 3
        opener, token = _csrf_opener(url)
        assert (
            post(url + "/api/alerts/1/ack", headers={"X-CSRF-Token": token}, opener=opener)[0]
            == 403
        )
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        proc.stderr.close()  # type: ignore[union-attr]
    wide = subprocess.run(
        [sys.executable, str(ROOT / "service.py"), "serve", "--config", str(config), "--bind", "0.0.0.0:8099"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert wide.returncode == 2 and "token" in wide.stderr
