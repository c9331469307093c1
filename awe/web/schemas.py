"""Shapes of the JSON API, which FastAPI also turns into the OpenAPI description served at
``/api/openapi.json``: pydantic models where an answer differs from the dataclasses the
queries return (:mod:`awe.web.queue` rows are answered as they are)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from awe.web.queue import DpuTask, QueueRow


class Model(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ErrorOut(Model):
    error: str = Field(description="What was wrong and what would be right")


class JobList(Model):
    jobs: list[QueueRow]
    total: int = Field(description="Jobs that pass the filters, on all pages")
    page: int
    per_page: int
    pages: int


class TaskOut(Model):
    number: int
    name: str
    sequence: str
    step: int
    key: str | None
    state: str = Field(description="QUEUED, RUNNING or a final letter N, E, A, S, U")
    reason: str | None
    host: str | None
    pid: int | None
    started_at: datetime | None
    finished_at: datetime | None
    duration: float | None


class LogOut(Model):
    task: int | None = Field(description="Task number; null for lines of the job itself")
    time: datetime
    level: str
    message: str
    traceback: bool = Field(description="Part of a Python traceback")


class ProductOut(Model):
    id: int
    frame_type: str
    filename: str
    sha256: str
    size: int
    task_number: int | None
    instrument: str
    chip: str | None
    filter: str | None
    night: str | None
    object: str
    results: dict[str, Any]
    preview: str | None = Field(description="URL of a PNG preview (images only)")
    file: str = Field(description="URL of the file itself")


class JobOut(Model):
    id: int
    user: str
    project: str
    sequence: str
    dpu: str
    state: str
    options: dict[str, Any]
    parameters: dict[str, Any]
    code_snapshot_id: str | None
    commit: bool
    cancel_requested: bool
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    running_seconds: float | None
    counts: dict[str, int] = Field(description="Tasks by state (QUEUED, RUNNING, N, E, ...)")
    rerun_of: int | None = Field(description="The job this one reruns, if recorded")
    tasks: list[TaskOut] = Field(description="Failed tasks first, then by number")


class DpuQueueOut(Model):
    name: str
    running: list[DpuTask]
    queued: list[DpuTask]


class SubmitIn(Model):
    model_config = ConfigDict(extra="forbid")

    sequence: str = Field(description="A sequence or a chain 'A>B'", examples=["Hello"])
    options: dict[str, Any] = Field(
        default_factory=dict, description="Options by short or long name, as for dpu.run"
    )
    dpu: str | None = Field(None, description="Another configured DPU for this run")
    project: str | None = Field(None, description="Project of the job (default: the server's)")
    time_limit: float | None = Field(None, description="Seconds per task before it is aborted")
    send_code: bool = Field(True, description="Run the server's code snapshot (else the DPU's)")


class SubmitOut(Model):
    job_id: int
    url: str


class StatusOut(Model):
    job_id: int
    state: str
    counts: dict[str, int]
    queued: int
    running: int
    owner: str


class WhoAmIOut(Model):
    user: str | None = Field(description="The token's user; null without a valid token")


class OptionOut(Model):
    short: str
    long: str
    type: str
    default: Any
    required: bool
    help: str


class SequenceOut(Model):
    name: str
    doc: str
    fan_out: str
    options: list[OptionOut]
