"""`platewatch demo`: the real daemon fed by simulated instruments, for a first look.

* a simulated vendor PC writes real-format exports into the inboxes the way acquisition
  software does — in pieces, through one open file: three Gen5 plates (a clean one, one
  with an edge effect, one where the asparaginase was inactive and wells saturated), an
  unreadable file, and an Annexin V/PI experiment of FCS files (controls and samples);
* a simulated SpectraMax on a pseudo-terminal (``drivers.fakes``, its plate growing an
  hour per second) is driven by the scheduler through an accelerated timecourse, a read
  every few seconds;
* the dashboard is served on 127.0.0.1, and results, timecourse progress and alerts are
  printed as they arrive.
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
READER = "sim-reader"


def demo_settings(state_dir: Path, bind: str = "127.0.0.1:8080") -> Settings:
    """The embedded default, anchored to ``state_dir`` and this checkout's layout."""
    base = load_config()
    state = state_dir.resolve()
    layout = str(ROOT / "config" / "layouts" / "mtt-96.toml")
    data = base.model_dump(mode="json")
    data["service"].update(state_dir=str(state), rescan_seconds=30.0, tick_seconds=0.5)
    data["store"]["url"] = f"sqlite:///{state / 'platewatch.db'}"
    data["watch"] = [
        {
            "path": str(state / "inbox" / "reader-1"),
            "instrument": "reader-1",
            "kind": "plate",
            "layout": layout,
            "stable_seconds": 1.0,
        },
        {
            "path": str(state / "inbox" / "cyto-1"),
            "instrument": "cyto-1",
            "kind": "cytometry",
            "stable_seconds": 1.0,
        },
    ]
    data["reader"] = [
        {
            "name": READER,
            "protocol": "spectramax",
            "port": str(state / "sim-reader.tty"),
            "layout": layout,
            "probe_seconds": 5.0,
            "options": {"poll_interval_s": 0.05, "timeout_s": 3.0},
        }
    ]
    data["cytometry"]["quiet_seconds"] = 5.0
    data["timecourse"]["curves"] = False  # a quick update per read in the demo
    data["web"]["bind"] = bind
    return Settings.model_validate(data)


def start_simulated_reader(settings: Settings) -> object:
    """The SpectraMax on a pty (its plate ages an hour per second), returned running."""
    from drivers.fakes.process import FakeProcess

    port = Path(settings.reader[0].port)
    fake = FakeProcess(
        "spectramax", port, seed=7, args=["--time-scale", "3600", "--start-hours", "0"]
    )
    fake.start()
    return fake


def plan_demo_timecourse(settings: Settings, every_s: float = 4.0, for_s: float = 72.0) -> int:
    from acquisition.scheduler import Plan, plan_timecourse

    store = open_store(settings.store.url)
    try:
        name = f"demo-{time.strftime('%H%M%S')}"
        tc_id, _ = plan_timecourse(
            store,
            Plan(
                name=name,
                reader=READER,
                layout=str(settings.reader[0].layout),
                every_s=every_s,
                for_s=for_s,
                start_at=time.time() + 3.0,
                wavelengths=(570.0, 650.0),
            ),
        )
    finally:
        store.close()
    return tc_id


def _write_slowly(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as fh:  # one handle, written over ~1 s like vendor software
        step = max(1, len(data) // 4)
        for i in range(0, len(data), step):
            fh.write(data[i : i + step])
            fh.flush()
            time.sleep(0.25)


def vendor_pc(inboxes: tuple[Path, Path], stop: threading.Event, every: float = 4.0) -> None:
    """Write the example exports into the inboxes, piece by piece: a plate, the FCS
    experiment (a file per tube), the other plates, then a junk file."""
    plates, cyto = inboxes
    run = time.strftime("%H%M%S")
    for n, name in enumerate(EXAMPLES):
        if stop.wait(every if n else 2.0):
            return
        _write_slowly(plates / f"{run}_{name}", (ROOT / "examples" / name).read_bytes())
        if n == 0:
            experiment = cyto / f"annexin-pi-{run}"
            for path in sorted((ROOT / "examples" / "fcs").glob("*.fcs")):
                if stop.wait(0.5):
                    return
                _write_slowly(experiment / path.name, path.read_bytes())
    if stop.wait(every):
        return
    (plates / f"{run}_export_error.txt").write_bytes(
        b"\x00\x17 reader lost USB connection \xff" * 40
    )


def printer(settings: Settings, stop: threading.Event, echo: Callable[[str], None]) -> None:
    """Print each stored result once, as it arrives, and the timecourse as it moves."""
    from acquisition.timecourses import list_timecourses

    store = open_store(settings.store.url)
    seen: set[tuple[int, str]] = set()
    last_counts: dict[int, str] = {}
    try:
        while not stop.wait(0.5):
            for row in reversed(list_results(store, 40)):
                key = (int(row["capture_id"]), str(row["plate"]))
                if key in seen or row["kind"] == "timecourse":
                    continue
                seen.add(key)
                codes = ", ".join(
                    f"{f['code']}({f['severity']})" for f in row["flags"] if f["severity"] != "info"
                )
                if row["kind"] == "cytometry":
                    what = (
                        f"{row['plate']}.fcs"  # the tube; the capture is the experiment's last file
                    )
                elif "driver:" in row["path"]:
                    what = f"{READER} read"
                else:
                    what = Path(row["path"]).name
                echo(
                    f"RESULT  [{row['kind']}] {what}: {row['verdict'].upper()}  {codes or 'no findings'}"
                )
            for tc in list_timecourses(store):
                c = tc["counts"]
                text = f"done {c['done'] + c['late']}, missed {c['missed']}, planned {c['planned']}"
                spark = (tc.get("summary") or {}).get("sparkline") or ""
                if last_counts.get(tc["id"]) != text:
                    last_counts[tc["id"]] = text
                    echo(f"TIMECOURSE {tc['name']} [{tc['state']}]: {text}  {spark}")
    finally:
        store.close()
