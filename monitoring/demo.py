"""`platewatch demo`: the real daemon fed by a simulated vendor PC, for a first look.

The vendor PC writes real-format Gen5 exports (the plates in ``examples/``: a clean one, one
with an edge effect, one where the asparaginase was inactive and wells saturated) into the
inbox, the way acquisition software does — in pieces, through one open file — plus one
unreadable file. The daemon captures, analyses, stores and alerts as it would beside an
instrument; results and alerts are printed as they arrive.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from acquisition.store import list_results, open_store
from config import load_config
from config.schema import Settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ("mtt_plate_clean.txt", "mtt_plate_edge_effect.txt", "mtt_plate_failed.txt")


def demo_settings(state_dir: Path) -> Settings:
    """The embedded default, anchored to ``state_dir`` and this checkout's layout."""
    base = load_config()
    state = state_dir.resolve()
    data = base.model_dump(mode="json")
    data["service"].update(state_dir=str(state), rescan_seconds=30.0)
    data["store"]["url"] = f"sqlite:///{state / 'platewatch.db'}"
    data["watch"] = [
        {
            "path": str(state / "inbox" / "reader-1"),
            "instrument": "reader-1",
            "kind": "plate",
            "layout": str(ROOT / "config" / "layouts" / "mtt-96.toml"),
            "stable_seconds": 1.0,
        }
    ]
    return Settings.model_validate(data)


def vendor_pc(inbox: Path, stop: threading.Event, every: float = 4.0) -> None:
    """Write the example exports into the inbox, piece by piece, then a junk file."""
    run = time.strftime("%H%M%S")
    for n, name in enumerate(EXAMPLES):
        if stop.wait(every if n else 2.0):
            return
        data = (ROOT / "examples" / name).read_bytes()
        target = inbox / f"{run}_{name}"
        with target.open("wb") as fh:  # one handle, written over ~1 s like vendor software
            step = max(1, len(data) // 4)
            for i in range(0, len(data), step):
                fh.write(data[i : i + step])
                fh.flush()
                time.sleep(0.25)
    if not stop.wait(every):
        (inbox / f"{run}_export_error.txt").write_bytes(
            b"\x00\x17 reader lost USB connection \xff" * 40
        )


def printer(settings: Settings, stop: threading.Event, echo: Callable[[str], None]) -> None:
    """Print each stored result once, as it arrives."""
    store = open_store(settings.store.url)
    seen: set[int] = set()
    try:
        while not stop.wait(0.5):
            for row in reversed(list_results(store, 20)):
                if row["capture_id"] in seen:
                    continue
                seen.add(row["capture_id"])
                codes = ", ".join(
                    f"{f['code']}({f['severity']})" for f in row["flags"] if f["severity"] != "info"
                )
                echo(
                    f"RESULT  {Path(row['path']).name}: {row['verdict'].upper()}  {codes or 'no findings'}"
                )  # type: ignore[operator]
    finally:
        store.close()
