"""FITS helpers: is this file whole, which HDUs hold images, one CCD as its own file.

astropy opens a truncated file with only a warning and fills the missing pixels, so the
structure is checked here first, from the FITS standard itself: headers are 2880-byte
blocks of 80-character cards ending with END, and each header announces the size of the
data that follows (|BITPIX|/8 * GCOUNT * (PCOUNT + NAXIS1 * ... * NAXISn)). A file shorter
than its headers promise is truncated; that is an error, not a warning.

At ingest each CCD becomes a single-HDU FITS file whose header is the primary header
merged with the CCD's extension header (extension values win), as Astro-WISE does, so a
raw frame carries everything its exposure said about it. Pixel values are copied exactly.
"""

from __future__ import annotations

import copy
import gzip
import io
import math
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning

BLOCK = 2880
CARD = 80
GZIP_MAGIC = b"\x1f\x8b"
#: Keywords that describe a file's structure; they are recomputed when a CCD is written out.
STRUCTURAL = frozenset(
    {"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "NEXTEND", "PCOUNT", "GCOUNT"}
    | {"BZERO", "BSCALE", "CHECKSUM", "DATASUM", "INHERIT", "END"}
)


class FitsProblem(Exception):
    """What is wrong with a file, in words a user can act on (the caller adds the path)."""


@dataclass(frozen=True)
class HduExtent:
    header_offset: int
    data_offset: int
    data_size: int  # bytes of data announced by the header, without padding


def check_structure(path: str | os.PathLike[str]) -> list[HduExtent]:
    """The HDUs of a FITS file; :class:`FitsProblem` if it is not FITS or is truncated
    (shorter than its headers promise, not whole 2880-byte blocks, or fewer extensions
    than the primary header's NEXTEND).

    Gzip-compressed files cannot be checked without inflating them; for those, astropy's
    own checks (when the data is read) are all there is."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as stream:
        start = stream.read(BLOCK)
        if start[:2] == GZIP_MAGIC:
            return []
        if not start.startswith(b"SIMPLE  ="):
            raise FitsProblem(
                "is not a FITS file (it does not begin with the card SIMPLE =); "
                "give FITS files such as .fits or .fits.fz"
            )
        if size % BLOCK:
            raise FitsProblem(
                f"is truncated: its {size} bytes are not a whole number of 2880-byte FITS "
                f"blocks; copy it again from its source"
            )
        stream.seek(0)
        extents = []
        offset = 0
        announced = None
        while offset < size:
            header_offset = offset
            cards, offset = _read_header(stream, offset, size, len(extents))
            if not extents and "NEXTEND" in cards:
                announced = int(cards["NEXTEND"])
            data_size = _data_size(cards, len(extents))
            extents.append(HduExtent(header_offset, offset, data_size))
            if offset + data_size > size:
                raise FitsProblem(
                    f"is truncated: HDU {len(extents) - 1} needs {offset + data_size} bytes "
                    f"but the file has {size}; copy it again from its source"
                )
            offset += _padded(data_size)
    if announced is not None and len(extents) - 1 < announced:
        raise FitsProblem(
            f"is truncated: its primary header announces NEXTEND = {announced} extensions "
            f"but the file holds {len(extents) - 1}; copy it again from its source"
        )
    return extents


def _read_header(stream: Any, offset: int, size: int, index: int) -> tuple[dict[str, str], int]:
    cards: dict[str, str] = {}
    stream.seek(offset)
    while True:
        block = stream.read(BLOCK)
        if len(block) < BLOCK:
            raise FitsProblem(
                f"is truncated: the header of HDU {index} ends at byte {offset + len(block)} "
                f"without an END card (the file has {size} bytes); copy it again"
            )
        offset += BLOCK
        for i in range(0, BLOCK, CARD):
            card = block[i : i + CARD].decode("ascii", errors="replace")
            keyword = card[:8].strip()
            if keyword == "END":
                return cards, offset
            if card[8:10] == "= " and keyword not in cards:
                cards[keyword] = card[10:].split("/", 1)[0].strip()


def _data_size(cards: Mapping[str, str], index: int) -> int:
    try:
        bitpix = int(cards["BITPIX"])
        naxis = int(cards["NAXIS"])
        axes = [int(cards[f"NAXIS{n}"]) for n in range(1, naxis + 1)]
        pcount = int(cards.get("PCOUNT", "0"))
        gcount = int(cards.get("GCOUNT", "1"))
    except (KeyError, ValueError) as err:
        raise FitsProblem(f"has a broken header in HDU {index} ({err})") from None
    if naxis == 0:
        return 0
    return abs(bitpix) // 8 * gcount * (pcount + math.prod(axes))


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def open_fits(path: str | os.PathLike[str]) -> fits.HDUList:
    """Open a checked FITS file (plain, tile-compressed .fz, or gzip) for reading."""
    check_structure(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", VerifyWarning)  # astropy's "may be truncated"
            return fits.open(path, memmap=False, lazy_load_hdus=False)
    except (OSError, VerifyWarning, ValueError, gzip.BadGzipFile, EOFError) as err:
        raise FitsProblem(f"cannot be read as FITS ({err})") from None


def image_hdus(hdul: fits.HDUList) -> list[tuple[int, Any]]:
    """(index, HDU) of every HDU holding an image, compressed ones included."""
    found = []
    for index, hdu in enumerate(hdul):
        is_image = isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU)
        if is_image and hdu.header.get("NAXIS", 0) >= 2:
            found.append((index, hdu))
    return found


def merged_header(primary: fits.Header, extension: fits.Header | None) -> fits.Header:
    """The primary header's cards, then the extension's (which win), minus structure."""
    merged = fits.Header()
    for source in (primary, extension) if extension is not None else (primary,):
        for card in source.cards:
            keyword = card.keyword
            if keyword in STRUCTURAL or keyword.startswith("NAXIS"):
                continue
            if keyword in merged and keyword not in ("COMMENT", "HISTORY", ""):
                merged[keyword] = (card.value, card.comment)  # updating keeps a HIERARCH card
            else:
                merged.append(copy.copy(card), end=True)  # the card as it was, HIERARCH too
    return merged


def chip_file(primary: fits.Header, hdu: Any) -> bytes:
    """One CCD as a single-HDU FITS file (bytes): merged header, pixels exactly as read."""
    extension = None if isinstance(hdu, fits.PrimaryHDU) else hdu.header
    header = merged_header(primary, extension)
    out = fits.PrimaryHDU(data=np.asarray(hdu.data), header=header)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)  # long HIERARCH cards are fine
        out.writeto(buffer, output_verify="fix")
    return buffer.getvalue()


def write_mef(
    path: str | os.PathLike[str],
    primary: Mapping[str, Any],
    images: Sequence[tuple[Mapping[str, Any], np.ndarray]],
    *,
    compress: bool = False,
) -> None:
    """Write a multi-extension FITS file (RICE tile-compressed if ``compress``), atomically:
    a reader never finds a partly written file under ``path``."""
    hdus: list[Any] = [fits.PrimaryHDU(header=_header(primary))]
    for cards, data in images:
        header = _header(cards)
        if compress:
            hdus.append(fits.CompImageHDU(data=data, header=header, compression_type="RICE_1"))
        else:
            hdus.append(fits.ImageHDU(data=data, header=header))
    # Our own cards, each already checked by astropy when it was set: skip the slow re-check.
    write_hdus(path, hdus, output_verify="ignore")


def write_hdus(
    path: str | os.PathLike[str], hdus: Sequence[Any], output_verify: str = "exception"
) -> None:
    """Write HDUs as one FITS file, atomically: a temporary file beside ``path``, renamed
    over it (``os.replace`` is atomic on one filesystem), so no reader finds half a file."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.part")
    fits.HDUList(list(hdus)).writeto(temp, overwrite=True, output_verify=output_verify)
    os.replace(temp, path)


def _header(cards: Mapping[str, Any]) -> fits.Header:
    # Built from cards, EXTNAME keeps its case (ImageHDU(name=...) would upper-case it).
    return fits.Header(
        [
            (key, *value) if isinstance(value, tuple) else (key, value)
            for key, value in cards.items()
        ]
    )


#: Endings of FITS file names as raw data comes with them, longest first.
FITS_SUFFIXES = (".fits.fz", ".fits.gz", ".fits", ".fit", ".fts", ".fz")


def iter_fits_files(folder: Path) -> Iterator[Path]:
    """FITS files below a folder, sorted, by the names raw data comes with."""
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name.lower().endswith(FITS_SUFFIXES):
            yield path


def fits_stem(name: str) -> str:
    """A FITS file name without its FITS ending (``a.fits.fz`` -> ``a``)."""
    for suffix in FITS_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name
