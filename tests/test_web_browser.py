"""The dashboard in a real headless Chromium against the real daemon (issue #15): pages load
without console errors, show every plate with its verdict and flag codes, and update by
themselves (no reload) when a capture or a planned read is stored."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium, console_errors, screenshot
from tests.daemon_rig import DaemonProcess, wait_for, write_config

ROOT = Path(__file__).resolve().parent.parent
LAYOUT = ROOT / "config" / "layouts" / "mtt-96.toml"
EXAMPLES = ("mtt_plate_clean.txt", "mtt_plate_edge_effect.txt", "mtt_plate_failed.txt")


def published(state: Path) -> dict[str, Any]:
    try:
        return json.loads((state / "daemon.json").read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return {}


def wait_page(driver: Any, condition: Any, timeout: float = 40.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition(driver):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.timeout(300)
def test_dashboard_pages_live_updates_and_screenshots(tmp_path: Path) -> None:
    state, inbox = tmp_path / "state", tmp_path / "inbox"
    inbox.mkdir()
    extra = (
        '[[reader]]\nname = "sim-1"\nprotocol = "simulated"\n'
        f'layout = "{LAYOUT}"\nprobe_seconds = 2.0\noptions = {{ seed = 4, time_scale = 3600.0 }}\n'
    )
    config = write_config(tmp_path / "pw.toml", state, [inbox], extra=extra)
    config.write_text(
        config.read_text().replace("rescan_seconds = 2", "rescan_seconds = 2\ntick_seconds = 0.5")
    )
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    try:
        assert daemon.wait_for_message("READY=1"), (tmp_path / "daemon.log").read_text()
        assert wait_for(
            lambda: bool((published(state).get("extra") or {}).get("web", {}).get("url")),
            timeout=30,
        )
        url = published(state)["extra"]["web"]["url"]
        for name in EXAMPLES:
            (inbox / name).write_bytes((ROOT / "examples" / name).read_bytes())
        with chromium() as driver:
            driver.get(url + "/")
            assert wait_page(driver, lambda d: all(n in d.page_source for n in EXAMPLES)), (
                driver.page_source[:500]
            )
            page = driver.page_source
            for verdict in ("pass", "warn", "fail"):
                assert f'class="badge {verdict}"' in page
            for code in ("edge_effect", "saturated_wells", "control_out_of_range"):
                assert code in page
            screenshot(driver, "overview")
            assert console_errors(driver) == []

            # a new export appears on the open page, without a reload
            driver.execute_script("window.__stayed = 'same page';")
            late = inbox / "late_plate.txt"
            late.write_bytes(
                (ROOT / "examples" / EXAMPLES[1]).read_bytes().replace(b"Plate 2", b"Plate 77")
            )
            assert wait_page(
                driver, lambda d: "late_plate.txt" in d.find_element("id", "results").text, 60
            )
            assert driver.execute_script("return window.__stayed;") == "same page"
            screenshot(driver, "overview_updated")

            row = next(
                r
                for r in driver.find_elements("css selector", "#results tr[data-result]")
                if "mtt_plate_failed" in r.text
            )
            row.find_element("tag name", "a").click()
            assert wait_page(driver, lambda d: "saturated_wells" in d.page_source)
            flags = driver.find_element("id", "flags").text
            assert "control_out_of_range" in flags and "asparaginase" in flags.lower()
            screenshot(driver, "plate_failed")
            assert console_errors(driver) == []

            for path, marker in (
                ("/alerts", "open"),
                ("/trends", "Trends"),
                ("/timecourses", "timecourses"),
            ):
                driver.get(url + path)
                assert marker in driver.page_source
                assert console_errors(driver) == [], path
                screenshot(driver, path.strip("/"))

            # a timecourse read lands on the open timecourse page, without a reload
            out = subprocess.run(
                [sys.executable, str(ROOT / "service.py"), "timecourse", "start", "--config", str(config),
                 "--reader", "sim-1", "--every", "3s", "--for", "30s", "--reference", "650", "--json"],
                capture_output=True, text=True, timeout=60, cwd=ROOT,
            )  # fmt: skip
            assert out.returncode == 0, out.stderr
            tc = json.loads(out.stdout)["id"]
            driver.get(f"{url}/timecourses/{tc}")
            driver.execute_script("window.__stayed = 'same page';")

            def done(d: Any) -> int:
                return len(
                    d.find_elements(
                        "css selector", '#reads tr[data-state="done"], #reads tr[data-state="late"]'
                    )
                )

            first = done(driver)
            assert wait_page(driver, lambda d: done(d) >= first + 2, 60), driver.find_element(
                "id", "reads"
            ).text
            assert driver.execute_script("return window.__stayed;") == "same page"
            screenshot(driver, "timecourse")
            assert console_errors(driver) == []
    finally:
        assert daemon.stop() == 0
