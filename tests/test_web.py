"""`awe web` for real: a uvicorn server on a free loopback port, in its own process,
against SQLite and MariaDB, with jobs the local DPU really ran (finished, failed, running,
cancelled); the API checked against its OpenAPI description; tokens; the static report."""

from __future__ import annotations

import base64
import io
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from awe.db.jobs import TaskSpec, record_job
from awe.dpu import Processor
from awe.errors import AweError
from tests.webserver import (
    TIMEOUT,
    WebServer,
    alice_processor,
    running_server,
    token_for,
    wait_for,
)


@pytest.fixture
def alice(awe_home: Path, database_url: str) -> Processor:
    return alice_processor(awe_home, database_url)


@pytest.fixture
def server(alice: Processor, awe_home: Path, database_url: str) -> Iterator[WebServer]:
    with running_server(awe_home, database_url) as web:
        yield web


def refusal(dpu: Processor, sequence: str, options: dict) -> str:
    """The message the Processor itself gives for a bad ``dpu.run``."""
    with pytest.raises(AweError) as err:
        dpu.run(sequence, **options)
    return str(err.value)


# ---- reading ----------------------------------------------------------------------------
def test_api_lists_filters_pages_and_describes_jobs(alice: Processor, server: WebServer) -> None:
    hello = alice.run("Hello", n=2, o="<script>alert(1)</script>")
    failed = alice.run("Outcomes")
    alice.wait([hello, failed], timeout=TIMEOUT)
    elsewhere = record_job(  # bob's job on a DPU this server does not run
        alice.database,
        username="bob",
        project="P2",
        sequence="Reduce",
        dpu_name="lisa",
        tasks=[TaskSpec("Reduce[ccd50]")],
    )
    api = httpx.Client(base_url=server.url, timeout=30)

    listing = api.get("/api/jobs").json()
    assert [j["id"] for j in listing["jobs"]] == [elsewhere, failed, hello]
    assert listing["total"] == 3 and listing["pages"] == 1
    by_id = {j["id"]: j for j in listing["jobs"]}
    assert by_id[hello]["options"]["object"] == "<script>alert(1)</script>"
    assert by_id[hello]["counts"] == {"N": 2, "E": 0, "A": 0, "S": 0, "U": 0}
    assert by_id[failed]["counts"] == {"N": 1, "E": 1, "A": 2, "S": 1, "U": 0}
    assert by_id[elsewhere]["state"] == "QUEUED"
    assert (by_id[elsewhere]["user"], by_id[elsewhere]["project"]) == ("bob", "P2")

    def ids(**params) -> list[int]:
        return [j["id"] for j in api.get("/api/jobs", params=params).json()["jobs"]]

    assert ids(user="bob") == [elsewhere]
    assert ids(dpu="local") == [failed, hello]
    assert ids(state="FINISHED") == [failed, hello]
    assert ids(sequence="utcom") == [failed]
    assert ids(sequence="%") == []  # a literal, not a wildcard
    assert ids(per_page=1, page=2) == [failed]
    assert api.get("/api/jobs", params={"per_page": 2}).json()["pages"] == 2
    bad = api.get("/api/jobs", params={"state": "DONE"})
    assert bad.status_code == 422
    assert (
        "state: Input should be 'QUEUED', 'RUNNING', 'FINISHED' or 'CANCELLED'"
        in (bad.json()["error"])
    )
    assert api.get("/", params={"state": "DONE"}).status_code == 400  # the page says why too

    job = api.get(f"/api/jobs/{failed}").json()
    assert job["state"] == "FINISHED" and job["user"] == "alice" and job["dpu"] == "local"
    assert re.fullmatch(r"[0-9a-f]{64}", job["code_snapshot_id"])
    assert job["rerun_of"] is None
    assert [t["state"] for t in job["tasks"]] == ["E", "A", "A", "S", "N"]  # failed first
    assert job["tasks"][0]["reason"] == "ValueError: this chip is broken"
    assert job["tasks"][0]["host"] == socket.gethostname()
    assert job["tasks"][0]["duration"] >= 0
    assert api.get(f"/api/jobs/{failed}/tasks").json() == job["tasks"]

    logs = api.get(f"/api/jobs/{failed}/logs", params={"task": 1}).json()
    traceback = [line["message"] for line in logs if line["traceback"]]
    assert traceback[0].endswith("Traceback (most recent call last):")
    assert traceback[-1].endswith("ValueError: this chip is broken")
    assert any('raise ValueError("this chip is broken")' in line for line in traceback)
    assert {line["task"] for line in logs} == {1}

    dpus = {d["name"]: d for d in api.get("/api/dpus").json()}
    assert dpus["local"]["configured"] and dpus["local"]["jobs"] == 2
    assert not dpus["lisa"]["configured"] and dpus["lisa"]["queued"] == 1
    queue = api.get("/api/dpus/lisa").json()
    assert [(t["job_id"], t["user"], t["state"]) for t in queue["queued"]] == [
        (elsewhere, "bob", "QUEUED")
    ]
    assert queue["running"] == []

    for path in (f"/api/jobs/{elsewhere + 100}", "/api/dpus/nowhere", "/api/products/5/file"):
        missing = api.get(path)
        assert missing.status_code == 404 and set(missing.json()) == {"error"}
    page = api.get(f"/jobs/{hello}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert api.get("/").headers["content-security-policy"].startswith("default-src 'self'")


def test_openapi_description_is_valid_and_covers_the_api(server: WebServer) -> None:
    from openapi_spec_validator import validate

    spec = httpx.get(f"{server.url}/api/openapi.json", timeout=30).json()
    validate(spec)
    assert {
        "/api/jobs",
        "/api/jobs/{job_id}",
        "/api/jobs/{job_id}/tasks",
        "/api/jobs/{job_id}/logs",
        "/api/jobs/{job_id}/products",
        "/api/jobs/{job_id}/cancel",
        "/api/dpus",
        "/api/dpus/{name}",
    } <= set(spec["paths"])
    assert set(spec["paths"]["/api/jobs"]) == {"get", "post"}
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


# ---- writing: tokens, the Processor's rules ------------------------------------------------
def test_submit_and_cancel_need_a_token_and_keep_the_processors_rules(
    alice: Processor, server: WebServer
) -> None:
    api = httpx.Client(base_url=server.url, timeout=60)
    as_alice, as_bob = token_for(alice.database, "alice"), token_for(alice.database, "bob")
    request = {"sequence": "Hello", "options": {"n": 2, "s": 600.0}}

    anonymous = api.post("/api/jobs", json=request)
    assert anonymous.status_code == 401 and "need a token" in anonymous.json()["error"]
    forged = api.post("/api/jobs", json=request, headers={"Authorization": "Bearer awe_x"})
    assert forged.status_code == 401 and "not valid" in forged.json()["error"]
    assert api.get("/api/jobs").json()["total"] == 0

    for sequence, options in [("Helo", {}), ("Hello", {"x": 1}), ("Hello", {"n": "three"})]:
        answer = api.post(
            "/api/jobs", json={"sequence": sequence, "options": options}, headers=as_alice
        )
        assert answer.status_code == 400
        assert answer.json()["error"] == refusal(alice, sequence, options)
    assert api.get("/api/jobs").json()["total"] == 0  # nothing queued by refusals

    created = api.post("/api/jobs", json=request, headers=as_alice)
    assert created.status_code == 201
    job_id = created.json()["job_id"]
    assert created.json()["url"] == f"/jobs/{job_id}"
    assert api.get("/api/whoami", headers=as_alice).json() == {"user": "alice"}
    job = wait_for(  # the server follows the job by itself
        lambda: (j := api.get(f"/api/jobs/{job_id}").json())["counts"].get("RUNNING") == 2 and j,
        "both tasks to run",
    )
    assert job["user"] == "alice" and job["options"] == {"count": 2, "sleep": 600.0, "object": ""}

    refused = api.post(f"/api/jobs/{job_id}/cancel", headers=as_bob)
    assert refused.status_code == 403
    assert refused.json()["error"] == f"job {job_id} belongs to alice; only its owner can cancel it"
    assert api.get(f"/api/jobs/{job_id}").json()["state"] == "RUNNING"
    assert api.post(f"/api/jobs/{job_id}/cancel").status_code == 401

    cancelled = api.post(f"/api/jobs/{job_id}/cancel", headers=as_alice)
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "CANCELLED" and cancelled.json()["counts"]["A"] == 2
    (status,) = alice.get_status(job_id)
    assert status.state.value == "CANCELLED" and status.running == 0
    assert api.post(f"/api/jobs/{job_id + 1}/cancel", headers=as_alice).status_code == 404


def test_tokens_are_stored_hashed_and_can_be_revoked(alice: Processor, awe_home: Path) -> None:
    from awe.db.tokens import WebToken, list_tokens, revoke_token, token_hash, user_of_token

    env = {**os.environ, "AWE_DATABASE_URL": alice.env.database_url, "AWE_USERNAME": "carol"}
    made = subprocess.run(
        [sys.executable, "-m", "awe.cli", "web", "token", "--label", "laptop"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    secret = made.stdout.strip()
    assert re.fullmatch(r"awe_[A-Za-z0-9_-]{43}", secret)
    assert "shown only now" in made.stderr
    with alice.database.session() as session:
        stored = session.scalars(select(WebToken.sha256)).all()
    assert stored == [token_hash(secret)] and secret not in stored
    assert user_of_token(alice.database, secret) == "carol"
    (info,) = list_tokens(alice.database, "carol")
    assert info.label == "laptop" and info.last_used_at is not None
    with pytest.raises(LookupError, match="carol has no token 99"):
        revoke_token(alice.database, 99, "carol")
    with pytest.raises(LookupError):
        revoke_token(alice.database, info.id, "mallory")  # only her own
    revoke_token(alice.database, info.id, "carol")
    assert user_of_token(alice.database, secret) is None


# ---- products, previews and the static report ----------------------------------------------
def test_products_have_previews_and_the_report_stands_alone(
    alice: Processor, server: WebServer, tmp_path: Path
) -> None:
    from astropy.io import fits
    from PIL import Image

    job_id = alice.run("MakeImage", i="WFI", C=1)
    alice.wait(job_id, timeout=TIMEOUT)
    api = httpx.Client(base_url=server.url, timeout=60)
    (product,) = api.get(f"/api/jobs/{job_id}/products").json()
    assert product["frame_type"] == "BiasFrame" and product["chip"] == "ccd50"
    stored = api.get(product["file"])
    assert stored.status_code == 200 and stored.content[:6] == b"SIMPLE"
    truth = fits.getdata(io.BytesIO(stored.content))
    png = api.get(product["preview"])
    assert png.headers["content-type"] == "image/png"
    image = np.asarray(Image.open(io.BytesIO(png.content)))
    assert image.shape == truth.shape  # small: not reduced
    # FITS row 0 is at the bottom of the picture; the bright pixel is the brightest there.
    star = np.unravel_index(truth.argmax(), truth.shape)
    assert np.unravel_index(image.argmax(), image.shape) == (truth.shape[0] - 1 - star[0], star[1])
    assert image.max() == 255 and np.median(image) < 255

    path = alice.report(job_id, str(tmp_path / "job.html"))
    html = path.read_text()
    assert "<script" not in html  # no scripts, nothing fetched: a file to mail around
    (inline,) = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert base64.b64decode(inline) == png.content
    assert f"Job {job_id}: MakeImage" in html and "BiasFrame" in html


def test_report_of_an_unknown_job_is_a_clear_error(alice: Processor, tmp_path: Path) -> None:
    with pytest.raises(AweError, match="no job with identifier 12345"):
        alice.report(12345, str(tmp_path / "x.html"))
    assert not (tmp_path / "x.html").exists()
