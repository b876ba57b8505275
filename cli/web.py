"""`serve`: the dashboard alone, read-only, on a store (e.g. a second machine on PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import click

from cli.common import CONFIG_OPTION, fail, open_store_or_fail
from errors import PlatewatchError


@click.command()
@CONFIG_OPTION
@click.option("--bind", help="host:port to listen on (default: [web] bind of the config).")
def serve(config: Path | None, bind: str | None) -> None:
    """Serve the dashboard read-only: pages, JSON API and /metrics, no acknowledging or
    re-analysing. Any bind other than 127.0.0.1 needs a token ([web] token or
    PLATEWATCH_TOKEN). Ctrl-C stops it."""
    import uvicorn

    from monitoring.metrics import metrics_text
    from monitoring.web.app import WebContext, create_app, published_state
    from monitoring.web.security import access_for, parse_bind

    settings, store = open_store_or_fail(config)
    address = bind or settings.web.bind
    try:
        access = access_for(address, settings.web.token, read_only=True)
        host, port = parse_bind(address)
    except PlatewatchError as exc:
        store.close()
        fail(str(exc))
    state = published_state(settings.service.state_dir)
    ctx = WebContext(
        store=store,
        settings=settings,
        access=access,
        state=state,
        metrics=metrics_text(store, state),
    )
    click.echo(f"platewatch dashboard (read-only) at http://{host}:{port}   Ctrl-C stops", err=True)
    try:
        uvicorn.run(create_app(ctx), host=host, port=port, log_level="warning", access_log=False)
    finally:
        store.close()
