"""The dashboard and its JSON API (FastAPI): server-rendered pages, live by server-sent events.

Pages: overview (``/``), plate (``/plates/{id}``), timecourses, cytometry, trends, alerts.
Each page's live part is also served alone (``/fragment/…``); the small script of
``static/app.js`` listens to ``/api/events`` and re-fetches the fragment when the store
changes, so pages update without a reload. The JSON API lives under ``/api/`` (OpenAPI at
``/openapi.json``); Prometheus metrics at ``/metrics``. Security: ``security.py``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from acquisition.daemon_state import DaemonState, load_state
from acquisition.store import Store
from config.schema import Settings
from monitoring.web import pages, queries
from monitoring.web.security import (
    CSRF_COOKIE,
    CSRF_HEADER,
    SESSION_COOKIE,
    Access,
    csrf_ok,
    new_csrf,
)

HERE = Path(__file__).resolve().parent
RowId = Annotated[int, PathParam(ge=0, le=2**62)]  # a database id (SQLite integers are 64-bit)
Limit = Annotated[int, Query(ge=1, le=2000)]
MAX_LAYOUT_UPLOAD = 256 * 1024


@dataclass
class WebContext:
    store: Store
    settings: Settings
    access: Access
    state: Callable[[], DaemonState | None]  # the live daemon state (None: not running here)
    metrics: Callable[[], bytes] | None = None
    poll_seconds: float = 1.0

    @property
    def state_dir(self) -> Path:
        return self.settings.service.state_dir.resolve()


def published_state(state_dir: Path) -> Callable[[], DaemonState | None]:
    """The state a running daemon publishes (for ``platewatch serve``)."""

    def read() -> DaemonState | None:
        state, running = load_state(state_dir, time.time())
        return state if running else None

    return read


def create_app(ctx: WebContext) -> FastAPI:
    app = FastAPI(
        title="platewatch",
        summary="Plate and cytometry results, alerts, instruments and timecourses",
        docs_url=None,  # Swagger UI loads from a CDN: the lab network may be closed
        redoc_url=None,
    )
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals["read_only"] = ctx.access.read_only
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    api_paths = ("/api/", "/metrics", "/openapi.json")

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Any]) -> Response:
        path = request.url.path
        if ctx.access.needs_token and not path.startswith(("/static/", "/login")):
            bearer = request.headers.get("authorization", "")
            offered = bearer[7:] if bearer.lower().startswith("bearer ") else None
            if not (
                ctx.access.token_ok(offered)
                or ctx.access.session_ok(request.cookies.get(SESSION_COOKIE))
            ):
                if path.startswith(api_paths):
                    return JSONResponse({"detail": "a token is required"}, status_code=401)
                return RedirectResponse(f"/login?next={path}", status_code=303)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            origin = request.headers.get("origin")
            if origin and origin.rstrip("/") != str(request.base_url).rstrip("/"):
                return JSONResponse({"detail": "cross-origin request refused"}, status_code=403)
        response: Response = await call_next(request)
        if CSRF_COOKIE not in request.cookies:
            response.set_cookie(
                CSRF_COOKIE,
                request.state.csrf if hasattr(request.state, "csrf") else new_csrf(),
                httponly=False,
                samesite="strict",
            )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
            "frame-ancestors 'none'",
        )
        return response

    def csrf_token(request: Request) -> str:
        token = request.cookies.get(CSRF_COOKIE)
        if not token:
            token = new_csrf()
            request.state.csrf = token
        return token

    def require_change(request: Request, offered: str | None) -> None:
        if ctx.access.read_only:
            raise HTTPException(403, "this dashboard is read-only (platewatch serve)")
        if not csrf_ok(
            request.cookies.get(CSRF_COOKIE), offered or request.headers.get(CSRF_HEADER)
        ):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")

    def render(request: Request, name: str, **values: Any) -> HTMLResponse:
        values.setdefault("live", None)
        return templates.TemplateResponse(request, name, {"csrf": csrf_token(request), **values})

    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        return await run_in_threadpool(fn, *args)

    # -- pages -----------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def overview_page(request: Request) -> HTMLResponse:
        data = await run(pages.overview, ctx.store, ctx.state())
        return render(request, "overview.html", live="/fragment/overview", **data)

    @app.get("/fragment/overview", response_class=HTMLResponse, include_in_schema=False)
    async def overview_fragment(request: Request) -> HTMLResponse:
        data = await run(pages.overview, ctx.store, ctx.state())
        return render(request, "overview_live.html", **data)

    @app.get("/plates/{result_id}", response_class=HTMLResponse, include_in_schema=False)
    async def plate_page(request: Request, result_id: RowId) -> HTMLResponse:
        data = await run(pages.plate, ctx.store, result_id, ctx.settings)
        if data is None:
            raise HTTPException(404, f"no result {result_id}")
        return render(request, "plate.html", live=f"/fragment/plates/{result_id}", **data)

    @app.get("/fragment/plates/{result_id}", response_class=HTMLResponse, include_in_schema=False)
    async def plate_fragment(request: Request, result_id: RowId) -> HTMLResponse:
        data = await run(pages.plate, ctx.store, result_id, ctx.settings)
        if data is None:
            raise HTTPException(404, f"no result {result_id}")
        return render(request, "plate_live.html", **data)

    @app.post("/plates/{result_id}/reanalyse", include_in_schema=False)
    async def reanalyse(
        request: Request,
        result_id: RowId,
        csrf: Annotated[str, Form()] = "",
        layout_name: Annotated[str, Form()] = "",
        layout_file: Annotated[UploadFile | None, File()] = None,
    ) -> Response:
        require_change(request, csrf)
        detail = await run(queries.result_detail, ctx.store, result_id)
        if detail is None:
            raise HTTPException(404, f"no result {result_id}")
        if layout_file is not None and layout_file.filename:
            data = await layout_file.read(MAX_LAYOUT_UPLOAD + 1)
            if len(data) > MAX_LAYOUT_UPLOAD:
                raise HTTPException(413, f"a layout is at most {MAX_LAYOUT_UPLOAD // 1024} kB")
            layout = await run(
                pages.save_uploaded_layout, ctx.state_dir, layout_file.filename, data
            )
        else:
            layout = pages.known_layouts(ctx.settings).get(layout_name)
            if layout is None:
                raise HTTPException(400, "pick one of the listed layouts or upload one")
        job_id = await run(queries.queue_reanalysis, ctx.store, int(detail["capture_id"]), layout)
        return RedirectResponse(f"/plates/{result_id}?queued={job_id}", status_code=303)

    @app.get("/alerts", response_class=HTMLResponse, include_in_schema=False)
    async def alerts_page(request: Request) -> HTMLResponse:
        data = await run(pages.alerts, ctx.store)
        return render(request, "alerts.html", live="/fragment/alerts", **data)

    @app.get("/fragment/alerts", response_class=HTMLResponse, include_in_schema=False)
    async def alerts_fragment(request: Request) -> HTMLResponse:
        return render(request, "alerts_live.html", **(await run(pages.alerts, ctx.store)))

    @app.post("/alerts/{alert_id}/ack", include_in_schema=False)
    async def ack_form(
        request: Request, alert_id: RowId, csrf: Annotated[str, Form()] = ""
    ) -> Response:
        require_change(request, csrf)
        await run(queries.acknowledge, ctx.store, alert_id, "dashboard")
        return RedirectResponse("/alerts", status_code=303)

    @app.get("/trends", response_class=HTMLResponse, include_in_schema=False)
    async def trends_page(request: Request) -> HTMLResponse:
        data = await run(pages.trends, ctx.store)
        return render(request, "trends.html", live="/fragment/trends", **data)

    @app.get("/fragment/trends", response_class=HTMLResponse, include_in_schema=False)
    async def trends_fragment(request: Request) -> HTMLResponse:
        return render(request, "trends_live.html", **(await run(pages.trends, ctx.store)))

    @app.get("/timecourses", response_class=HTMLResponse, include_in_schema=False)
    async def timecourses_page(request: Request) -> HTMLResponse:
        data = await run(pages.timecourses, ctx.store)
        return render(request, "timecourses.html", live="/fragment/timecourses", **data)

    @app.get("/fragment/timecourses", response_class=HTMLResponse, include_in_schema=False)
    async def timecourses_fragment(request: Request) -> HTMLResponse:
        return render(request, "timecourses_live.html", **(await run(pages.timecourses, ctx.store)))

    @app.get("/timecourses/{tc_id}", response_class=HTMLResponse, include_in_schema=False)
    async def timecourse_page(request: Request, tc_id: RowId) -> HTMLResponse:
        data = await run(pages.timecourse, ctx.store, tc_id)
        if data is None:
            raise HTTPException(404, f"no timecourse {tc_id}")
        return render(request, "timecourse.html", live=f"/fragment/timecourses/{tc_id}", **data)

    @app.get("/fragment/timecourses/{tc_id}", response_class=HTMLResponse, include_in_schema=False)
    async def timecourse_fragment(request: Request, tc_id: RowId) -> HTMLResponse:
        data = await run(pages.timecourse, ctx.store, tc_id)
        if data is None:
            raise HTTPException(404, f"no timecourse {tc_id}")
        return render(request, "timecourse_live.html", **data)

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    async def login_page(request: Request, next: str = "/") -> HTMLResponse:
        return render(request, "login.html", next=next if next.startswith("/") else "/", error=None)

    @app.post("/login", include_in_schema=False)
    async def login(
        request: Request, token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/"
    ) -> Response:
        if not ctx.access.needs_token:
            return RedirectResponse("/", status_code=303)
        if not ctx.access.token_ok(token):
            return render(request, "login.html", next=next, error="wrong token")
        target = next if next.startswith("/") and not next.startswith("//") else "/"
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE, ctx.access.session_value(), httponly=True, samesite="strict"
        )
        return response

    # -- files (only inside the state directory) ----------------------------------------------
    @app.get("/files/report/{result_id}.{ext}", include_in_schema=False)
    async def report_file(result_id: RowId, ext: str) -> FileResponse:
        if ext not in ("png", "html"):
            raise HTTPException(404, "no such report file")
        detail = await run(queries.result_detail, ctx.store, result_id)
        report = (detail or {}).get("report") or {}
        return _state_file(ctx, report.get(ext), "report")

    @app.get("/files/archive/{result_id}", include_in_schema=False)
    async def archive_file(result_id: RowId) -> FileResponse:
        detail = await run(queries.result_detail, ctx.store, result_id)
        if detail is None:
            raise HTTPException(404, f"no result {result_id}")
        return _state_file(
            ctx, detail["archive_path"], "archived file", download=detail["file_name"]
        )

    # -- API -----------------------------------------------------------------------------------
    @app.get("/api/health")
    async def api_health() -> dict[str, Any]:
        state = ctx.state()
        return {"daemon": asdict(state) if state else None, "read_only": ctx.access.read_only}

    @app.get("/api/overview")
    async def api_overview() -> dict[str, Any]:
        data = await run(pages.overview, ctx.store, ctx.state())
        return {
            k: v
            for k, v in data.items()
            if k in ("results", "instruments", "queue", "open_alerts", "daemon")
        }

    @app.get("/api/results")
    async def api_results(
        limit: Limit = 50, kind: Annotated[str | None, Query(max_length=40)] = None
    ) -> list[dict[str, Any]]:
        return await run(queries.latest_results, ctx.store, limit, kind)  # type: ignore[no-any-return]

    @app.get("/api/results/{result_id}")
    async def api_result(result_id: RowId) -> dict[str, Any]:
        detail = await run(queries.result_detail, ctx.store, result_id)
        if detail is None:
            raise HTTPException(404, f"no result {result_id}")
        return {k: v for k, v in detail.items() if k not in ("archive_path",)}

    @app.get("/api/alerts")
    async def api_alerts(open: bool = True, limit: Limit = 200) -> list[dict[str, Any]]:
        fn = queries.open_alerts if open else queries.all_alerts
        return await run(fn, ctx.store, limit)  # type: ignore[no-any-return]

    @app.post("/api/alerts/{alert_id}/ack")
    async def api_ack(request: Request, alert_id: RowId) -> dict[str, Any]:
        require_change(request, None)
        changed = await run(queries.acknowledge, ctx.store, alert_id, "api")
        return {"alert_id": alert_id, "acknowledged": changed}

    @app.get("/api/trends")
    async def api_trends() -> list[dict[str, Any]]:
        return await run(queries.trends, ctx.store)  # type: ignore[no-any-return]

    @app.get("/api/timecourses")
    async def api_timecourses() -> list[dict[str, Any]]:
        from acquisition.timecourses import list_timecourses

        return await run(list_timecourses, ctx.store)  # type: ignore[no-any-return]

    @app.get("/api/timecourses/{tc_id}")
    async def api_timecourse(tc_id: RowId) -> dict[str, Any]:
        from acquisition.timecourses import list_timecourses

        rows = await run(list_timecourses, ctx.store, tc_id)
        if not rows:
            raise HTTPException(404, f"no timecourse {tc_id}")
        return rows[0]  # type: ignore[no-any-return]

    @app.get("/api/instruments")
    async def api_instruments() -> list[dict[str, Any]]:
        data = await run(pages.overview, ctx.store, ctx.state())
        return data["instruments"]  # type: ignore[no-any-return]

    @app.get("/api/events")
    async def api_events(request: Request) -> StreamingResponse:
        async def stream() -> AsyncIterator[bytes]:
            last: tuple[int, ...] | None = None
            yield b"retry: 2000\n\n"
            while not await request.is_disconnected():
                marker = await run(queries.change_marker, ctx.store)
                if marker != last:
                    payload = json.dumps({"marker": list(marker), "at": time.time()})
                    yield f"event: change\ndata: {payload}\n\n".encode()
                    last = marker
                else:
                    yield b": keep-alive\n\n"
                await asyncio.sleep(ctx.poll_seconds)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        if ctx.metrics is None:
            raise HTTPException(404, "metrics are not enabled")
        body = await run(ctx.metrics)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


def _state_file(
    ctx: WebContext, path: str | None, what: str, download: str | None = None
) -> FileResponse:
    """A file the store names, served only when it lies inside the state directory."""
    if not path:
        raise HTTPException(404, f"no {what} yet")
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(ctx.state_dir) or not resolved.is_file():
        raise HTTPException(404, f"no {what}")
    headers = {
        "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    }
    if download:
        return FileResponse(resolved, filename=download, headers=headers)
    return FileResponse(resolved, headers=headers)
