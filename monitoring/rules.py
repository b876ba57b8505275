"""Alert rules: findings, quarantines, readers, missed reads and trends become outbox rows.

Rules that follow a result run inside the worker's transaction (the daemon hands them to
the workers), so an alert exists exactly when its result does. Each (subject, flag code)
alerts once until it is resolved — when a re-export no longer raises it, a "resolved"
message goes to the same destinations. The instrument and schedule rules run in the
daemon's threads, each in its own transaction. Delivery is ``monitoring.alerts``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, func, select

from acquisition.store import Store, alerts, control_points, deliveries, insert_row
from analysis.trends import ControlPoint, drift
from config.schema import Settings
from monitoring.alerts import destinations

if TYPE_CHECKING:
    from acquisition.capture import Capture
    from acquisition.kinds import Finding, JobContext

_TITLE_VERDICT = {"fail": "FAILED", "warn": "needs a look"}


def _open_codes(conn: Connection, key: str) -> dict[str, str]:
    """Codes alerted for this subject and not resolved since, with their severity."""
    latest = (
        select(alerts.c.code, func.max(alerts.c.id).label("last"))
        .where(alerts.c.plate_key == key)
        .group_by(alerts.c.code)
        .subquery()
    )
    rows = conn.execute(
        select(alerts.c.code, alerts.c.kind, alerts.c.severity).join(
            latest, and_(alerts.c.code == latest.c.code, alerts.c.id == latest.c.last)
        )
    ).all()
    return {code: severity for code, kind, severity in rows if kind != "resolved"}


def _add(conn: Connection, settings: Settings, t: float, **values: Any) -> None:
    alert_id = insert_row(conn, alerts, created_at=t, **values)
    for dest in destinations(settings, values["severity"]):
        conn.execute(
            deliveries.insert().values(
                alert_id=alert_id, destination=dest, state="pending", next_attempt_at=t
            )
        )


def alerts_for_result(
    conn: Connection,
    capture: Capture,
    stored: list[tuple[int, Finding]],
    ctx: JobContext,
) -> None:
    """The verdict rule: new warn/fail findings alert; findings gone from a re-export resolve."""
    t = ctx.clock.now()
    for _result_id, finding in stored:
        key = finding.key
        open_codes = _open_codes(conn, key)
        current = {f.code: f for f in finding.flags if f.severity != "info"}
        new = [f for code, f in current.items() if code not in open_codes]
        gone = [code for code in open_codes if code not in current]
        what = "" if finding.kind == "plate" else f"{finding.kind} "
        for flag in new:
            _add(
                conn,
                ctx.settings,
                t,
                plate_key=key,
                code=flag.code,
                severity=flag.severity,
                kind="finding",
                title=f"{what}{finding.name} {_TITLE_VERDICT.get(finding.verdict, finding.verdict)}",
                body=f"[{flag.severity}] {flag.code}: {flag.message}"
                + (
                    f" Wells: {', '.join(flag.wells[:12])}{' …' if len(flag.wells) > 12 else ''}."
                    if flag.wells
                    else ""
                ),
                capture_id=capture.id,
            )
        for code in gone:
            _add(
                conn,
                ctx.settings,
                t,
                plate_key=key,
                code=code,
                severity=open_codes[code],
                kind="resolved",
                title=f"{what}{finding.name}: resolved",
                body=f"{code} is gone: the new export {capture.file_name} no longer shows it "
                f"(verdict {finding.verdict}).",
                capture_id=capture.id,
            )
    control_trend_rule(conn, capture, stored, ctx)


def _control_series(conn: Connection, compound: str, cell_line: str) -> list[ControlPoint]:
    rows = conn.execute(
        select(
            control_points.c.at,
            control_points.c.ic50,
            control_points.c.qualifier,
            control_points.c.expected_low,
            control_points.c.expected_high,
            control_points.c.result_id,
        )
        .where(control_points.c.compound == compound, control_points.c.cell_line == cell_line)
        .order_by(control_points.c.at, control_points.c.id)
    ).all()
    return [
        ControlPoint(float(at), ic50, q, float(low or 0.0), high, int(rid))
        for at, ic50, q, low, high, rid in rows
    ]


def control_trend_rule(
    conn: Connection, capture: Capture, stored: list[tuple[int, Finding]], ctx: JobContext
) -> None:
    """The trend rule: record each control curve's IC50; alert a drift across plates.

    Every plate whose layout marks a control line (``expected_ic50``) adds a point; when
    the points of one compound × control line drift towards the edge of the range
    (``analysis.trends``), ``control_drift`` is raised once, and resolved when the drift
    is gone — typically weeks before a single plate fails ``control_out_of_range``.
    """
    t = ctx.clock.now()
    for result_id, finding in stored:
        if finding.kind != "plate":
            continue
        z_prime = (finding.body.get("qc") or {}).get("z_prime")
        for curve in finding.body.get("curves") or []:
            expected = curve.get("expected_ic50")
            group = curve.get("group") or {}
            if not expected or expected.get("source") != "layout" or not group.get("compound"):
                continue
            compound, line = str(group["compound"]), str(group.get("cell_line") or "")
            fitted = curve.get("converged") and curve.get("response") != "none"
            conn.execute(
                control_points.insert().values(
                    result_id=result_id,
                    instrument=capture.instrument,
                    compound=compound,
                    cell_line=line,
                    unit=curve.get("unit"),
                    ic50=curve.get("ic50") if fitted else None,
                    qualifier=curve.get("ic50_qualifier") if fitted else None,
                    expected_low=expected.get("low"),
                    expected_high=expected.get("high"),
                    z_prime=z_prime,
                    at=t,
                )
            )
            _drift_alert(conn, ctx, capture, compound, line, curve.get("unit") or "")


def _drift_alert(
    conn: Connection, ctx: JobContext, capture: Capture, compound: str, line: str, unit: str
) -> None:
    key = f"trend:{compound}:{line}"
    found = drift(_control_series(conn, compound, line))
    is_open = "control_drift" in _open_codes(conn, key)
    t = ctx.clock.now()
    if found is None:
        if is_open:
            _add(
                conn,
                ctx.settings,
                t,
                plate_key=key,
                code="control_drift",
                severity="warning",
                kind="resolved",
                title=f"control line {line} × {compound}: drift resolved",
                body=f"control_drift is gone: the IC50 of {line} no longer trends out of its range "
                f"(latest plate {capture.file_name}).",
                capture_id=capture.id,
            )
        return
    if is_open:
        return
    side = "above" if found.direction == "up" else "below"
    when = (
        "has reached it"
        if found.plates_to_bound <= 0
        else f"reaches it in about {found.plates_to_bound:.0f} more plate(s)"
    )
    _add(
        conn,
        ctx.settings,
        t,
        plate_key=key,
        code="control_drift",
        severity="warning",
        kind="finding",
        title=f"control line {line} × {compound}: IC50 drifting {found.direction}",
        body=f"[warning] control_drift: over the last {found.points} plates the IC50 of {line} "
        f"changes {found.change_per_plate * 100:+.1f} % per plate (p = {found.p:.1g}); the trend "
        f"stands at {found.fitted_now:.3g} {unit} and {when} {side} its expected range "
        f"(bound {found.bound:.3g} {unit}). A reagent losing activity (a {compound} lot or vial "
        "ageing) or a drifting control culture: compare lots, start a fresh vial, and check the "
        "control cells' passage before single plates start to fail.",
        capture_id=capture.id,
    )


def alert_for_quarantine(conn: Connection, capture: Capture, reason: str, ctx: JobContext) -> None:
    """The quarantine rule: an unreadable export always alerts (critical)."""
    _add(
        conn,
        ctx.settings,
        ctx.clock.now(),
        plate_key=f"{capture.instrument}:{capture.file_name}",
        code="quarantined",
        severity="critical",
        kind="quarantine",
        title=f"unreadable export {capture.file_name} ({capture.instrument})",
        body=f"{reason}. The original is untouched; a copy is in quarantine/ under "
        f"{ctx.settings.service.state_dir}. Re-export the plate or fix the layout, then drop the file again.",
        capture_id=capture.id,
    )


def reader_alert(
    store: Store,
    settings: Settings,
    *,
    code: str,
    severity: str,
    reader: str,
    message: str,
    resolved: bool,
) -> bool:
    """The instrument rule: a reader went offline / errs (once until resolved), or is back.

    Called from the daemon's reader threads (their own transaction). Returns whether an
    alert row was written (repeats of an open alert and resolutions of nothing are not).
    """
    key = f"reader:{reader}"
    t = store.now()
    with store.begin() as conn:
        open_codes = _open_codes(conn, key)
        if resolved:
            if code not in open_codes:
                return False
            _add(
                conn,
                settings,
                t,
                plate_key=key,
                code=code,
                severity=open_codes[code],
                kind="resolved",
                title=f"reader {reader}: resolved",
                body=f"{code} is gone: {message}",
                capture_id=None,
            )
            return True
        if code in open_codes:
            return False
        what = "is offline" if code == "reader_offline" else "reports an error"
        _add(
            conn,
            settings,
            t,
            plate_key=key,
            code=code,
            severity=severity,
            kind="finding",
            title=f"reader {reader} {what}",
            body=f"[{severity}] {code}: {message}. Check the cable, the adapter and the "
            "instrument's power; platewatch reconnects by itself and says when it is back.",
            capture_id=None,
        )
        return True


def read_missed_alert(
    store: Store,
    settings: Settings,
    *,
    timecourse_id: int,
    name: str,
    reader: str | None,
    indices: tuple[int, ...],
    due: tuple[float, ...],
    at_startup: bool,
) -> None:
    """The schedule rule: planned reads that were missed, one alert per batch (each read
    is missed exactly once, so it is alerted exactly once)."""
    from acquisition.clock import iso_utc

    shown = ", ".join(
        f"#{i} (due {iso_utc(t)[:19].replace('T', ' ')} UTC)"
        for i, t in zip(indices[:8], due[:8], strict=False)
    )
    more = f" and {len(indices) - 8} more" if len(indices) > 8 else ""
    why = (
        "while the daemon was not running"
        if at_startup
        else "within their grace (the reader was busy, offline or failing)"
    )
    with store.begin() as conn:
        _add(
            conn,
            settings,
            store.now(),
            plate_key=f"timecourse:{timecourse_id}:missed:{indices[0]}",
            code="read_missed",
            severity="warning",
            kind="finding",
            title=f"timecourse {name}: {len(indices)} planned read(s) missed",
            body=f"[warning] read_missed: {len(indices)} read(s) of timecourse {name} on "
            f"{reader or 'its reader'} were not performed {why}: {shown}{more}. The next reads "
            "go ahead as planned; check the reader and the daemon if this repeats.",
            capture_id=None,
        )
