"""Shared fixtures. The real instrument files live in ../shared/corpus (never copied here)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

# `make test` (and so CI) runs the property tests on the same examples every time
# (HYPOTHESIS_PROFILE=ci): a gate must be reproducible. A plain `pytest` explores new
# examples on every run, and bench/fuzz_formats.py explores at scale.
hypothesis_settings.register_profile("ci", derandomize=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
LAYOUT_96 = ROOT / "config" / "layouts" / "mtt-96.toml"

if not CORPUS.is_dir():  # CI has it beside the clone; a missing corpus is a setup error
    raise RuntimeError(f"the shared corpus is missing: expected {CORPUS}")


@pytest.fixture(scope="session")
def corpus() -> Path:
    return CORPUS


@pytest.fixture(scope="session")
def layout96():  # type: ignore[no-untyped-def]
    from analysis.layout import load_layout

    return load_layout(LAYOUT_96)


@pytest.fixture(scope="session")
def settings():  # type: ignore[no-untyped-def]
    from config import load_config

    return load_config()


@pytest.fixture(scope="session")
def references():  # type: ignore[no-untyped-def]
    from config import load_reference_ic50

    return load_reference_ic50()


PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


def fresh_pg_url(name: str) -> str:
    """A new, empty PostgreSQL database on the local server (DROP + CREATE)."""
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    """The same contract runs against SQLite (file, WAL) and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'platewatch.db'}"
    import os

    return fresh_pg_url(f"platewatch_test_{os.getpid()}_{abs(hash(request.node.name)) % 10**8}")


@pytest.fixture(autouse=True)
def no_leaked_threads():  # type: ignore[no-untyped-def]
    """STYLE.md §13: a test that leaves a non-daemon thread running fails."""
    import threading
    import time

    def library_owned() -> set[threading.Thread]:
        # apprise keeps one process-wide executor for every notification, by design
        import apprise.apprise as core

        pool = getattr(core, "_shared_executor", None)
        return set(getattr(pool, "_threads", ()))

    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5.0
    while True:
        owned = library_owned()
        leaked = [
            t
            for t in threading.enumerate()
            if t not in before and t not in owned and t.is_alive() and not t.daemon
        ]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not leaked, f"threads left running: {[t.name for t in leaked]}"
