"""Prometheus metrics, read from the store and the daemon's published state at each scrape.

The work is done in several processes (workers) and must survive restarts, so the figures
come from the durable tables rather than from in-process counters: captures per
instrument and kind, results per verdict, queue depth per state, the analysis latency
(capture → result) and the capture → alert latency as histograms, alerts sent and failed,
instruments online, timecourse reads missed. Every counter is monotonic because the rows
behind it are never deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import case, func, select

from acquisition.daemon_state import DaemonState
from acquisition.store import Store, alerts, captures, deliveries, jobs, planned_reads, results

BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)


class StoreCollector(Collector):
    def __init__(self, store: Store, state: Callable[[], DaemonState | None]) -> None:
        self.store = store
        self.state = state

    def _histogram(self, name: str, doc: str, delay: Any, *where: Any) -> HistogramMetricFamily:
        columns = [func.sum(case((delay <= le, 1), else_=0)) for le in BUCKETS]
        query = select(func.count(), func.coalesce(func.sum(delay), 0.0), *columns).where(*where)
        with self.store.engine.connect() as conn:
            row = conn.execute(query).one()
        total, summed, *cumulative = row
        buckets = [(str(le), float(n or 0)) for le, n in zip(BUCKETS, cumulative, strict=True)]
        buckets.append(("+Inf", float(total or 0)))
        return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=float(summed or 0.0))

    def collect(self) -> Iterator[Metric]:
        with self.store.engine.connect() as conn:
            captured = CounterMetricFamily(
                "platewatch_captures",
                "Captures (exports and driver reads)",
                labels=["instrument", "kind"],
            )
            for instrument, kind, n in conn.execute(
                select(captures.c.instrument, captures.c.kind, func.count()).group_by(
                    captures.c.instrument, captures.c.kind
                )
            ):
                captured.add_metric([str(instrument), str(kind)], float(n))
            yield captured
            analysed = CounterMetricFamily(
                "platewatch_results", "Stored results", labels=["kind", "verdict"]
            )
            for kind, verdict, n in conn.execute(
                select(results.c.kind, results.c.verdict, func.count()).group_by(
                    results.c.kind, results.c.verdict
                )
            ):
                analysed.add_metric([str(kind), str(verdict)], float(n))
            yield analysed
            found: dict[str, int] = {
                str(k): int(n)
                for k, n in conn.execute(select(jobs.c.state, func.count()).group_by(jobs.c.state))
            }
            queue = GaugeMetricFamily("platewatch_queue_jobs", "Jobs by state", labels=["state"])
            for name in sorted({"queued", "running", "done", "dead", *found}):
                queue.add_metric([name], float(found.get(name, 0)))
            yield queue
            sent = CounterMetricFamily(
                "platewatch_alerts_delivered", "Alert deliveries", labels=["state"]
            )
            for state, n in conn.execute(
                select(deliveries.c.state, func.count()).group_by(deliveries.c.state)
            ):
                sent.add_metric([str(state)], float(n))
            yield sent
            raised = CounterMetricFamily(
                "platewatch_alerts_raised", "Alerts raised", labels=["code", "kind"]
            )
            for code, kind, n in conn.execute(
                select(alerts.c.code, alerts.c.kind, func.count()).group_by(
                    alerts.c.code, alerts.c.kind
                )
            ):
                raised.add_metric([str(code), str(kind)], float(n))
            yield raised
            missed = conn.execute(
                select(func.count()).where(planned_reads.c.state == "missed")
            ).scalar_one()
            yield CounterMetricFamily(
                "platewatch_timecourse_reads_missed",
                "Planned timecourse reads that were missed",
                value=float(missed),
            )
        yield self._histogram(
            "platewatch_analysis_latency_seconds",
            "From capture to stored result (queue wait included)",
            jobs.c.updated_at - jobs.c.created_at,
            jobs.c.purpose == "analyze",
            jobs.c.state == "done",
        )
        first_job = (
            select(jobs.c.capture_id, func.min(jobs.c.created_at).label("captured"))
            .group_by(jobs.c.capture_id)
            .subquery()
        )
        with self.store.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(deliveries.c.sent_at - first_job.c.captured)
                    .select_from(deliveries)
                    .join(alerts, alerts.c.id == deliveries.c.alert_id)
                    .join(first_job, first_job.c.capture_id == alerts.c.capture_id)
                    .where(deliveries.c.state == "sent")
                )
                .scalars()
                .all()
            )
        counts = [sum(1 for v in rows if v is not None and v <= le) for le in BUCKETS]
        yield HistogramMetricFamily(
            "platewatch_capture_to_alert_seconds",
            "From capture to a delivered alert about it",
            buckets=[(str(le), float(n)) for le, n in zip(BUCKETS, counts, strict=True)]
            + [("+Inf", float(len(rows)))],
            sum_value=float(sum(v for v in rows if v is not None)),
        )
        daemon = self.state()
        online = GaugeMetricFamily(
            "platewatch_instruments_online",
            "Instruments the daemon sees",
            labels=["instrument", "via"],
        )
        daemon_up = GaugeMetricFamily(
            "platewatch_daemon_healthy", "1 when the daemon's health check passes"
        )
        if daemon is not None:
            for w in daemon.watchers:
                online.add_metric([w.instrument, "folder"], 1.0 if w.alive else 0.0)
            for r in daemon.readers:
                up = r.state not in ("offline", "error", "closed")
                online.add_metric([r.name, "driver"], 1.0 if up else 0.0)
            daemon_up.add_metric([], 1.0 if daemon.healthy else 0.0)
        else:
            daemon_up.add_metric([], 0.0)
        yield online
        yield daemon_up


def metrics_text(store: Store, state: Callable[[], DaemonState | None]) -> Callable[[], bytes]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store, state))

    def render() -> bytes:
        return generate_latest(registry)

    return render
