"""Ingest: raw FITS files in, one typed raw frame per CCD out (``awe ingest PATH...``).

Per file, in three steps, so that nothing is ever half-ingested:

1. read every header and derive every frame's keys (instrument from INSTRUME, frame type,
   chip, filter, night, exposure...) by the instrument's conventions; any problem is an
   error for this file and nothing has been written yet;
2. write each CCD as its own FITS file into the content-addressed store;
3. add all the file's frame rows in one transaction. If that fails, the store files this
   file added are removed again, so neither rows nor files remain.

Ingest is idempotent: a frame is identified by its content hash and type, and content that
is already there is skipped, so ingesting the same file twice adds nothing. Each bad file
gets one error line naming it and its problem, and the other files go on.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from awe.context import session_database
from awe.data.errors import DataError, IngestError
from awe.data.fits import FitsProblem, fits_stem, image_hdus, iter_fits_files, open_fits
from awe.data.instruments import Instrument, instrument_for_header, instrument_names

if TYPE_CHECKING:
    from awe.data.store import DataStore
    from awe.db.database import Database


@dataclass
class ChipFrame:
    """The keys of one CCD's frame, read from the headers (no pixels yet)."""

    hdu_index: int
    frame_type: str
    values: dict[str, Any]


@dataclass
class FileResult:
    """What ingesting one file did."""

    path: Path
    added: Counter[str] = field(default_factory=Counter)  # frame type -> new frames
    present: int = 0  # frames that were already ingested
    skipped_chips: list[str] = field(default_factory=list)  # dead CCDs
    error: str | None = None


@dataclass
class IngestReport:
    """The outcome of one ingest call, file by file."""

    files: list[FileResult]

    @property
    def added(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for result in self.files:
            total.update(result.added)
        return total

    @property
    def present(self) -> int:
        return sum(r.present for r in self.files)

    @property
    def errors(self) -> list[str]:
        return [r.error for r in self.files if r.error]

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        good = len(self.files) - len(self.errors)
        added = self.added
        kinds = ", ".join(f"{name} {count}" for name, count in sorted(added.items()))
        text = (
            f"Ingested {good} of {len(self.files)} files: {sum(added.values())} new frames"
            + (f" ({kinds})" if kinds else "")
            + f", {self.present} already present"
        )
        if self.errors:
            text += f"; {len(self.errors)} file(s) failed, see the errors above"
        return text


def ingest(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    database: Database | None = None,
    store: DataStore | None = None,
    progress: bool | None = None,
    verbose: bool = True,
) -> IngestReport:
    """Ingest FITS files, and the FITS files inside any folder given, into ``database`` and
    ``store`` (default: the session's). ``progress`` shows a bar (None: when on a terminal);
    ``verbose`` prints an error line per bad file and a summary. Never raises for a bad
    file: its error is in the report."""
    from tqdm import tqdm

    from awe.data.store import DataStore

    database = session_database(database)
    store = store if store is not None else DataStore.for_session()
    files = expand_paths([paths] if isinstance(paths, str | os.PathLike) else paths)
    results = []
    disable = None if progress is None else not progress
    with tqdm(files, desc="Ingesting", unit="file", disable=disable, file=sys.stderr) as bar:
        for path in bar:
            result = ingest_file(path, database, store)
            if result.error and verbose:
                bar.write(f"ERROR: {result.error}", file=sys.stderr)
            results.append(result)
    report = IngestReport(results)
    if verbose:
        print(report.summary(), file=sys.stderr)
    return report


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files as given, folders as the FITS files below them; each file once."""
    seen: dict[Path, None] = {}
    for entry in paths:
        path = Path(entry).expanduser()
        found = iter_fits_files(path) if path.is_dir() else [path]
        for file in found:
            seen.setdefault(file, None)
    return list(seen)


def ingest_file(path: Path, database: Database, store: DataStore) -> FileResult:
    """Ingest one file: all its CCDs, or (on any problem) none of them."""
    result = FileResult(path)
    try:
        if not path.is_file():
            raise IngestError(f"{path}: no such file")
        with open_fits(path) as hdul:
            instrument, chips = describe(hdul, path, result)
            contents = [(chip, _store(store, hdul, chip)) for chip in chips]
    except (FitsProblem, OSError) as err:
        result.error = f"{path}: {_reason(err)}"
        return result
    except IngestError as err:  # already names the file
        result.error = str(err)
        return result
    except DataError as err:  # an unknown chip, filter or frame type value
        result.error = f"{path}: {err}"
        return result
    created = [digest for _chip, (digest, _size, new) in contents if new]
    try:
        _record(database, path, contents, result)
    except Exception as err:  # noqa: BLE001 - the file fails, the batch goes on
        _forget(database, store, created)
        result.added.clear()
        result.present = 0
        result.error = (
            f"{path}: could not be recorded in the database ({_reason(err)}); "
            f"nothing of it was kept"
        )
    return result


def _reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return f"cannot be read ({err.strerror})"
    text = str(getattr(err, "orig", None) or err).strip().splitlines()
    return text[0] if text else type(err).__name__


# ---- step 1: headers to keys ------------------------------------------------------------------
def describe(hdul: Any, path: Path, result: FileResult) -> tuple[Instrument, list[ChipFrame]]:
    """Every CCD's frame keys, or an :class:`IngestError` naming the file and the problem."""
    from awe.db.frames import frame_class

    primary = hdul[0].header
    if "INSTRUME" not in primary:
        raise IngestError(
            f"{path}: lacks the keyword INSTRUME, so its instrument is unknown "
            f"(AWE knows {', '.join(instrument_names())})"
        )
    instrument = instrument_for_header(primary["INSTRUME"])
    if instrument is None:
        raise IngestError(
            f"{path}: INSTRUME = {primary['INSTRUME']!r} is not an instrument AWE knows "
            f"(known: {', '.join(instrument_names())}); an instrument is added as a JSON file "
            f"in awe/data/instruments/"
        )
    images = image_hdus(hdul)
    if not images:
        raise IngestError(f"{path}: holds no image data (no HDU with NAXIS >= 2)")
    chips = []
    for index, hdu in images:
        headers = (hdu.header, primary)
        reader = _Reader(path, instrument, index, headers)
        frame_type = instrument.frame_type(reader.text("frame_type"))
        try:
            cls = frame_class(frame_type)
        except ValueError as err:
            raise IngestError(f"{path}: {instrument.path}: {err}") from None
        chip = instrument.chip(reader.text("chip"))
        if chip.dead:
            result.skipped_chips.append(chip.name)
            continue
        values = reader.keys(cls.filter_dependent)
        values.update(
            chip=chip.name,
            filename=f"{fits_stem(path.name)}_{chip.number}.fits",
            night=instrument.site.night_of(values["date_obs"]),
        )
        chips.append(ChipFrame(index, frame_type, values))
    if not chips:
        raise IngestError(
            f"{path}: every CCD in it is a dead chip ({', '.join(result.skipped_chips)})"
        )
    return instrument, chips


class _Reader:
    """Reads AWE's fields from a CCD's headers (extension first, then primary) through the
    instrument's keyword names, with errors that name file, HDU and keyword."""

    def __init__(self, path: Path, instrument: Instrument, index: int, headers: Sequence[Any]):
        self.path, self.instrument, self.index, self.headers = path, instrument, index, headers

    def keyword(self, field_name: str) -> str | None:
        return self.instrument.keywords.get(field_name)

    def raw(self, field_name: str, *, required: bool = True) -> Any:
        keyword = self.keyword(field_name)
        for header in self.headers if keyword else ():
            if keyword in header and header[keyword] not in (None, ""):
                return header[keyword]
        if required:
            raise IngestError(
                f"{self.path}: HDU {self.index} lacks the keyword {keyword or field_name}, "
                f"which {self.instrument.name} files carry the {field_name.replace('_', ' ')} in"
            )
        return None

    def text(self, field_name: str) -> str:
        return str(self.raw(field_name)).strip()

    def number(self, field_name: str, kind: type = float, *, required: bool = True) -> Any:
        value = self.raw(field_name, required=required)
        if value is None:
            return None
        try:
            return kind(value)
        except (TypeError, ValueError):
            raise IngestError(
                f"{self.path}: HDU {self.index}: {self.keyword(field_name)} = {value!r} is "
                f"not a number"
            ) from None

    def keys(self, filter_dependent: bool) -> dict[str, Any]:
        mjd, date_obs = self.time()
        return {
            "instrument": self.instrument.name,
            "filter": self.filter(filter_dependent),
            "object": str(self.raw("object", required=False) or "").strip(),
            "exposure_number": self.number("exposure_number", int),
            "exposure_time": self.number("exposure_time"),
            "mjd": mjd,
            "date_obs": date_obs,
            "ra": _angle(self.raw("ra", required=False), hours_if_text=True),
            "dec": _angle(self.raw("dec", required=False), hours_if_text=False),
            "airmass": self.number("airmass", required=False),
        }

    def filter(self, filter_dependent: bool) -> str | None:
        """The AWE filter name; None for frames the filter does not matter to (biases)."""
        if not filter_dependent:
            return None
        value = self.raw("filter")
        try:
            return self.instrument.filter(str(value)).name
        except DataError as err:
            raise IngestError(f"{self.path}: HDU {self.index}: {err}") from None

    def time(self) -> tuple[float, datetime]:
        """MJD and UTC instant of the start of the exposure, from either keyword."""
        from astropy.time import Time

        mjd = self.number("mjd", required=False)
        date_obs = self.raw("date_obs", required=False)
        if mjd is None and date_obs is None:
            raise IngestError(
                f"{self.path}: HDU {self.index} lacks both {self.keyword('mjd')} and "
                f"{self.keyword('date_obs')}; one of them must give the time of observation"
            )
        try:  # DATE-OBS is exact to the digit written; an MJD float is not, so it goes second
            if date_obs is not None:
                instant = Time(str(date_obs).strip(), format="isot", scale="utc")
            else:
                instant = Time(mjd, format="mjd", scale="utc")
        except ValueError:
            raise IngestError(
                f"{self.path}: HDU {self.index}: {self.keyword('date_obs')} = {date_obs!r} is "
                f"not an ISO time (YYYY-MM-DDThh:mm:ss)"
            ) from None
        moment = instant.to_datetime(timezone=timezone.utc)
        return (float(instant.mjd) if mjd is None else mjd), moment


def _angle(value: Any, *, hours_if_text: bool) -> float | None:
    """Degrees from a number, or from sexagesimal text (DECam writes TELRA '05:12:33.1')."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        if ":" not in text:
            return float(text)
        sign = -1.0 if text.startswith("-") else 1.0
        parts = [abs(float(p)) for p in text.lstrip("+-").split(":")]
        degrees = sign * (parts[0] + parts[1] / 60 + (parts[2] if len(parts) > 2 else 0) / 3600)
    except (ValueError, IndexError):
        return None  # a pointing is useful, not required
    return degrees * 15.0 if hours_if_text else degrees


# ---- step 2: pixels to the store --------------------------------------------------------------
def _store(store: DataStore, hdul: Any, chip: ChipFrame) -> tuple[str, int, bool]:
    """Write one CCD's file; (sha256, size, whether this call added it to the store)."""
    from awe.data.fits import chip_file
    from awe.data.store import sha256_bytes

    content = chip_file(hdul[0].header, hdul[chip.hdu_index])
    digest = sha256_bytes(content)
    new = not store.exists(digest)
    if new:
        store.put(content)
    return digest, len(content), new


# ---- step 3: rows in one transaction ----------------------------------------------------------
def _record(
    database: Database,
    path: Path,
    contents: list[tuple[ChipFrame, tuple[str, int, bool]]],
    result: FileResult,
) -> None:
    from sqlalchemy import select

    from awe.db.frames import Frame, frame_class

    with database.session() as session:
        digests = [digest for _chip, (digest, _size, _new) in contents]
        query = select(Frame.sha256, Frame.frame_type).where(Frame.sha256.in_(digests))
        present = {(digest, frame_type) for digest, frame_type in session.execute(query)}
        for chip, (digest, size, _new) in contents:
            if (digest, chip.frame_type) in present:
                result.present += 1
                continue
            cls = frame_class(chip.frame_type)
            session.add(cls(sha256=digest, size=size, **chip.values))
            result.added[chip.frame_type] += 1


def _forget(database: Database, store: DataStore, digests: list[str]) -> None:
    """Undo step 2 after step 3 failed: remove the files this ingest added, unless a row
    (of a concurrent ingest of the same content) has come to need one meanwhile."""
    if not digests:
        return
    from sqlalchemy import select

    from awe.db.frames import Frame

    try:
        with database.session() as session:
            needed = set(session.scalars(select(Frame.sha256).where(Frame.sha256.in_(digests))))
    except Exception:  # noqa: BLE001 - if we cannot ask, keeping a file is the safe side
        return
    for digest in digests:
        if digest not in needed:
            store.remove(digest)
