"""Shared fixtures. The real instrument files live in ../shared/corpus (never copied here)."""

from __future__ import annotations

from pathlib import Path

import pytest

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
