"""The web service: HTML pages (queue, job, DPU) and the JSON API under ``/api``.

Every page and answer is built from the job database; submission and cancel act through
:class:`awe.web.actions.Actions`. Errors are JSON ``{"error": ...}`` with a status code,
never a traceback; every value in a page is escaped by Jinja2, and the pages load scripts
only from this server (Content-Security-Policy), so a ``<script>`` in an option or a log
line is shown as text.
"""

import logging
import threading
from collections import OrderedDict
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathPart
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jinja2 import ChoiceLoader, PackageLoader
from starlette.exceptions import HTTPException as StarletteHTTPException

from awe.database_url import mask_url
from awe.db.database import Database
from awe.db.models import JobState
from awe.dpu.remote.shell import RemoteError
from awe.errors import AweError, DatabaseError
from awe.report.render import make_environment, running_seconds
from awe.report.view import IMAGE_SUFFIXES, NoSuchJob, ProductView, job_view
from awe.web import schemas
from awe.web.actions import Actions
from awe.web.queue import (
    MAX_PER_PAGE,
    PER_PAGE,
    BadFilter,
    DpuSummary,
    QueueFilter,
    dpu_names,
    dpu_summaries,
    dpu_tasks,
    job_owner,
    queue_page,
)

log = logging.getLogger(__name__)

OPENAPI_PATH = "/api/openapi.json"
#: Previews kept in memory (PNG bytes by file hash).
PREVIEW_CACHE_SIZE = 256
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
ERRORS = {
    400: {"model": schemas.ErrorOut, "description": "Refused, with the reason"},
    401: {"model": schemas.ErrorOut, "description": "No valid token"},
    403: {"model": schemas.ErrorOut, "description": "Not allowed for this user"},
    404: {"model": schemas.ErrorOut, "description": "No such job, product or DPU"},
    422: {"model": schemas.ErrorOut, "description": "The request is malformed"},
    503: {"model": schemas.ErrorOut, "description": "The job database cannot be reached"},
}
#: Answers of the calls that reach a DPU (submit, cancel): it may be out of reach.
DPU_ERRORS = {
    **ERRORS,
    502: {"model": schemas.ErrorOut, "description": "The DPU cannot be reached"},
}

# Query parameters (module level: FastAPI resolves the annotations by name).
Page = Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1")]
PerPage = Annotated[int, Query(ge=1, le=MAX_PER_PAGE, description="Jobs per page")]
Text = Annotated[str | None, Query(max_length=255)]
TaskNumber = Annotated[int | None, Query(ge=0, le=2**31 - 1, description="Only this task")]
#: Ids are 64-bit keys in the database.
Id = Annotated[int, PathPart(ge=1, le=2**63 - 1)]
State = Annotated[JobState | None, Query(description="Only jobs in this state")]


@dataclass(frozen=True)
class Settings:
    """What the service serves: a database, the DPUs configured here, the data store."""

    database_url: str
    data_root: str
    default_project: str
    configured_dpus: tuple[str, ...]
    server_user: str
    sync_interval: float = 5.0


@dataclass(frozen=True)
class ServiceLinks:
    """URLs of the service, given to the job page template."""

    def preview(self, product: ProductView) -> str | None:
        return f"/api/products/{product.id}/preview.png" if product.is_image else None

    def file(self, product: ProductView) -> str:
        return f"/api/products/{product.id}/file"

    def job(self, job_id: int) -> str:
        return f"/jobs/{job_id}"

    def dpu(self, name: str) -> str:
        return f"/dpus/{quote(name, safe='')}"


def create_app(settings: Settings, database: Database | None = None) -> FastAPI:
    """The ASGI application. ``database``: an opened one (default: open ``settings``')."""
    from awe.db.engine import open_database
    from awe.web.syncer import Syncer

    db = database or open_database(settings.database_url)
    actions = Actions(settings.database_url, settings.default_project, settings.server_user)
    syncer = Syncer(settings.database_url, settings.sync_interval)
    loaders = [PackageLoader("awe.web", "templates"), PackageLoader("awe.report", "templates")]
    templates = make_environment(ChoiceLoader(loaders))
    previews: OrderedDict[str, bytes] = OrderedDict()  # shared by the request threads
    previews_lock = threading.Lock()
    links = ServiceLinks()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        syncer.start()
        yield
        syncer.stop()

    app = FastAPI(
        title="AWE DPU service",
        version="1",
        description="Jobs, tasks, logs, products and DPUs of an AWE job database. "
        "Reading needs no token; submitting and cancelling need a user's token "
        "(`awe web token`) as `Authorization: Bearer <token>`.",
        openapi_url=OPENAPI_PATH,
        docs_url=None,  # the interactive docs load scripts from a CDN: not on a closed network
        redoc_url=None,
        lifespan=lifespan,
    )
    bearer = HTTPBearer(auto_error=False, description="A token made by `awe web token`")

    # ---- errors and headers ------------------------------------------------------------
    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        return JSONResponse({"error": f"malformed request: {problems}"}, 422)

    @app.exception_handler(DatabaseError)
    async def _no_database(_request: Request, exc: DatabaseError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, 503)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error", exc_info=exc)
        return JSONResponse({"error": "internal error; the server log has the details"}, 500)

    @app.middleware("http")
    async def _security_headers(request: Request, call_next):
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    # ---- who is asking -----------------------------------------------------------------
    def token_user(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> str | None:
        if credentials is None:
            if "authorization" in request.headers:  # sent, but not as a bearer token
                raise HTTPException(
                    401,
                    "the Authorization header is not 'Bearer TOKEN'; send the token that "
                    "`awe web token` printed, as 'Authorization: Bearer TOKEN'",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            return None
        from awe.db.tokens import user_of_token

        user = user_of_token(db, credentials.credentials)
        if user is None:
            raise HTTPException(
                401,
                "this token is not valid (unknown or revoked); make one with `awe web token`",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return user

    def required_user(user: Annotated[str | None, Depends(token_user)]) -> str:
        if user is None:
            raise HTTPException(
                401,
                "submitting and cancelling need a token: send 'Authorization: Bearer TOKEN' "
                "(make one with `awe web token`); without one the service is read-only",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return user

    # ---- shared helpers ----------------------------------------------------------------
    def queue_of(filters: QueueFilter, page: int, per_page: int):
        try:
            return queue_page(db, filters, page, per_page)
        except BadFilter as err:
            raise HTTPException(400, str(err)) from None

    def view_of(job_id: Id, with_logs: bool = True):
        try:
            return job_view(db, job_id, with_logs)
        except NoSuchJob as err:
            raise HTTPException(404, str(err)) from None

    def product_of(product_id: Id):
        from awe.data.store import DataStore
        from awe.db.frames import Frame

        with db.session() as session:
            frame = session.get(Frame, product_id)
            if frame is None:
                raise HTTPException(404, f"no product with identifier {product_id}")
            digest, filename = frame.sha256, frame.filename
        store = DataStore(settings.data_root)
        if not store.exists(digest):
            raise HTTPException(
                404, f"product {product_id} ({filename}) is not in this server's data store"
            )
        return store.path(digest), filename

    def render(template: str, **context: Any) -> HTMLResponse:
        html = templates.get_template(template).render(
            database=mask_url(settings.database_url), **context
        )
        return HTMLResponse(html)

    # ---- JSON API ----------------------------------------------------------------------
    @app.get("/api/jobs", response_model=schemas.JobList, responses=ERRORS, tags=["jobs"])
    def api_jobs(
        user: Text = None,
        dpu: Text = None,
        state: State = None,
        sequence: Text = None,
        page: Page = 1,
        per_page: PerPage = PER_PAGE,
    ) -> dict[str, Any]:
        """Every user's jobs, newest first; filter by user, DPU, state, part of the sequence."""
        filters = QueueFilter(user, dpu, state.value if state else None, sequence)
        result = queue_of(filters, page, per_page)
        return {
            "jobs": [asdict(row) for row in result.rows],
            "total": result.total,
            "page": result.page,
            "per_page": result.per_page,
            "pages": result.pages,
        }

    @app.get("/api/jobs/{job_id}", response_model=schemas.JobOut, responses=ERRORS, tags=["jobs"])
    def api_job(job_id: Id) -> dict[str, Any]:
        """One job: options, parameters, code snapshot, task counts and its tasks."""
        view = view_of(job_id, with_logs=False)
        data = asdict(view)
        data["dpu"] = data.pop("dpu_name")
        data["running_seconds"] = running_seconds(view)
        return data

    @app.get(
        "/api/jobs/{job_id}/tasks",
        response_model=list[schemas.TaskOut],
        responses=ERRORS,
        tags=["jobs"],
    )
    def api_tasks(job_id: Id) -> list[dict[str, Any]]:
        """The job's tasks, failed first, then by number."""
        return [asdict(task) for task in view_of(job_id, with_logs=False).tasks]

    @app.get(
        "/api/jobs/{job_id}/logs",
        response_model=list[schemas.LogOut],
        responses=ERRORS,
        tags=["jobs"],
    )
    def api_logs(job_id: Id, task: TaskNumber = None) -> list[dict[str, Any]]:
        """Log lines of the job (by task number, then in order); tracebacks marked."""
        view = view_of(job_id)
        lines = [] if task is not None else [(None, line) for line in view.job_log]
        for task_view in sorted(view.tasks, key=lambda t: t.number):
            if task is None or task_view.number == task:
                lines.extend((task_view.number, line) for line in task_view.log)
        return [{"task": number, **asdict(line)} for number, line in lines]

    @app.get(
        "/api/jobs/{job_id}/products",
        response_model=list[schemas.ProductOut],
        responses=ERRORS,
        tags=["jobs"],
    )
    def api_products(job_id: Id) -> list[dict[str, Any]]:
        """The job's committed products (frames), with links to previews and files."""
        return [
            {**asdict(p), "preview": links.preview(p), "file": links.file(p)}
            for p in view_of(job_id, with_logs=False).products
        ]

    @app.get("/api/dpus", response_model=list[DpuSummary], tags=["dpus"])
    def api_dpus() -> list[dict[str, Any]]:
        """Configured DPUs and DPUs jobs were sent to, with their running and queued tasks."""
        return [asdict(d) for d in dpu_summaries(db, list(settings.configured_dpus))]

    @app.get(
        "/api/dpus/{name}", response_model=schemas.DpuQueueOut, responses=ERRORS, tags=["dpus"]
    )
    def api_dpu(name: str) -> dict[str, Any]:
        """The tasks DPU ``name`` runs now and holds queued."""
        known = dpu_names(db, list(settings.configured_dpus))
        if name not in known:
            raise HTTPException(404, f"no DPU {name!r}; DPUs: {', '.join(known)}")
        tasks = dpu_tasks(db, name)
        return {
            "name": name,
            "running": [asdict(t) for t in tasks["RUNNING"]],
            "queued": [asdict(t) for t in tasks["QUEUED"]],
        }

    @app.get(
        "/api/products/{product_id}/preview.png",
        responses={**ERRORS, 200: {"content": {"image/png": {}}, "description": "A PNG"}},
        response_class=Response,
        tags=["products"],
    )
    def api_preview(product_id: Id) -> Response:
        """A PNG of the product's image (asinh stretch, at most 512 pixels a side)."""
        from awe.report.preview import NotAnImage, fits_preview_png

        path, filename = product_of(product_id)
        digest = path.name
        with previews_lock:
            png = previews.get(digest)
        if png is None:
            try:
                png = fits_preview_png(path)
            except (NotAnImage, OSError) as err:
                raise HTTPException(404, f"product {product_id} ({filename}): {err}") from None
        with previews_lock:
            previews[digest] = png
            previews.move_to_end(digest)
            while len(previews) > PREVIEW_CACHE_SIZE:
                previews.popitem(last=False)
        return Response(png, media_type="image/png")

    @app.get(
        "/api/products/{product_id}/file",
        responses={
            **ERRORS,
            200: {
                "content": {"application/fits": {}, "application/octet-stream": {}},
                "description": "The file: FITS (RFC 4047), or any other product's bytes",
            },
        },
        response_class=FileResponse,
        tags=["products"],
    )
    def api_file(product_id: Id) -> FileResponse:
        """The product's file, under its own name."""
        path, filename = product_of(product_id)
        kind = "application/fits" if filename.lower().endswith(IMAGE_SUFFIXES) else None
        return FileResponse(
            path, filename=Path(filename).name, media_type=kind or "application/octet-stream"
        )

    @app.get("/api/sequences", response_model=list[schemas.SequenceOut], tags=["sequences"])
    def api_sequences() -> list[dict[str, Any]]:
        """The sequences this server can run, with their options."""
        return actions.sequences()

    @app.get("/api/whoami", response_model=schemas.WhoAmIOut, responses=ERRORS, tags=["auth"])
    def api_whoami(user: Annotated[str | None, Depends(token_user)]) -> dict[str, Any]:
        """The user of the token sent (null without one)."""
        return {"user": user}

    @app.post(
        "/api/jobs",
        status_code=201,
        response_model=schemas.SubmitOut,
        responses=DPU_ERRORS,
        tags=["jobs"],
    )
    def api_submit(
        body: schemas.SubmitIn, user: Annotated[str, Depends(required_user)]
    ) -> dict[str, Any]:
        """Submit a sequence as the token's user: ``dpu.run(sequence, **options)``."""
        try:
            job_id = actions.submit(
                user,
                body.sequence,
                body.options,
                project=body.project,
                dpu=body.dpu,
                time_limit=body.time_limit,
                send_code=body.send_code,
            )
        except RemoteError as err:
            raise HTTPException(502, f"the DPU cannot be reached: {err}") from None
        except DatabaseError:
            raise
        except AweError as err:
            raise HTTPException(400, str(err)) from None
        return {"job_id": job_id, "url": links.job(job_id)}

    @app.post(
        "/api/jobs/{job_id}/cancel",
        response_model=schemas.StatusOut,
        responses=DPU_ERRORS,
        tags=["jobs"],
    )
    def api_cancel(job_id: Id, user: Annotated[str, Depends(required_user)]) -> dict[str, Any]:
        """Cancel a job as the token's user: ``dpu.cancel_job(job_id)`` (owner only)."""
        owner = job_owner(db, job_id)
        if owner is None:
            raise HTTPException(404, f"no job with identifier {job_id}")
        try:
            status = actions.cancel(user, job_id)
        except RemoteError as err:
            raise HTTPException(502, f"the DPU cannot be reached: {err}") from None
        except DatabaseError:
            raise
        except AweError as err:
            raise HTTPException(403 if owner != user else 400, str(err)) from None
        return {
            "job_id": status.job_id,
            "state": status.state.value,
            "counts": status.counts,
            "queued": status.queued,
            "running": status.running,
            "owner": status.owner,
        }

    # ---- pages -------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page_queue(
        user: Text = None,
        dpu: Text = None,
        state: Text = None,
        sequence: Text = None,
        page: Page = 1,
        per_page: PerPage = PER_PAGE,
    ) -> HTMLResponse:
        filters = QueueFilter(user or None, dpu or None, state or None, sequence or None)
        result = queue_of(filters, page, per_page)
        query = {k: v for k, v in asdict(filters).items() if v}
        if per_page != PER_PAGE:
            query["per_page"] = per_page
        return render(
            "queue.html",
            queue=result,
            filters=filters,
            api=f"/api/jobs?{urlencode({**query, 'page': page})}",
            page_link=lambda n: f"/?{urlencode({**query, 'page': n})}",
            dpus=dpu_names(db, list(settings.configured_dpus)),
            states=["QUEUED", "RUNNING", "FINISHED", "CANCELLED"],
            now=datetime.now(timezone.utc),
        )

    @app.get("/jobs/{job_id}", response_class=HTMLResponse, include_in_schema=False)
    def page_job(job_id: Id) -> HTMLResponse:
        view = view_of(job_id)
        return render("job.html", job=view, running=running_seconds(view), links=links)

    @app.get("/submit", response_class=HTMLResponse, include_in_schema=False)
    def page_submit() -> HTMLResponse:
        return render("submit.html", sequences=actions.sequences())

    @app.get("/dpus", response_class=HTMLResponse, include_in_schema=False)
    def page_dpus() -> HTMLResponse:
        return render("dpus.html", dpus=dpu_summaries(db, list(settings.configured_dpus)))

    @app.get("/dpus/{name}", response_class=HTMLResponse, include_in_schema=False)
    def page_dpu(name: str) -> HTMLResponse:
        api_dpu(name)  # 404 for a DPU nobody knows
        tasks = dpu_tasks(db, name)
        return render(
            "dpu.html", name=name, running=tasks["RUNNING"], queued=tasks["QUEUED"], links=links
        )

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        kinds = {"awe.js": "text/javascript", "awe.css": "text/css"}
        if name not in kinds:
            raise HTTPException(404, f"no static file {name!r}")
        package = "awe.report" if name == "awe.css" else "awe.web"
        folder = "templates" if name == "awe.css" else "static"
        text = files(package).joinpath(folder, name).read_text(encoding="utf-8")
        return Response(text, media_type=kinds[name] + "; charset=utf-8")

    return app
