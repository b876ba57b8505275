"""A store made by an older platewatch is brought forward, on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from sqlalchemy import inspect, select

from acquisition.store import SCHEMA_VERSION, alerts, captures, open_store, schema_info

ROOT = Path(__file__).resolve().parent.parent
V1_COMMIT = "6e31634"  # the last commit with schema version 1


def _old_store_module(tmp_path: Path):  # type: ignore[no-untyped-def]
    source = subprocess.run(
        ["git", "show", f"{V1_COMMIT}:acquisition/store.py"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout
    path = tmp_path / "store_v1.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("store_v1", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["store_v1"] = module
    spec.loader.exec_module(module)
    return module


def test_a_version_1_store_is_migrated_and_keeps_its_rows(store_url: str, tmp_path: Path) -> None:
    old = _old_store_module(tmp_path)
    assert old.SCHEMA_VERSION == 1
    store = old.open_store(store_url)
    with store.begin() as conn:
        capture_id = old.insert_row(
            conn,
            old.captures,
            instrument="r",
            source_path="/x",
            file_name="x.txt",
            sha256="0" * 64,
            size=1,
            mtime_ns=1,
            archive_path="/a",
            kind="plate",
            captured_at="2026-01-01T00:00:00.000+00:00",
        )
        old.insert_row(
            conn,
            old.alerts,
            plate_key="r:x",
            code="edge_effect",
            severity="warning",
            kind="finding",
            title="t",
            body="b",
            capture_id=capture_id,
            created_at=1.0,
        )
    store.close()

    store = open_store(store_url)
    try:
        with store.engine.connect() as conn:
            assert conn.execute(select(schema_info.c.version)).scalar_one() == SCHEMA_VERSION
            assert conn.execute(select(captures.c.file_name)).scalar_one() == "x.txt"
            row = conn.execute(select(alerts.c.code, alerts.c.acknowledged_at)).one()
        assert tuple(row) == ("edge_effect", None)
        tables = inspect(store.engine)
        columns = {c["name"] for c in tables.get_columns("planned_reads")}
        assert {"timecourse_id", "index", "due_at", "state", "capture_id"} <= columns
        assert {"timecourses", "timecourse_points", "control_points"} <= set(
            tables.get_table_names()
        )
    finally:
        store.close()
    again = open_store(store_url)  # a second open of a migrated store changes nothing
    again.close()
