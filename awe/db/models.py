"""SQLAlchemy 2 models of the job database: users, projects, jobs, tasks, log records.

Portable across SQLite and MySQL/MariaDB: every string has a length, times are stored as
naive UTC with microseconds on both (MySQL's DATETIME would otherwise drop them) and come
back timezone-aware, states are VARCHAR with a CHECK constraint rather than native enums.
Job and task ids are auto-increment keys that are never reused (``sqlite_autoincrement``),
so concurrent sessions get distinct ids from the database itself.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Double,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAME_LENGTH = 64
SEQUENCE_LENGTH = 255
SNAPSHOT_ID_LENGTH = 64  # a sha256 in hex
ACCOUNT_LENGTH = 320  # MySQL's user@host: 32 + 1 + 255, rounded up


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out; stored naive UTC with microseconds."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: AWE stores aware UTC datetimes")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


class JobState(str, enum.Enum):
    """``QUEUED -> RUNNING -> FINISHED`` or ``CANCELLED`` (docs/architecture.md, Task states)."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    CANCELLED = "CANCELLED"


class TaskState(str, enum.Enum):
    """``QUEUED -> RUNNING ->`` a final letter N/E/A/S/U (docs/architecture.md, Task states)."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    N = "N"  # normal: finished without error
    E = "E"  # error: the sequence raised
    A = "A"  # aborted: killed, cancelled while running, lost, over its time limit
    S = "S"  # skipped: cancelled before start, dependency failed, nothing to do
    U = "U"  # unknown: the outcome cannot be established

    @property
    def is_final(self) -> bool:
        return self not in (TaskState.QUEUED, TaskState.RUNNING)


FINAL_TASK_STATES = tuple(s for s in TaskState if s.is_final)


def _state_type(enum_class: type[enum.Enum], name: str) -> Enum:
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


# BIGINT keys on MySQL; SQLite only auto-increments a column typed exactly INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "awe_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"User({self.name!r})"


class Project(Base):
    __tablename__ = "awe_projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"Project({self.name!r})"


class Job(Base):
    """One ``dpu.run(...)``: a sequence (or chain) with its options, fanned out into tasks."""

    __tablename__ = "awe_jobs"
    __table_args__ = (
        Index("ix_awe_jobs_user_id_id", "user_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("awe_users.id"))
    project_id: Mapped[int] = mapped_column(ForeignKey("awe_projects.id"))
    sequence: Mapped[str] = mapped_column(String(SEQUENCE_LENGTH))
    dpu_name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    state: Mapped[JobState] = mapped_column(
        _state_type(JobState, "job_state"), default=JobState.QUEUED
    )
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    code_snapshot_id: Mapped[str | None] = mapped_column(String(SNAPSHOT_ID_LENGTH))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Where the DPU keeps the job's files (job.json, journals), on the DPU's side.
    work_dir: Mapped[str | None] = mapped_column(String(1024))
    commit: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Set when the owner asked to cancel, so a later sync ends the job CANCELLED.
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The job this one reruns (``dpu.rerun``): only the tasks that did not end N there.
    rerun_of: Mapped[int | None] = mapped_column(
        BigId,
        ForeignKey("awe_jobs.id", ondelete="SET NULL", name="fk_awe_jobs_rerun_of"),
        index=True,
    )
    #: MySQL/MariaDB: the database account that submitted the job (``CURRENT_USER()``),
    #: which cancel checks besides the user name; None on SQLite.
    account: Mapped[str | None] = mapped_column(String(ACCOUNT_LENGTH))

    user: Mapped[User] = relationship()
    project: Mapped[Project] = relationship()
    tasks: Mapped[list[Task]] = relationship(
        back_populates="job", order_by="Task.number", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"Job({self.id}, {self.sequence!r}, {self.state.value})"


class Task(Base):
    """One unit of work of a job (e.g. one chip of one step), run by one worker."""

    __tablename__ = "awe_tasks"
    __table_args__ = (
        UniqueConstraint("job_id", "number", name="uq_awe_tasks_job_number"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("awe_jobs.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)  # 0, 1, ... within the job
    name: Mapped[str] = mapped_column(String(SEQUENCE_LENGTH))
    sequence: Mapped[str] = mapped_column(String(SEQUENCE_LENGTH), default="")
    step: Mapped[int] = mapped_column(Integer, default=0)  # position in a chain 'A>B'
    key: Mapped[str | None] = mapped_column(String(SEQUENCE_LENGTH))  # chip, exposure, ...
    state: Mapped[TaskState] = mapped_column(
        _state_type(TaskState, "task_state"), default=TaskState.QUEUED
    )
    #: Why the task ended as it did (the error, the signal, the time limit, ...).
    reason: Mapped[str | None] = mapped_column(Text)
    time_limit: Mapped[float | None] = mapped_column(Double)
    #: Bytes of the task's journal already folded into the database.
    journal_offset: Mapped[int] = mapped_column(BigInteger, default=0)
    #: With commit (C=1): its products are in the data store and the database.
    products_committed: Mapped[bool] = mapped_column(Boolean, default=False)
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    job: Mapped[Job] = relationship(back_populates="tasks")
    depends_on: Mapped[list[Task]] = relationship(
        secondary="awe_task_dependencies",
        primaryjoin="Task.id == TaskDependency.task_id",
        secondaryjoin="Task.id == TaskDependency.depends_on_id",
    )

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, or ``None`` while not both are known."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def __repr__(self) -> str:
        return f"Task({self.job_id}:{self.number}, {self.name!r}, {self.state.value})"


class TaskDependency(Base):
    """Edge of the task graph: ``task_id`` may start only after ``depends_on_id`` ended."""

    __tablename__ = "awe_task_dependencies"

    task_id: Mapped[int] = mapped_column(
        ForeignKey("awe_tasks.id", ondelete="CASCADE"), primary_key=True
    )
    depends_on_id: Mapped[int] = mapped_column(
        ForeignKey("awe_tasks.id", ondelete="CASCADE"), primary_key=True
    )


class LogRecord(Base):
    """One log line of a job (``task_id`` set when a task wrote it)."""

    __tablename__ = "awe_log_records"
    __table_args__ = (
        Index("ix_awe_log_records_job_id_id", "job_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("awe_jobs.id", ondelete="CASCADE"))
    task_id: Mapped[int | None] = mapped_column(
        ForeignKey("awe_tasks.id", ondelete="CASCADE"), index=True
    )
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    level: Mapped[str] = mapped_column(String(16), default="INFO")
    message: Mapped[str] = mapped_column(Text)
