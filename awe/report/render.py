"""HTML of a job page with Jinja2 (every value autoescaped), and the static report.

The web service and :func:`write_report` render the same ``_job.html`` macro; they differ
only in how a product's preview and file are reached (a URL of the service, or the PNG
itself inlined as a ``data:`` URI in the report, which then needs no server at all)."""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from os import PathLike
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, Environment, PackageLoader, select_autoescape

from awe.db.database import Database
from awe.report.view import JobView, ProductView, job_view

log = logging.getLogger(__name__)
CSS_TEMPLATE = "awe.css"


def make_environment(loader: BaseLoader | None = None) -> Environment:
    """A Jinja2 environment with autoescaping and AWE's filters."""
    environment = Environment(
        loader=loader or PackageLoader("awe.report", "templates"),
        autoescape=select_autoescape(["html", "htm", "xml"], default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["duration"] = format_duration
    environment.filters["when"] = format_time
    environment.filters["pretty_json"] = pretty_json
    environment.filters["size"] = format_size
    environment.filters["option_text"] = option_text
    return environment


def option_text(value: Any) -> str:
    """An option value as the pages show it, the same way their script does (JavaScript's
    ``String`` for scalars, compact JSON for lists and dicts), so a refresh changes nothing."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, separators=(",", ":"), default=str)


def format_duration(seconds: float | None) -> str:
    """``3.2 s``, ``4 min 05 s``, ``2 h 03 min``; empty when unknown."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_time(when: datetime | None) -> str:
    """UTC, to the second: ``2026-11-22 07:40:12 UTC``; empty when unknown."""
    if when is None:
        return ""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_size(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def running_seconds(view: JobView, now: datetime | None = None) -> float | None:
    """Seconds the job has run: until it finished, or until now while it runs."""
    if view.started_at is None:
        return None
    end = view.finished_at or now or datetime.now(timezone.utc)
    return (end - view.started_at).total_seconds()


def write_report(
    database: Database,
    job_id: int,
    path: str | PathLike[str],
    data_root: str | PathLike[str] | None = None,
) -> Path:
    """Write job ``job_id`` as one self-contained HTML file (styles and image previews
    inlined, no scripts), for sharing without a server. Returns the path written."""
    from awe.data.store import DataStore

    view = job_view(database, job_id)
    store = DataStore(data_root) if data_root is not None else None
    previews = {p.id: inline_preview(store, p) for p in view.products if p.is_image}
    environment = make_environment()
    html = environment.get_template("report.html").render(
        job=view,
        css=environment.loader.get_source(environment, CSS_TEMPLATE)[0],
        running=running_seconds(view),
        generated=datetime.now(timezone.utc),
        links=ReportLinks(previews),
    )
    target = Path(path).expanduser()
    target.write_text(html, encoding="utf-8")
    return target


def inline_preview(store: Any, product: ProductView) -> str | None:
    """The preview of ``product`` (anything with ``id`` and ``sha256``: a product view, a
    frame) as a ``data:`` URI, or ``None`` when the file is not at hand or holds no image
    (the report says so instead of failing). Also the preview of a frame in a notebook."""
    from awe.report.preview import NotAnImage, fits_preview_png

    if store is None or not store.exists(product.sha256):
        return None
    try:
        png = fits_preview_png(store.path(product.sha256))
    except (NotAnImage, OSError) as err:
        log.warning("no preview of product %s: %s", product.id, err)
        return None
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


@dataclass(frozen=True)
class ReportLinks:
    """Links of a static report: previews inlined, nothing to link to."""

    previews: dict[int, str | None]

    def preview(self, product: ProductView) -> str | None:
        return self.previews.get(product.id)

    def file(self, product: ProductView) -> None:
        return None

    def job(self, job_id: int) -> None:
        return None

    def dpu(self, name: str) -> None:
        return None
