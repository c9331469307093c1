"""L.A.Cosmic (van Dokkum 2001), the same mask as astroscrappy's ``detect_cosmics``, computed
only where a cosmic ray can be.

astroscrappy runs every iteration over the whole image, though a chip holds a few thousand
cosmic-ray pixels among millions. Every step of an iteration is local: the Laplacian of the
2x2-subsampled image (1 pixel), the noise model (a 7x7 separable median of the variance),
the 7x7 median of the Laplacian S/N, the fine structure (5x5 then 9x9 separable medians)
and the two 3x3 growths of the candidates. A pixel's detection therefore depends only on
the image within :data:`REACH` pixels of it; the image, the saturated-star mask and the
parameters are the only other inputs (no global sky or noise level enters a detection).
So this module:

1. runs the first iteration only around pixels where a cheap upper bound of the Laplacian
   S/N (the noise taken from the 7x7 minimum, not the median) passes ``sigclip``: a
   detection starts only at such a candidate and reaches two pixels around it;
2. cleans the new detections as astroscrappy does (the masked 5x5 mean of the pixels that
   are neither cosmic rays nor bad, in the same float32 order of summation), which changes
   the image only at detected pixels near new ones;
3. runs each later iteration only around the candidates within :data:`REACH` + 2 of the
   pixels the cleaning changed: everywhere else the iteration sees the same image and
   finds what the previous one did.

Each region (candidates and two pixels around) is cut out with :data:`SIGNAL_REACH` pixels
around it, the reach of the S/N and of the fine structure, and the growths start only from
the region's own candidates: a detection is a chain from one candidate, found exactly in
the region that holds that candidate. All regions of an iteration are packed into one
mosaic and computed with astroscrappy's own filters in one call (a call per region would
pay OpenMP's start for each); regions on the image's border, which astroscrappy's filters
treat specially, keep that side on the mosaic's border. The mask is identical to
``detect_cosmics(..., sepmed=True, cleantype='meanmask', fsmode='median')`` (checked on a
full chip by ``benchmarks/pipeline.py`` and in ``tests/test_cosmics.py``). astroscrappy's
one global quantity, the median of the good pixels that fills a pixel with no good
neighbour, is computed only when such a pixel occurs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

#: Pixels a detection depends on, each side: the 7x7 median of the S/N over the 7x7
#: noise median (3 + 3), then two 3x3 growths (1 + 1). The fine structure reaches 2 + 4.
REACH = 8

#: Pixels the Laplacian S/N S' and the fine structure of a pixel depend on, each side
#: (3 + 3 and 2 + 4): the margin of the boxes. The growths are done within each box's core
#: only, from candidates in it (a cosmic ray starts only at a candidate, and the box whose
#: core holds it holds the two pixels around it too).
SIGNAL_REACH = 6

#: Side of the tiles in which regions to compute are collected (pixels).
TILE = 2


def detect_cosmics(
    image: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    sigclip: float = 4.5,
    sigfrac: float = 0.3,
    objlim: float = 5.0,
    gain: float = 1.0,
    readnoise: float = 6.5,
    satlevel: float = 65536.0,
    niter: int = 4,
) -> np.ndarray:
    """Cosmic-ray mask (True on a hit) equal to astroscrappy's ``detect_cosmics`` with the
    same arguments and ``sepmed=True, cleantype='meanmask', fsmode='median'``.

    ``image`` in ADU with the sky in; ``mask`` True on pixels to ignore; ``gain`` in e-/ADU;
    ``readnoise`` and ``satlevel`` in electrons (astroscrappy's units)."""
    from astroscrappy.utils import dilate3

    # astroscrappy's parameters are C floats: round them as it does
    sigclip, sigfrac, objlim, gain, readnoise, satlevel = (
        float(np.float32(v)) for v in (sigclip, sigfrac, objlim, gain, readnoise, satlevel)
    )
    shape = image.shape
    clean = np.empty(shape, dtype=np.float32)
    clean[...] = image * gain
    bad = np.zeros(shape, dtype=np.uint8)
    if mask is not None:
        bad[...] = mask
    noise2 = float(np.float32(readnoise) * np.float32(readnoise))
    var = clean + noise2
    saturated = saturated_stars(clean, satlevel)
    bad = (dilate3(bad) if bad.any() else bad).astype(bool) | saturated
    thresholds = (sigclip, float(np.float32(sigfrac) * np.float32(sigclip)), objlim)

    @functools.cache
    def fill_levels() -> tuple[float, float]:
        """astroscrappy's fill values for a pixel without good neighbours: the medians (the
        lower one of an even count) of the unmasked original image and variance. The
        variance is the image plus a constant, a monotonic map: its median is the image's
        plus that constant."""
        from astroscrappy.utils import median

        original = np.empty(shape, dtype=np.float32)
        original[...] = image * gain
        good = original[~bad]
        if np.isnan(good).any():  # no order: take astroscrappy's own selection
            good_var = good + noise2
            return median(good, len(good)), median(good_var, len(good_var))
        k = (len(good) - 1) // 2
        level = good[k] if len(good) == 1 else np.partition(good, k)[k]
        return float(level), float(level + np.float32(noise2))

    def bound(c: np.ndarray, v: np.ndarray, b: np.ndarray) -> np.ndarray:
        return laplacian_candidates(c, v, b, sigclip)

    def detect(c: np.ndarray, v: np.ndarray, b: np.ndarray, core: np.ndarray) -> np.ndarray:
        return _iteration(c, v, b, *thresholds, core=core)

    hits = np.zeros(shape, dtype=bool)
    candidates = bound(clean, var, bad)
    seeds = np.nonzero(candidates)
    for _ in range(niter):
        # a detection starts at a candidate; the two growths reach 2 pixels
        new_y, new_x = [], []
        for core, found in _tiled(
            detect, (clean, var, bad), _boxes(*seeds, 2, shape), SIGNAL_REACH, mark_cores=True
        ):
            fresh = found & ~hits[core]
            if fresh.any():
                hits[core] |= fresh
                ys, xs = np.nonzero(fresh)
                new_y.append(ys + core[0].start)
                new_x.append(xs + core[1].start)
        if not new_y:
            break
        changed = _clean(
            clean, var, bad, hits, (np.concatenate(new_y), np.concatenate(new_x)), fill_levels
        )
        if not changed[0].size:
            break
        # the bound reads the image 1 pixel and the variance 3 pixels around
        for core, part in _tiled(bound, (clean, var, bad), _boxes(*changed, 3, shape), 4):
            candidates[core] = part
        # elsewhere the next iteration finds what this one did: only candidates within
        # REACH + 2 of a changed pixel can start a new detection
        seed_y, seed_x = [], []
        for core in _boxes(*changed, REACH + 2, shape):
            ys, xs = np.nonzero(candidates[core])
            seed_y.append(ys + core[0].start)
            seed_x.append(xs + core[1].start)
        seeds = (np.concatenate(seed_y), np.concatenate(seed_x))
    return hits


def saturated_stars(clean: np.ndarray, satlevel: float) -> np.ndarray:
    """astroscrappy's saturated-star mask (``update_mask``): pixels at or above ``satlevel``
    whose 7x7 separable median is above a tenth of it, grown twice by a 5x5 disc; computed
    in boxes around the saturated pixels only."""
    from astroscrappy.utils import dilate5, sepmedfilt7

    saturated = np.zeros(clean.shape, dtype=bool)
    ys, xs = np.nonzero(clean >= satlevel)
    if not ys.size:
        return saturated

    def stars(c: np.ndarray) -> np.ndarray:
        found = np.logical_and(c >= satlevel, sepmedfilt7(c) > (satlevel / 10.0))
        return dilate5(found, 2).astype(bool)

    # the two dilations reach 2 + 2 pixels, the median 3 more
    for core, part in _tiled(stars, (clean,), _boxes(ys, xs, 4, clean.shape), 7):
        saturated[core] |= part
    return saturated


def laplacian_candidates(
    clean: np.ndarray, var: np.ndarray, bad: np.ndarray, sigclip: float, rows: int = 64
) -> np.ndarray:
    """Pixels where an astroscrappy iteration can start a detection (True).

    A candidate needs S' = S - median(S) > ``sigclip``, where S is the positive part of the
    Laplacian of the 2x2-subsampled image, rebinned, over twice the noise. S >= 0, so
    S' <= S; and the noise (square root of the 7x7 separable median of the variance) is at
    least the square root of the 7x7 minimum. The Laplacian of a subsampled pixel is
    2v minus one vertical and one horizontal neighbour (zero beyond the border, as in
    astroscrappy's edge rows). float32 rounding, astroscrappy's and this bound's, is far
    below the slack of 1e-4 times the largest pixel value. Computed in blocks of ``rows``
    rows, which stay in the processor's cache."""
    ny, nx = clean.shape
    largest = max(float(np.nanmax(clean)), -float(np.nanmin(clean)))
    slack = np.float32(1e-4 * largest) if np.isfinite(largest) else np.float32(np.inf)
    factor = np.float32(8 * sigclip * (1 - 1e-6))  # S <= sum / 4 / (2 noise)
    candidates = np.empty(clean.shape, dtype=bool)
    for a in range(0, ny, rows):
        b = min(a + rows, ny)
        block = np.zeros((b - a + 2, nx + 2), dtype=np.float32)
        block[max(0, 1 - a) : b - a + 1 + min(1, ny - b), 1:-1] = clean[max(a - 1, 0) : b + 1]
        v = block[1:-1, 1:-1]
        up, down = v - block[:-2, 1:-1], v - block[2:, 1:-1]
        left, right = v - block[1:-1, :-2], v - block[1:-1, 2:]
        total = np.maximum(up + left, 0)
        total += np.maximum(up + right, 0)
        total += np.maximum(down + left, 0)
        total += np.maximum(down + right, 0)
        total += slack
        noise = _minimum7(var, a, b)
        np.maximum(noise, np.float32(1e-5), out=noise)
        np.sqrt(noise, out=noise)
        noise *= factor
        np.greater(total, noise, out=candidates[a:b])
    candidates &= ~bad
    # astroscrappy's median filters copy their input within 3 pixels of the border, so
    # there S' = S - S = 0: nothing is detected
    candidates[:3] = candidates[-3:] = False
    candidates[:, :3] = candidates[:, -3:] = False
    return candidates


def _minimum7(values: np.ndarray, a: int, b: int) -> np.ndarray:
    """The minimum over the 7x7 window (clipped at the image's border) of rows a to b."""
    ny, nx = values.shape
    block = np.full((b - a + 6, nx + 6), np.inf, dtype=np.float32)
    block[max(3 - a, 0) : b - a + 3 + min(3, ny - b), 3:-3] = values[max(a - 3, 0) : b + 3]
    for axis in (0, 1):  # windows of 2, 4 then 7 by overlapping minima
        for step in (1, 2, 3):
            n = block.shape[axis] - step
            head = block[:n] if axis == 0 else block[:, :n]
            tail = block[step:] if axis == 0 else block[:, step:]
            np.fmin(head, tail, out=head)  # NaN-blind, as the medians give a value
        block = block[: b - a] if axis == 0 else block[:, :nx]
    return block


def _iteration(
    clean: np.ndarray,
    var: np.ndarray,
    bad: np.ndarray,
    sigclip: float,
    sigcliplow: float,
    objlim: float,
    core: np.ndarray | None = None,
) -> np.ndarray:
    """The detection step of one astroscrappy iteration (sepmed, fsmode='median'), the same
    operations in the same float32 order; the growths start only from pixels in ``core``."""
    from astroscrappy.utils import (
        dilate3,
        laplaceconvolve,
        rebin,
        sepmedfilt5,
        sepmedfilt7,
        sepmedfilt9,
        subsample,
    )

    conved = laplaceconvolve(subsample(clean))
    conved[conved < 0] = 0.0
    s = rebin(conved)
    m5 = sepmedfilt7(var)
    m5[m5 < 0.00001] = 0.00001
    noise = np.sqrt(m5)
    s /= 2.0 * noise
    sp = s - sepmedfilt7(s)
    goodpix = np.logical_not(bad)
    cosmics = np.logical_and(sp > sigclip, goodpix)
    f = sepmedfilt5(clean)
    f = (f - sepmedfilt9(f)) / noise
    f[f < 0.01] = 0.01
    cosmics = np.logical_and(cosmics, (sp / f) > objlim)
    if core is not None:
        cosmics &= core
    cosmics = np.logical_and(dilate3(cosmics), goodpix)
    cosmics = np.logical_and(sp > sigclip, cosmics)
    cosmics = np.logical_and(dilate3(cosmics), goodpix)
    return np.logical_and(sp > sigcliplow, cosmics)


def _clean(
    clean: np.ndarray,
    var: np.ndarray,
    bad: np.ndarray,
    hits: np.ndarray,
    new: tuple[np.ndarray, np.ndarray],
    fill_levels: Callable[[], tuple[float, float]],
) -> tuple[np.ndarray, np.ndarray]:
    """astroscrappy's ``clean_meanmask`` of image and variance, for the hit pixels whose
    5x5 neighbourhood holds a new hit (no other value can change); returns the pixels
    whose value changed."""
    ny, nx = clean.shape
    offsets = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]
    ys = np.concatenate([new[0] + dy for dy, _dx in offsets])
    xs = np.concatenate([new[1] + dx for _dy, dx in offsets])
    inside = (ys >= 2) & (ys < ny - 2) & (xs >= 2) & (xs < nx - 2)  # astroscrappy skips 2
    flat = np.unique(ys[inside] * nx + xs[inside])
    ys, xs = np.divmod(flat, nx)
    keep = hits[ys, xs]
    ys, xs = ys[keep], xs[keep]
    masked = hits | bad
    sums = np.zeros(ys.size, dtype=np.float32)
    var_sums = np.zeros(ys.size, dtype=np.float32)
    count = np.zeros(ys.size, dtype=np.int64)
    for dy, dx in offsets:  # astroscrappy's order of summation, rows then columns
        ok = ~masked[ys + dy, xs + dx]
        sums = np.where(ok, sums + clean[ys + dy, xs + dx], sums)
        var_sums = np.where(ok, var_sums + var[ys + dy, xs + dx], var_sums)
        count += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        values = (sums.astype(np.float64) / count).astype(np.float32)
        var_values = (var_sums.astype(np.float64) / count).astype(np.float32)
    empty = count == 0
    if empty.any():
        level, var_level = fill_levels()
        values[empty], var_values[empty] = level, var_level
    changed = (values != clean[ys, xs]) | (var_values != var[ys, xs])
    clean[ys, xs], var[ys, xs] = values, var_values
    return ys[changed], xs[changed]


def _boxes(ys: np.ndarray, xs: np.ndarray, grow: int, shape: tuple[int, int]):
    """Boxes (cores) covering every pixel within ``grow`` of the given ones: unions of
    :data:`TILE`-sized tiles, one box per group of touching tiles."""
    from scipy.ndimage import find_objects, label

    ny, nx = shape
    tiles = np.zeros((-(-ny // TILE), -(-nx // TILE)), dtype=bool)
    steps = [*range(-grow, grow, TILE), grow]  # every tile the square touches
    for dy in steps:
        ty = np.clip(ys + dy, 0, ny - 1) // TILE
        for dx in steps:
            tiles[ty, np.clip(xs + dx, 0, nx - 1) // TILE] = True
    labels, _count = label(tiles, structure=np.ones((3, 3), dtype=bool))
    return [
        (
            slice(ty.start * TILE, min(ty.stop * TILE, ny)),
            slice(tx.start * TILE, min(tx.stop * TILE, nx)),
        )
        for ty, tx in find_objects(labels)
    ]


def _tiled(function, arrays, cores, margin: int, *, mark_cores: bool = False):
    """Yields (core, ``function``'s result in it) for each core, ``function`` being a
    filter of reach ``margin`` over the image ``arrays``, computed in one call (with
    ``mark_cores``, given one more array: True in the cores).

    Each core is cut out with ``margin`` pixels around it and the boxes are packed into one
    mosaic of the image's width: a core's result depends only on its own box. The image's
    border is special to astroscrappy's filters, so boxes touching it keep that side on the
    mosaic's border: those at the top or bottom merge into a strip of full width there,
    those at the left or right start or end a shelf of the mosaic."""
    shape = arrays[0].shape
    layout, mosaic_shape = _layout([_expand(c, shape, margin) for c in cores], shape, margin)
    if not layout:
        return
    mosaics = []
    for array in arrays:
        mosaic = np.zeros(mosaic_shape, dtype=array.dtype)
        for (outer, _core, _inner), slot in layout:
            mosaic[slot] = array[outer]
        mosaics.append(mosaic)
    if mark_cores:
        marks = np.zeros(mosaic_shape, dtype=bool)
        for (_outer, _core, inner), slot in layout:
            marks[slot][inner] = True
        mosaics.append(marks)
    result = function(*mosaics)
    for (_outer, core, inner), slot in layout:
        yield core, result[slot][inner]


def _layout(boxes, shape: tuple[int, int], margin: int):
    """Places for (outer, core, inner) boxes in a mosaic of the image's width; returns
    [(box, slot)] and the mosaic's shape."""
    ny, nx = shape
    top = [b for b in boxes if b[0][0].start == 0]
    bottom = [b for b in boxes if b[0][0].start > 0 and b[0][0].stop == ny]
    rest = [b for b in boxes if b[0][0].start > 0 and b[0][0].stop < ny]
    strips = []
    if top:
        strips.append(
            _expand((slice(0, max(b[1][0].stop for b in top)), slice(0, nx)), shape, margin)
        )
    if bottom:
        start = min(b[1][0].start for b in bottom)
        strips.append(_expand((slice(start, ny), slice(0, nx)), shape, margin))
    spans = [(strip[0][0].start, strip[0][0].stop) for strip in strips]
    if (0, ny) in spans or (len(strips) == 2 and spans[0][1] >= spans[1][0]):
        whole = (slice(0, ny), slice(0, nx))
        return [((whole, whole, whole), whole)], shape
    width = lambda b: b[0][1].stop - b[0][1].start  # noqa: E731
    height = lambda b: b[0][0].stop - b[0][0].start  # noqa: E731
    lefts = sorted((b for b in rest if b[0][1].start == 0), key=height, reverse=True)
    rights = sorted(
        (b for b in rest if b[0][1].start > 0 and b[0][1].stop == nx), key=height, reverse=True
    )
    inside = sorted(
        (b for b in rest if b[0][1].start > 0 and b[0][1].stop < nx), key=height, reverse=True
    )
    layout, y = [], 0
    if top:
        layout.append((strips[0], (slice(0, height(strips[0])), slice(0, nx))))
        y = height(strips[0])
    while lefts or rights or inside:
        placed, x0, x1 = [], 0, nx
        if lefts:
            box = lefts.pop(0)
            placed.append((box, 0))
            x0 = width(box)
        if rights and width(rights[0]) <= x1 - x0:
            box = rights.pop(0)
            placed.append((box, nx - width(box)))
            x1 = nx - width(box)
        while inside and width(inside[0]) <= x1 - x0:
            box = inside.pop(0)
            placed.append((box, x0))
            x0 += width(box)
        shelf = max(height(b) for b, _x in placed)
        for box, x in placed:
            layout.append((box, (slice(y, y + height(box)), slice(x, x + width(box)))))
        y += shelf
    if bottom:
        layout.append((strips[-1], (slice(y, y + height(strips[-1])), slice(0, nx))))
        y += height(strips[-1])
    return layout, (y, nx)


def _expand(core: tuple[slice, slice], shape: tuple[int, int], margin: int):
    """(outer, core, inner): the core grown by ``margin`` within the image, the core, and
    the core's place in the outer box."""
    outer = tuple(
        slice(max(c.start - margin, 0), min(c.stop + margin, n))
        for c, n in zip(core, shape, strict=True)
    )
    inner = tuple(
        slice(c.start - o.start, c.stop - o.start) for c, o in zip(core, outer, strict=True)
    )
    return outer, core, inner
