"""Queueing archived captures for re-analysis (after a threshold or layout change)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from acquisition.queue import Purpose, enqueue
from acquisition.store import Store, captures


def queue_reprocess(store: Store, since: datetime | None = None) -> list[int]:
    """One 'reprocess' job per capture made on or after ``since``; returns the job ids."""
    query = select(captures.c.id).order_by(captures.c.id)
    if since is not None:
        stamp = (since if since.tzinfo else since.replace(tzinfo=UTC)).isoformat()
        query = query.where(captures.c.captured_at >= stamp)
    with store.begin() as conn:
        ids = [int(i) for i in conn.execute(query).scalars()]
        return [
            enqueue(conn, capture_id, Purpose.REPROCESS, clock=store.clock) for capture_id in ids
        ]
