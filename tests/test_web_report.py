"""The job page without a server: tracebacks marked in logs, the rerun link when the
database records one, option values shown as the page's script shows them, escaping."""

from __future__ import annotations

from datetime import datetime, timezone

from jinja2 import ChoiceLoader, PackageLoader

from awe.db.jobs import TaskSpec, record_job
from awe.report.render import ReportLinks, make_environment, option_text
from awe.report.view import job_view, mark_tracebacks

T = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_traceback_lines_are_marked_from_start_to_exception() -> None:
    lines = [
        "Task started",
        "ERROR: Traceback (most recent call last):",
        '  File "x.py", line 3, in f',
        "    raise KeyError('chip')",
        "KeyError: 'chip'",
        "Task ended E (KeyError: 'chip')",
    ]
    marked = mark_tracebacks([(T, "ERROR" if "ERROR" in m else "INFO", m) for m in lines])
    assert [line.traceback for line in marked] == [False, True, True, True, True, False]


def test_option_values_are_shown_as_javascript_shows_them() -> None:
    shown = [option_text(v) for v in ("M31", 0.0, 2.5, 3, True, None, [1, 2], {"a": 1})]
    assert shown == ["M31", "0", "2.5", "3", "true", "null", "[1,2]", '{"a":1}']


def test_job_page_links_the_rerun_and_escapes_everything(database) -> None:
    from awe.web.app import ServiceLinks

    def record(rerun_of: int | None = None) -> int:
        return record_job(
            database,
            username="alice",
            project="P",
            sequence="Hello",
            dpu_name="local",
            tasks=[TaskSpec("Hello[<b>c0</b>]")],
            options={"object": "<script>alert(1)</script>"},
            rerun_of=rerun_of,
        )

    first = record()
    assert job_view(database, first).rerun_of is None
    view = job_view(database, record(rerun_of=first))
    assert view.tasks[0].name == "Hello[<b>c0</b>]" and view.rerun_of == first
    loaders = [PackageLoader("awe.web", "templates"), PackageLoader("awe.report", "templates")]
    web = make_environment(ChoiceLoader(loaders)).get_template("job.html")
    html = web.render(job=view, running=None, links=ServiceLinks(), database="sqlite://")
    assert f'<a id="rerun-of" href="/jobs/{first}">job {first}</a>' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "Hello[&lt;b&gt;c0&lt;/b&gt;]" in html and "<b>c0" not in html
    report = make_environment().get_template("report.html")
    html = report.render(job=view, running=None, css="", generated=T, links=ReportLinks({}))
    assert f"job {first}" in html and f'href="/jobs/{first}"' not in html  # links nowhere
    assert "<script" not in html
