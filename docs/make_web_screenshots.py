"""Make the pictures of docs/web.md: a fresh AWE home with a few real jobs on the local DPU,
`awe web` on a free loopback port, and Debian's headless Chromium taking the screenshots.

    python docs/make_web_screenshots.py      # from the repository root, after the test setup
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_web_browser import CHROMIUM, CHROMIUM_FLAGS  # noqa: E402
from tests.webserver import SEQUENCES, WebServer, token_for  # noqa: E402


def main() -> None:
    import httpx
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="awe-shots-"))
    os.environ["AWE_HOME"] = str(home)
    (home / "sequences").mkdir()
    for name in ("testing.py", "web.py"):
        shutil.copy(SEQUENCES / name, home / "sequences" / name)
    from awe.dpu import Processor

    url = f"sqlite:///{home / 'awe.db'}"
    alice = Processor(database_url=url, username="alice", session_log="")
    bob = Processor(database_url=url, username="bob", project="SURVEY", session_log="")
    done = [
        alice.run("Hello", n=4, o="M31"),
        bob.run("Outcomes"),
        alice.run("MakeImage", i="WFI", C=1),
        bob.run("Hello>Total", n=3),
    ]
    alice.wait(done, timeout=120)
    alice.get_job_result(done[2])
    server = WebServer(home, url)
    try:
        running = alice.run("Hello", n=3, s=600.0)
        api = httpx.Client(base_url=server.url, timeout=60)
        while api.get(f"/api/jobs/{running}").json()["counts"].get("RUNNING", 0) < 2:
            pass
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 520})
            page.goto(f"{server.url}/")
            page.screenshot(path=str(ROOT / "docs" / "web-queue.png"))
            page.set_viewport_size({"width": 1100, "height": 900})
            page.goto(f"{server.url}/jobs/{done[1]}")
            page.screenshot(path=str(ROOT / "docs" / "web-job.png"), full_page=False)
            page.goto(f"{server.url}/jobs/{done[2]}")
            page.locator(".products").scroll_into_view_if_needed()
            page.screenshot(path=str(ROOT / "docs" / "web-product.png"))
            browser.close()
        api.post(f"/api/jobs/{running}/cancel", headers=token_for(alice.database, "alice"))
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
