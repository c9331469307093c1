"""The messages AWE's parts exchange: a job, its tasks, file references, product records.

The client writes a :class:`Job` as ``job.json`` into the job's folder on the DPU; the
runner (pool), the workers (Slurm) and the agents read it back; tasks report
:class:`ProductRecord` s in their journals. Every message is a frozen dataclass that
travels as JSON, and a job carries :data:`FORMAT_VERSION`: one written in another format
(an older AWE, or code shipped from a newer checkout to an older installation) is refused
with a message saying so, never read by guesswork.

Standard library only (dataclasses and json): the DPU-side agents carry this module when
they are sent to a machine that has no AWE installed, and the database layer imports it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

#: The format of job descriptions this code writes and reads. Bump it when a field changes
#: meaning or a reader would misread an older job.
FORMAT_VERSION = 1
#: Marks a task input that is a file reference (staged by content to remote DPUs).
FILE_MARK = "awe_file"


#: The columns that say what a frame shows (not its file, validity or provenance): a
#: product inherits them from the frame it was made from, and a task reports them.
INHERITED_COLUMNS = (
    "instrument",
    "chip",
    "filter",
    "object",
    "exposure_number",
    "mjd",
    "exposure_time",
    "ra",
    "dec",
    "airmass",
)


class FormatError(ValueError):
    """A message in a format this code does not read (written by another AWE version)."""


@dataclass(frozen=True)
class FileRef:
    """A file as a task input: by path and content hash, so a remote DPU receives it once
    (into its content-addressed store) and the task finds it at ``input["path"]``."""

    path: str
    sha256: str
    name: str = ""
    frame_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {FILE_MARK: FORMAT_VERSION, **asdict(self)}
        if self.frame_id is None:
            del record["frame_id"]
        return record

    @staticmethod
    def is_ref(value: Any) -> bool:
        """Whether a task input (as it travels, JSON) is a file reference."""
        return isinstance(value, Mapping) and FILE_MARK in value

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> FileRef:
        _check_version("file reference", value.get(FILE_MARK))
        return cls(value["path"], value["sha256"], value.get("name", ""), value.get("frame_id"))

    def moved(self, path: str) -> dict[str, Any]:
        """The same reference, found at ``path`` (a remote DPU's store), as JSON."""
        return FileRef(path, self.sha256, self.name, self.frame_id).to_json()


@dataclass(frozen=True)
class ProductRecord:
    """A file a task made: where it is on the DPU, its kind (a frame type, say), its
    sha256 and what the task said about it (chip, night, results)."""

    path: str
    kind: str
    sha256: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> ProductRecord:
        return cls(value["path"], value["kind"], value["sha256"], dict(value.get("metadata", {})))


@dataclass(frozen=True)
class Task:
    """One task of a job: what the planner makes, the database records and the runner or a
    worker runs. ``depends_on`` holds the numbers of the tasks it waits for."""

    name: str
    depends_on: Sequence[int] = ()
    sequence: str = ""
    step: int = 0
    key: str | None = None
    time_limit: float | None = None
    number: int = 0
    inputs: Sequence[Any] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    estimate: float = 0.0
    #: Times a task that died on its own is run again (the sequence's ``retries``).
    retries: int = 0
    #: Products (as JSON) of an earlier job's tasks this one waited for: a rerun's inputs.
    reused_upstream: Sequence[Any] = ()
    #: Runs when only some of ``depends_on`` failed (see ``awe.sequence.sequence``).
    tolerant: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "depends_on", tuple(self.depends_on))
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "reused_upstream", tuple(self.reused_upstream))

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["depends_on"] = list(self.depends_on)
        record["inputs"] = list(self.inputs)
        record["reused_upstream"] = list(self.reused_upstream)
        if not self.tolerant:  # as written before the field existed: older runners read it
            del record["tolerant"]
        return record

    def skip_reason(self, ended: Mapping[int, str | None], names: Mapping[int, str]) -> str | None:
        """Why this task must not start, given the final letters of the tasks it waits for
        (``None`` for one that left no outcome); ``None`` when it may start."""
        failed = [n for n in self.depends_on if ended.get(n) != "N"]
        if not failed or (self.tolerant and len(failed) < len(self.depends_on)):
            return None
        state = ended.get(failed[0])
        first = f"{names[failed[0]]} {f'ended {state}' if state else 'left no outcome'}"
        if not self.tolerant:
            return first
        more = f" and {len(failed) - 1} more" if len(failed) > 1 else ""
        return f"every task it waits for failed: {first}{more}"

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Task:
        unknown = set(value) - _TASK_FIELDS
        if unknown:
            raise FormatError(f"a task with fields this AWE does not know: {sorted(unknown)}")
        return cls(**value)


_TASK_FIELDS = {f.name for f in fields(Task)}


@dataclass(frozen=True)
class Job:
    """A job as its DPU reads it (``job.json``). ``home``: where the runner finds the user's
    sequences (``home/sequences``: the job's code snapshot when it has one);
    ``max_workers``: tasks at once on a pool DPU (None: one per core there)."""

    job_id: int | None
    sequence: str
    tasks: tuple[Task, ...]
    home: str = ""
    commit: bool = False
    max_workers: int | None = None
    format: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "job_id": self.job_id,
            "sequence": self.sequence,
            "home": self.home,
            "commit": self.commit,
            "max_workers": self.max_workers,
            "tasks": [task.to_json() for task in self.tasks],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json())

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Job:
        _check_version("job", value.get("format"))
        return cls(
            job_id=value["job_id"],
            sequence=value["sequence"],
            tasks=tuple(Task.from_json(task) for task in value["tasks"]),
            home=value.get("home", ""),
            commit=bool(value.get("commit", False)),
            max_workers=value.get("max_workers"),
        )

    @classmethod
    def read(cls, path: Path) -> Job:
        """The job in ``path`` (``job.json``); FormatError when another AWE wrote it."""
        try:
            return cls.from_json(json.loads(path.read_text()))
        except FormatError as err:
            raise FormatError(f"{path}: {err}") from None


def _check_version(what: str, version: Any) -> None:
    if version == FORMAT_VERSION:
        return
    if not isinstance(version, int) or version < FORMAT_VERSION:
        written = "no format version" if version is None else f"format {version!r}"
        raise FormatError(
            f"this {what} was written by an older AWE ({written}); this AWE reads format "
            f"{FORMAT_VERSION} only and will not guess. Submit the job again with this AWE "
            f"(dpu.run), which writes it in format {FORMAT_VERSION}"
        )
    raise FormatError(
        f"this {what} was written by a newer AWE (format {version}); this AWE reads format "
        f"{FORMAT_VERSION}. Run it with the code that wrote it (send_code=True) or upgrade "
        f"AWE on the DPU"
    )
