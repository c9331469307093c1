"""The pages in a real browser: Debian's Chromium, headless, driven by Playwright (no
browser download), against `awe web` on 127.0.0.1 with jobs the local DPU really ran.
The API tests cover MariaDB; the pages run on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from awe.dpu import Processor
from tests.webserver import TIMEOUT, WebServer, alice_processor, running_server, token_for, wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Milliseconds the page may take to show a change (it polls every 2 s; the machine is busy).
PAGE_TIMEOUT = 60_000


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


@pytest.fixture
def alice(awe_home: Path, database_url: str) -> Processor:
    return alice_processor(awe_home, database_url)


@pytest.fixture
def server(alice: Processor, awe_home: Path, database_url: str) -> Iterator[WebServer]:
    with running_server(awe_home, database_url) as web:
        yield web


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (bash tests/services/start.sh)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh page that fails the test on any script error or blocked resource."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    refusals = tuple(
        f"status of {code}"
        for code in ("400 (Bad Request)", "401 (Unauthorized)", "403 (Forbidden)")
    )  # the test asks for these

    def on_console(message) -> None:
        if message.type == "error" and not message.text.endswith(refusals):
            problems.append(message.text)

    page.on("console", on_console)
    page.on("dialog", lambda dialog: problems.append(f"dialog opened: {dialog.message}"))
    yield page
    context.close()
    assert problems == []


def test_queue_shows_jobs_filters_and_updates_in_place(alice, server, page) -> None:
    finished = alice.run("Hello", n=1, o='<img src=x onerror="window.injected=1">')
    failed = alice.run("Fail")
    alice.wait([finished, failed], timeout=TIMEOUT)
    running = alice.run("Hello", n=2, s=600.0)
    api = httpx.Client(base_url=server.url, timeout=60)
    wait_for(lambda: api.get(f"/api/jobs/{running}").json()["state"] == "RUNNING", "a start")

    page.goto(f"{server.url}/")
    rows = page.locator("#queue tbody tr")
    assert rows.count() == 3
    assert page.locator("#queue tbody tr td:first-child").all_inner_texts() == [
        str(running),
        str(failed),
        str(finished),
    ]
    row = page.locator(f"#job-{running}")
    assert row.locator(".state").inner_text() == "RUNNING"
    assert row.locator(".counts").inner_text() == "0/0/0/0/0"
    options = page.locator(f"#job-{finished} .options").inner_text()
    assert options == 'count=1, sleep=0, object=<img src=x onerror="window.injected=1">'
    assert page.evaluate("window.injected") is None

    page.evaluate("window.stillTheSamePage = true")  # gone if the page reloads
    cancelled = api.post(f"/api/jobs/{running}/cancel", headers=token_for(alice.database, "alice"))
    assert cancelled.status_code == 200
    page.locator(f"#job-{running}[data-state=CANCELLED]").wait_for()
    assert row.locator(".counts").inner_text() == "0/0/2/0/0"
    assert row.locator(".running").inner_text() == "0"
    assert page.evaluate("window.stillTheSamePage") is True
    # Rows rebuilt by the script escape as the server's did.
    assert page.locator(f"#job-{finished} .options").inner_text() == options
    assert page.evaluate("window.injected") is None

    page.select_option("select[name=state]", "FINISHED")
    page.click("form.filters button")
    page.wait_for_url("**/?**state=FINISHED**")
    assert page.locator("#queue tbody tr td:first-child").all_inner_texts() == [
        str(failed),
        str(finished),
    ]
    page.fill("input[name=sequence]", "Fai")
    page.click("form.filters button")
    page.wait_for_url("**sequence=Fai**")
    assert page.locator("#queue tbody tr td:first-child").all_inner_texts() == [str(failed)]


def test_job_page_shows_the_failed_task_first_with_its_traceback(alice, server, page) -> None:
    job_id = alice.run("Outcomes")
    alice.wait(job_id, timeout=TIMEOUT)
    page.goto(f"{server.url}/jobs/{job_id}")
    assert page.locator("#job-state").inner_text() == "FINISHED"
    first = page.locator("#tasks tbody tr").first
    assert first.locator(".state").inner_text() == "E"
    assert "ValueError: this chip is broken" in first.inner_text()
    log = page.locator("#log-1")
    assert log.get_attribute("open") is not None  # failed tasks' logs are open
    traceback = log.locator(".traceback")
    assert traceback.first.is_visible()
    lines = traceback.all_inner_texts()
    assert lines[0].endswith("Traceback (most recent call last):")
    assert lines[-1].endswith("ValueError: this chip is broken")
    assert any('raise ValueError("this chip is broken")' in line for line in lines)
    assert page.locator("#log-0").get_attribute("open") is None  # the N task's is closed
    image_job = alice.run("MakeImage", i="WFI", C=1)
    alice.wait(image_job, timeout=TIMEOUT)
    alice.get_job_result(image_job)  # commits its product
    page.goto(f"{server.url}/jobs/{image_job}")
    preview = page.locator(".product img")
    preview.wait_for()
    page.wait_for_load_state("load")
    assert preview.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]") == [
        True,
        64,
        48,
    ]
    page.click("a[href='/dpus/local']")
    page.wait_for_url("**/dpus/local")
    assert page.locator("h1").inner_text() == "DPU local"


def test_submit_and_cancel_from_the_pages_need_the_right_token(alice, server, page) -> None:
    page.goto(f"{server.url}/submit")
    assert "Hello" in page.locator("#sequences").inner_text()
    page.fill("#submit input[name=sequence]", "Hello")
    page.fill("#submit textarea[name=options]", '{"n": 1, "s": 600}')
    page.click("#submit button")
    result = page.locator("#submit-result")
    result.filter(has_text="Refused (401)").wait_for()
    assert "need a token" in result.inner_text()
    assert alice.get_jobids() == []

    page.fill("#submit input[name=token]", token_for(alice.database, "alice")["Authorization"][7:])
    page.fill("#submit textarea[name=options]", '{"n": 1, "x": 2}')
    page.click("#submit button")
    result.filter(has_text="Unknown option 'x' for Hello").wait_for()
    page.fill("#submit textarea[name=options]", '{"n": 1, "s": 600}')
    page.click("#submit button")
    result.filter(has_text="Submitted job").wait_for()
    (job_id,) = alice.get_jobids()  # the refusals queued nothing

    job_link = result.locator("a").get_attribute("href")
    assert job_link == f"/jobs/{job_id}"

    page.goto(f"{server.url}/dpus/local")
    page.locator(f"#running tbody tr:has(a[href='/jobs/{job_id}'])").wait_for()
    page.evaluate("window.stillTheSamePage = true")
    api = httpx.Client(base_url=server.url, timeout=60)
    as_alice = token_for(alice.database, "alice")
    other = api.post(
        "/api/jobs", json={"sequence": "Hello", "options": {"n": 1, "s": 600}}, headers=as_alice
    ).json()["job_id"]
    page.locator(f"#running tbody tr:has(a[href='/jobs/{other}'])").wait_for()  # in place
    assert page.locator("#running-count").inner_text() == "2"
    assert page.evaluate("window.stillTheSamePage") is True
    assert api.post(f"/api/jobs/{other}/cancel", headers=as_alice).status_code == 200
    page.locator(f"#running tbody tr:has(a[href='/jobs/{other}'])").wait_for(state="detached")

    page.goto(f"{server.url}{job_link}")
    page.fill("#cancel input[name=token]", token_for(alice.database, "bob")["Authorization"][7:])
    page.click("#cancel button")
    page.locator("#cancel-result").filter(has_text="Refused (403)").wait_for()
    assert "only its owner can cancel it" in page.locator("#cancel-result").inner_text()
    assert alice.get_status(job_id)[0].state.value in ("QUEUED", "RUNNING")

    page.fill("#cancel input[name=token]", token_for(alice.database, "alice")["Authorization"][7:])
    page.click("#cancel button")
    page.locator("#job-state").filter(has_text="CANCELLED").wait_for()  # after its reload
    assert alice.get_status(job_id)[0].state.value == "CANCELLED"
