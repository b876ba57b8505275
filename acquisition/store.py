"""The durable store: captures, jobs, results, flags, alerts and planned reads.

SQLAlchemy 2 Core on SQLite (the default: WAL, ``synchronous=FULL``, every transaction
``BEGIN IMMEDIATE`` so a claim can never race another writer) or PostgreSQL by URL
(psycopg 3; claims use ``FOR UPDATE SKIP LOCKED``). The schema carries a version and is
brought forward by numbered migrations; rows hold versioned JSON, never pickles.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    insert,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from acquisition.clock import SYSTEM_CLOCK, Clock, iso_utc
from analysis.model import jsonable
from errors import PlatewatchError

SCHEMA_VERSION = 4
RESULT_FORMAT = 2  # version of the JSON stored in results.body (2: with the report's grid)

metadata = MetaData()

schema_info = Table("schema_info", metadata, Column("version", Integer, nullable=False))

captures = Table(
    "captures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("instrument", String(200), nullable=False),
    Column("source_path", Text, nullable=False),
    Column("file_name", String(500), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("archive_path", Text, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("captured_at", String(40), nullable=False),
    UniqueConstraint("instrument", "sha256", name="uq_capture_instrument_sha"),
)
Index("ix_captures_source", captures.c.instrument, captures.c.source_path)
Index("ix_captures_instrument_time", captures.c.instrument, captures.c.captured_at)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("capture_id", Integer, ForeignKey("captures.id"), nullable=False),
    Column("purpose", String(20), nullable=False, server_default="analyze"),
    Column("state", String(20), nullable=False),  # queued | running | done | dead
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_owner", String(200)),
    Column("lease_expires_at", Float),
    Column("last_error", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("params", Text),  # JSON: what a job needs beyond its capture (v4)
)
Index("ix_jobs_claim", jobs.c.state, jobs.c.next_attempt_at)

results = Table(
    "results",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("capture_id", Integer, ForeignKey("captures.id"), nullable=False),
    Column("job_id", Integer, ForeignKey("jobs.id"), nullable=False),
    Column("plate", String(200), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("verdict", String(10), nullable=False),
    Column("analyzed_at", String(40), nullable=False),
    Column("body", Text, nullable=False),  # JSON, {"format": RESULT_FORMAT, ...}
    Column("report", Text),  # JSON {"png", "html"}, written after the result (a consumer)
    UniqueConstraint("job_id", "plate", name="uq_result_job_plate"),
)
Index("ix_results_capture", results.c.capture_id)
Index("ix_results_plate", results.c.plate)
Index("ix_results_job", results.c.job_id)

flags = Table(
    "flags",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("result_id", Integer, ForeignKey("results.id"), nullable=False),
    Column("code", String(60), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("message", Text, nullable=False),
    Column("wells", Text, nullable=False),  # JSON list
)
Index("ix_flags_result", flags.c.result_id)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("plate_key", String(400), nullable=False),
    Column("code", String(60), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("kind", String(20), nullable=False),  # finding | quarantine | resolved
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("capture_id", Integer, ForeignKey("captures.id")),
    Column("created_at", Float, nullable=False),
    Column("acknowledged_at", Float),  # someone looked at it (dashboard); v2
    Column("acknowledged_by", String(200)),
)
Index("ix_alerts_plate_code", alerts.c.plate_key, alerts.c.code)

# One row per control curve of a stored plate result: what the trends page and the
# control_drift rule read (a control line's IC50 across plates), written with the result.
control_points = Table(
    "control_points",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("result_id", Integer, ForeignKey("results.id"), nullable=False),
    Column("instrument", String(200), nullable=False),
    Column("compound", String(200), nullable=False),
    Column("cell_line", String(200), nullable=False),
    Column("unit", String(40)),
    Column("ic50", Float),  # None: no IC50 (no fit, or no dose response)
    Column("qualifier", String(2)),
    Column("expected_low", Float),
    Column("expected_high", Float),  # None: open-ended (a resistant line)
    Column("z_prime", Float),
    Column("at", Float, nullable=False),
)
Index("ix_control_points_series", control_points.c.compound, control_points.c.cell_line)

deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("alert_id", Integer, ForeignKey("alerts.id"), nullable=False),
    Column("destination", Text, nullable=False),
    Column("state", String(20), nullable=False),  # pending | sent | failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Float, nullable=False),
    Column("last_error", Text),
    Column("sent_at", Float),
)
Index("ix_deliveries_due", deliveries.c.state, deliveries.c.next_attempt_at)

# Timecourses (DESIGN.md §6): the plan is data. A timecourse is read by a reader on a
# schedule (source "driver") or fed by repeated exports of one plate (source "exports").
timecourses = Table(
    "timecourses",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("source", String(20), nullable=False),  # driver | exports
    Column("reader", String(200)),  # the instrument: a [[reader]] or a watch folder's
    Column("layout", Text),
    Column("every_s", Float),
    Column("for_s", Float),
    Column("start_at", Float),
    Column("grace_s", Float),
    Column("wavelengths", Text, nullable=False, server_default="[]"),  # JSON list of nm
    Column("state", String(20), nullable=False),  # running | done | stopped
    Column("created_at", Float, nullable=False),
    Column("stopped_at", Float),
    UniqueConstraint("name", name="uq_timecourse_name"),
)

planned_reads = Table(
    "planned_reads",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("timecourse_id", Integer, ForeignKey("timecourses.id"), nullable=False),
    Column("index", Integer, nullable=False),
    Column("due_at", Float, nullable=False),
    # planned → reading → done | late; planned/reading → missed; planned → cancelled
    Column("state", String(20), nullable=False),
    Column("started_at", Float),
    Column("done_at", Float),
    Column("delay_s", Float),
    Column("capture_id", Integer, ForeignKey("captures.id")),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    UniqueConstraint("timecourse_id", "index", name="uq_planned_read"),
)
Index("ix_planned_reads_due", planned_reads.c.state, planned_reads.c.due_at)

# Every barcoded plate seen, with its read time: repeated exports of one plate (the same
# barcode, later reads) are assembled into a timecourse from this.
plate_sightings = Table(
    "plate_sightings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("capture_id", Integer, ForeignKey("captures.id"), nullable=False),
    Column("instrument", String(200), nullable=False),
    Column("barcode", String(200), nullable=False),
    Column("read_at", Float, nullable=False),
    UniqueConstraint("capture_id", "barcode", name="uq_plate_sighting"),
)
Index("ix_plate_sightings", plate_sightings.c.instrument, plate_sightings.c.barcode)

# The reads a timecourse is made of, in read-time order (planned reads and exports alike).
timecourse_points = Table(
    "timecourse_points",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("timecourse_id", Integer, ForeignKey("timecourses.id"), nullable=False),
    Column("capture_id", Integer, ForeignKey("captures.id"), nullable=False),
    Column("read_at", Float, nullable=False),
    Column("planned_read_id", Integer, ForeignKey("planned_reads.id")),
    UniqueConstraint("timecourse_id", "capture_id", name="uq_timecourse_point"),
)


def _v2(conn: Connection) -> None:
    """Alerts can be acknowledged; control_points (new table) is made by create_all."""
    conn.exec_driver_sql("ALTER TABLE alerts ADD COLUMN acknowledged_at FLOAT")
    conn.exec_driver_sql("ALTER TABLE alerts ADD COLUMN acknowledged_by VARCHAR(200)")


def _v3(conn: Connection) -> None:
    """planned_reads (never used before v3) is made again in its real shape by create_all."""
    conn.exec_driver_sql("DROP TABLE IF EXISTS planned_reads")


def _v4(conn: Connection) -> None:
    """Jobs carry parameters (a re-analysis with another layout); indexes the dashboard uses."""
    conn.exec_driver_sql("ALTER TABLE jobs ADD COLUMN params TEXT")
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_flags_result ON flags (result_id)")
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_results_plate ON results (plate)")
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_results_job ON results (job_id)")
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ix_captures_instrument_time ON captures (instrument, captured_at)"
    )


# Migrations from version N-1 to N. Version 1 is the initial schema (create_all); new
# tables come from create_all, new columns of existing tables from these steps.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {2: _v2, 3: _v3, 4: _v4}


class StoreError(PlatewatchError):
    """The database cannot be opened, is of a newer schema, or failed a write."""


def utc_now(clock: Clock = SYSTEM_CLOCK) -> str:
    return iso_utc(clock.now())


@dataclass
class Store:
    engine: Engine
    url: str
    clock: Clock = field(default=SYSTEM_CLOCK)

    def now(self) -> float:
        return self.clock.now()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One write transaction (BEGIN IMMEDIATE on SQLite): committed on exit, rolled
        back on error. Plain reads (``engine.connect()``) begin deferred and take no lock."""
        with self.engine.connect() as conn:
            conn.execution_options(platewatch_write=True)
            with conn.begin():
                yield conn

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("platewatch_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def open_store(url: str, *, create: bool = True, clock: Clock = SYSTEM_CLOCK) -> Store:
    """Open (and create or migrate) the store at ``url``; ``clock`` times every record."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StoreError(f"cannot open store: {exc}", source=_safe_url(url)) from None
    if engine.dialect.name == "sqlite":
        _sqlite_pragmas(engine)
    store = Store(engine=engine, url=url, clock=clock)
    try:
        if create:
            migrate(store)
    except SQLAlchemyError as exc:
        raise StoreError(
            f"cannot open store: {type(exc).__name__}: {exc.args[0] if exc.args else ''}",
            source=_safe_url(url),
        ) from None
    return store


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def migrate(store: Store) -> int:
    """Create the schema or bring it forward; refuse a database newer than this code."""
    with store.begin() as conn:
        if not store.is_sqlite:
            # Several daemons may start at once on one fresh database: one migrates at a
            # time (SQLite's BEGIN IMMEDIATE already serialises this).
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(4242024)")
        schema_info.create(conn, checkfirst=True)
        version = conn.execute(select(schema_info.c.version)).scalar()
        if version is not None and version > SCHEMA_VERSION:
            raise StoreError(
                f"database schema {version} is newer than this platewatch ({SCHEMA_VERSION})",
                source=_safe_url(store.url),
            )
        if version is not None:  # an existing store: its own steps first, on its own tables
            for step in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[step](conn)
        metadata.create_all(conn)  # new tables (and every table of a new store)
        if version is None:
            conn.execute(insert(schema_info).values(version=SCHEMA_VERSION))
        else:
            conn.execute(schema_info.update().values(version=SCHEMA_VERSION))
        return SCHEMA_VERSION


def integrity_ok(store: Store) -> bool:
    if not store.is_sqlite:
        return True
    with store.engine.connect() as conn:
        return conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"


# --- queries used by the CLI (status, results) ------------------------------------------


def last_capture(store: Store) -> dict[str, Any] | None:
    with store.engine.connect() as conn:
        row = (
            conn.execute(select(captures).order_by(captures.c.id.desc()).limit(1))
            .mappings()
            .first()
        )
    return dict(row) if row else None


def last_error(store: Store) -> dict[str, Any] | None:
    with store.engine.connect() as conn:
        row = (
            conn.execute(
                select(
                    jobs.c.id, jobs.c.capture_id, jobs.c.last_error, jobs.c.updated_at, jobs.c.state
                )
                .where(jobs.c.last_error.is_not(None))
                .order_by(jobs.c.updated_at.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
    return dict(row) if row else None


def list_results(store: Store, limit: int = 50) -> list[dict[str, Any]]:
    """Stored results, newest first, in the shape of DESIGN.md §5.1 (`results --json`)."""
    query = (
        select(
            results.c.id,
            results.c.capture_id,
            results.c.kind,
            results.c.verdict,
            results.c.analyzed_at,
            results.c.plate,
            captures.c.source_path,
            captures.c.sha256,
            captures.c.instrument,
        )
        .join(captures, captures.c.id == results.c.capture_id)
        .order_by(results.c.id.desc())
        .limit(limit)
    )
    out = []
    with store.engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
        flag_rows = conn.execute(
            select(flags.c.result_id, flags.c.code, flags.c.severity).where(
                flags.c.result_id.in_([r["id"] for r in rows])
            )
        ).all()
    by_result: dict[int, list[dict[str, str]]] = {}
    for result_id, code, severity in flag_rows:
        by_result.setdefault(int(result_id), []).append({"code": code, "severity": severity})
    for r in rows:
        out.append(
            {
                "capture_id": r["capture_id"],
                "path": r["source_path"],
                "source_sha256": r["sha256"],
                "instrument": r["instrument"],
                "plate": r["plate"],
                "kind": r["kind"],
                "verdict": r["verdict"],
                "flags": by_result.get(int(r["id"]), []),
                "analyzed_at": r["analyzed_at"],
            }
        )
    return out


def insert_row(conn: Connection, table: Table, **values: Any) -> int:
    """Insert one row and return its primary key."""
    key = conn.execute(table.insert().values(**values)).inserted_primary_key
    if key is None:  # pragma: no cover - every table here has an integer primary key
        raise StoreError(f"insert into {table.name} returned no key")
    return int(key[0])


def dumps(obj: Any) -> str:
    """Compact JSON of plain data (NaN/inf become null, numpy scalars plain numbers)."""
    return json.dumps(
        jsonable(obj), ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str
    )
