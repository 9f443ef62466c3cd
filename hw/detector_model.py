"""Bit-exact numpy model of the face-window detector: the specification of its RTL.

Every step is an integer function with documented widths (docs/detector.md):

1. `luma`: BT.601 luma exactly as OpenCV's `cvtColor(..., COLOR_RGB2GRAY)`.
2. `downscale`: D x D box mean (D = 1, 2 or 4), so a 24 px window finds faces of 24 * D px.
3. `pyramid_levels`: scale factors f^s in 16.16 fixed point; `resize_level`: bilinear
   resampling with 8-bit weights from the base image.
4. `integrals`: integral and squared-integral images kept modulo 2**SUM_BITS and
   2**SQSUM_BITS: every rectangle lies inside one window, whose true sums fit those widths, so
   the modular differences are exact at any frame size.
5. Variance normalisation: nf = isqrt(A * sqsum - sum**2) over the window's inner rectangle
   (OpenCV's `normrect`), nf = 1 when zero.
6. Weak classifiers: node `feature_sum * 2**NODE_FRAC < t_q * nf` chooses the child; stage sums
   of leaf values against the stage threshold; OpenCV's window order and step (2, or 1 from
   scale 2 on) and its skip of the next window after a stage-0 rejection.
7. `group`: raw windows clustered against each cluster's first window with OpenCV's similarity
   test (eps 0.2), at most `max_clusters` clusters, then similar clusters merged; clusters with
   more than `min_neighbors` members give their rounded mean; OpenCV's removal of small boxes
   inside bigger ones.
"""


from dataclasses import dataclass, field, replace

import numpy as np

from .cascade import NODE_FRAC, Cascade, load_cascade

__all__ = ["DetectorParams", "Detection", "detect", "luma", "downscale", "pyramid_levels",
           "resize_level", "integrals", "isqrt", "group", "trace_windows", "stage_grids",
           "visited", "SUM_BITS", "SQSUM_BITS", "THRESHOLD_OFFSET_SHIFT"]

#: Integral-image widths. A feature's weighted sum (weights -1, 2, 3 over at most a 31 x 31
#: window) lies within +-2**20, so the luma integral is kept modulo 2**21 and every feature sum
#: (read as weighted corners) is exact; a 31 x 31 window's squared sum is < 2**26.
SUM_BITS = 21
SQSUM_BITS = 26
#: Scale factors and sampling positions are 16.16 fixed point.
SCALE_FRAC = 16
#: `threshold_offset` is in 1/64 of a leaf value: shifted by 10 into LEAF_FRAC (16) units.
THRESHOLD_OFFSET_SHIFT = 10


@dataclass(frozen=True)
class DetectorParams:
    """Detector settings; `min_size` is in input pixels (0: the window size times `downscale`)."""
    scale_factor: float = 1.2
    min_neighbors: int = 3
    min_size: int = 0
    downscale: int = 2
    max_clusters: int = 128
    max_levels: int = 32
    #: Added to every stage threshold, in 1/64 of a leaf value (-128..127): negative finds
    #: more faces (and more false alarms), positive fewer.
    threshold_offset: int = 0

    def __post_init__(self):
        if not 1.01 <= self.scale_factor <= 2.0:
            raise ValueError(f"scale_factor must be in 1.01..2.0, not {self.scale_factor!r}")
        if self.downscale not in (1, 2, 4):
            raise ValueError(f"downscale must be 1, 2 or 4, not {self.downscale!r}")
        if self.min_neighbors < 0 or self.min_size < 0:
            raise ValueError("min_neighbors and min_size must be >= 0")
        if not -128 <= self.threshold_offset <= 127:
            raise ValueError(f"threshold_offset must be in -128..127, not "
                             f"{self.threshold_offset!r}")

    @property
    def scale_q(self):
        return round(self.scale_factor * (1 << SCALE_FRAC))


@dataclass
class Detection:
    """The detector's result for one frame: boxes (x0, y0, x1, y1) half-open in input pixels,
    and the work the hardware does for it."""
    boxes: list
    raw: list = field(default_factory=list)     # raw windows (x, y, w, h) in base pixels
    windows: int = 0                            # windows evaluated
    weak_evaluated: int = 0                     # weak classifiers evaluated
    levels: int = 0                             # pyramid levels scanned
    cluster_overflow: int = 0                   # raw windows that found no free cluster


def luma(rgb):
    """Return the 8-bit luma of an RGB (or already single-channel) image."""
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        return rgb.astype(np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] not in (3, 4):
        raise ValueError(f"expected an H x W x 3 image, got shape {rgb.shape}")
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    return ((r * 9798 + g * 19235 + b * 3735 + 16384) >> 15).astype(np.uint8)


def downscale(y, d):
    """Return the D x D box mean (rounded) of a luma image, cropped to whole blocks."""
    if d == 1:
        return np.asarray(y, np.uint8)
    h, w = y.shape[0] // d, y.shape[1] // d
    blocks = y[:h * d, :w * d].astype(np.int64).reshape(h, d, w, d).sum(axis=(1, 3))
    shift = 2 * (d.bit_length() - 1)
    return ((blocks + (1 << (shift - 1))) >> shift).astype(np.uint8)


def pyramid_levels(width, height, cascade, params):
    """Return the pyramid levels [(F, W_s, H_s, step)] for a base image, F in 16.16."""
    levels = []
    min_win = max(params.min_size, 0)
    for s in range(params.max_levels):
        f = round((params.scale_factor ** s) * (1 << SCALE_FRAC))
        ws = (width * (1 << SCALE_FRAC) + f // 2) // f
        hs = (height * (1 << SCALE_FRAC) + f // 2) // f
        if ws <= cascade.width or hs <= cascade.height:
            break
        win_input = ((cascade.width * f + (1 << 15)) >> SCALE_FRAC) * params.downscale
        if win_input < min_win:
            continue
        levels.append((f, ws, hs, 1 if f >= 2 << SCALE_FRAC else 2))
    return levels


def resize_level(base, f, ws, hs):
    """Return the base image resampled by 1/f (16.16) to ws x hs, bilinear, 8-bit weights.

    Output pixel centre x maps to source sx = ((2x + 1) * f - 2**16) / 2 (16.16, clamped at 0);
    weight fx = bits 8..15 of sx.
    """
    h, w = base.shape

    def axis(n_out, n_in):
        s = ((2 * np.arange(n_out, dtype=np.int64) + 1) * f - (1 << SCALE_FRAC)) >> 1
        s = np.maximum(s, 0)
        i0 = np.minimum(s >> SCALE_FRAC, n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, (s >> 8) & 255

    y0, y1, fy = axis(hs, h)
    x0, x1, fx = axis(ws, w)
    b = base.astype(np.int64)
    fx = fx[None, :]
    top = b[y0][:, x0] * (256 - fx) + b[y0][:, x1] * fx
    bot = b[y1][:, x0] * (256 - fx) + b[y1][:, x1] * fx
    fy = fy[:, None]
    return ((top * (256 - fy) + bot * fy + (1 << 15)) >> 16).astype(np.uint8)


def integrals(img):
    """Return (sum, sqsum) integral images, (H+1) x (W+1), modulo 2**SUM_BITS / 2**SQSUM_BITS."""
    v = img.astype(np.int64)
    s = np.zeros((v.shape[0] + 1, v.shape[1] + 1), np.int64)
    q = np.zeros_like(s)
    s[1:, 1:] = v.cumsum(0).cumsum(1)
    q[1:, 1:] = (v * v).cumsum(0).cumsum(1)
    return s & ((1 << SUM_BITS) - 1), q & ((1 << SQSUM_BITS) - 1)


def isqrt(v):
    """Return floor(sqrt(v)) elementwise for non-negative int64 arrays (exact)."""
    v = np.asarray(v, np.int64)
    r = np.floor(np.sqrt(v.astype(np.float64))).astype(np.int64)
    r = np.where(r * r > v, r - 1, r)
    return np.where((r + 1) * (r + 1) <= v, r + 1, r)


class _Levels:
    """All pyramid levels' integral images in one flat buffer, for batched window gathers."""

    def __init__(self, base, levels):
        sums, sqs, self.offset = [], [], []
        # One row stride for every level (the widest), so a feature's corner offsets are the
        # same numbers whatever the level: a model speed choice, the sums are unchanged.
        self.common_stride = max((ws + 1 for _, ws, _, _ in levels), default=1)
        pos = 0
        for f, ws, hs, _ in levels:
            img = resize_level(base, f, ws, hs)
            s, q = integrals(img)
            pad = ((0, 0), (0, self.common_stride - (ws + 1)))
            s, q = np.pad(s, pad), np.pad(q, pad)
            self.offset.append(pos)
            sums.append(s.ravel())
            sqs.append(q.ravel())
            pos += s.size
        self.sum = np.concatenate(sums) if sums else np.zeros(0, np.int64)
        self.sq = np.concatenate(sqs) if sqs else np.zeros(0, np.int64)


def _corner_terms(cas):
    """Per feature, its rectangles as weighted corners: [(dx, dy, weight)], shared corners
    merged (a two-rectangle feature has 6, not 8)."""
    terms = []
    for feat in cas.rects:
        acc = {}
        for rx, ry, rw, rh, wgt in feat:
            if wgt == 0:
                continue
            for dx, dy, sign in ((rx, ry, 1), (rx + rw, ry, -1), (rx, ry + rh, -1),
                                 (rx + rw, ry + rh, 1)):
                acc[(int(dx), int(dy))] = acc.get((int(dx), int(dy)), 0) + sign * int(wgt)
        terms.append([(dx, dy, w) for (dx, dy), w in acc.items() if w != 0])
    return terms


def _feature_sums(terms, buf, origin, stride):
    """Feature sums of one feature for many windows (the integral is modulo 2**SUM_BITS, so
    the weighted sum is reduced to a signed value afterwards). `stride` is the common row
    stride of every level."""
    offsets = np.array([dy * stride + dx for dx, dy, _ in terms], np.int64)
    weights = np.array([w for _, _, w in terms], np.int64)
    total = buf[origin[:, None] + offsets] @ weights
    mod = 1 << SUM_BITS                  # exact: |feature sum| < 2**(SUM_BITS - 1)
    total &= mod - 1
    return np.where(total >= mod >> 1, total - mod, total)


def _stage_pass(cas, terms, buf, origin, stride, nf, stage):
    """Evaluate one stage on windows; return the pass mask."""
    first, count = int(cas.stage_first[stage]), int(cas.stage_count[stage])

    def node_values(n, sel):
        fsum = _feature_sums(terms[cas.node_feature[n]], buf, origin[sel], stride)
        left = (fsum << NODE_FRAC) < cas.node_threshold[n] * nf[sel]
        out = np.empty(len(sel), np.int64)
        for child, mask in ((cas.node_left[n], left), (cas.node_right[n], ~left)):
            if child < 0:
                out[mask] = cas.leaves[-child - 1]
            elif mask.any():
                out[mask] = node_values(int(child), sel[mask])
        return out

    everyone = np.arange(len(origin))
    total = np.zeros(len(origin), np.int64)
    for k in range(first, first + count):
        total += node_values(int(cas.weak_root[k]), everyone)
    return total >= cas.stage_threshold[stage]


#: Stages the model evaluates on a level's whole window grid with strided slices before it
#: gathers the survivors one by one: a speed choice of the model only (results are identical).
DENSE_STAGES = 2


def _dense_stage(cas, terms, table, grid_slice, nf, stage):
    """Evaluate one stage on every window of a level's grid; return the pass grid."""
    mod = 1 << SUM_BITS

    def node_values(n):
        fsum = sum(w * grid_slice(table, dx, dy) for dx, dy, w in terms[cas.node_feature[n]])
        fsum = fsum & (mod - 1)
        fsum = np.where(fsum >= mod >> 1, fsum - mod, fsum)
        left = (fsum << NODE_FRAC) < cas.node_threshold[n] * nf
        branches = [cas.leaves[-c - 1] if c < 0 else node_values(int(c))
                    for c in (cas.node_left[n], cas.node_right[n])]
        return np.where(left, branches[0], branches[1])

    first, count = int(cas.stage_first[stage]), int(cas.stage_count[stage])
    total = sum(node_values(int(cas.weak_root[k])) for k in range(first, first + count))
    return total >= cas.stage_threshold[stage]


def _scan_level(cas, terms, L, li, ws, hs, step):
    """Visit one level's windows in OpenCV's order and run the first stages on all of them.

    Return (x, y, origin, nf) of the windows alive after DENSE_STAGES stages, the windows
    visited and the weak classifiers evaluated.
    """
    ys = np.arange(0, hs - cas.height, step)
    xs = np.arange(0, ws - cas.width, step)
    empty = np.zeros(0, np.int64)
    if len(ys) == 0 or len(xs) == 0:
        return (empty,) * 4, 0, 0
    hg, wg = len(ys), len(xs)
    stride = L.common_stride
    size = (hs + 1) * stride
    tsum = L.sum[L.offset[li]:L.offset[li] + size].reshape(hs + 1, stride)
    tsq = L.sq[L.offset[li]:L.offset[li] + size].reshape(hs + 1, stride)

    def grid_slice(table, dx, dy):
        return table[dy:dy + hg * step:step, dx:dx + wg * step:step]

    def rect(table, x, y, w, h, bits):
        return (grid_slice(table, x, y) - grid_slice(table, x + w, y) -
                grid_slice(table, x, y + h) + grid_slice(table, x + w, y + h)) & ((1 << bits) - 1)

    # Variance normalisation over the inner rectangle (1, 1, w - 2, h - 2).
    area = (cas.width - 2) * (cas.height - 2)
    s = rect(tsum, 1, 1, cas.width - 2, cas.height - 2, SUM_BITS)
    q = rect(tsq, 1, 1, cas.width - 2, cas.height - 2, SQSUM_BITS)
    nf = isqrt(area * q - s * s)
    nf = np.where(nf == 0, 1, nf)
    passes = [_dense_stage(cas, terms, tsum, grid_slice, nf, st)
              for st in range(min(DENSE_STAGES, cas.num_stages))]
    # OpenCV skips the window after one rejected by stage 0: which windows are visited.
    pass0 = passes[0]
    visited = np.zeros((hg, wg), bool)
    visited[:, 0] = True
    for k in range(1, wg):
        v = visited[:, k - 1] & pass0[:, k - 1]
        if k >= 2:
            v |= visited[:, k - 2] & ~pass0[:, k - 2]
        visited[:, k] = v
    alive = visited
    weak = 0
    for st, ok in enumerate(passes):
        weak += int(alive.sum()) * int(cas.stage_count[st])
        alive = alive & ok
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    idx = np.flatnonzero(alive)
    origin = L.offset[li] + gy.ravel()[idx] * stride + gx.ravel()[idx]
    return (gx.ravel()[idx], gy.ravel()[idx], origin, nf.ravel()[idx]), int(visited.sum()), weak


def _round_q(v, f):
    return (v * f + (1 << (SCALE_FRAC - 1))) >> SCALE_FRAC


def _offset_cascade(cascade, params):
    """The cascade with `params.threshold_offset` added to every stage threshold (the
    hardware starts each stage's sum at minus the offset: the same comparison)."""
    cas = cascade if isinstance(cascade, Cascade) else load_cascade(cascade)
    if params.threshold_offset == 0:
        return cas
    shift = params.threshold_offset << THRESHOLD_OFFSET_SHIFT
    return replace(cas, stage_threshold=cas.stage_threshold + shift, cache=cas.cache)


def detect(rgb, cascade="frontalface_default", params=DetectorParams()):
    """Run the detector on one image (H x W x 3 RGB, or H x W luma)."""
    cas = _offset_cascade(cascade, params)
    base = downscale(luma(rgb), params.downscale)
    result = Detection(boxes=[])
    if base.shape[0] <= cas.height or base.shape[1] <= cas.width:
        return result
    levels = pyramid_levels(base.shape[1], base.shape[0], cas, params)
    L = _Levels(base, levels)
    terms = cas.cache.get("corner_terms")
    if terms is None:
        terms = cas.cache["corner_terms"] = _corner_terms(cas)
    parts = []
    for li, (_f, ws, hs, step) in enumerate(levels):
        (x, y, origin, nf), windows, weak = _scan_level(cas, terms, L, li, ws, hs, step)
        result.windows += windows
        result.weak_evaluated += weak
        parts.append((np.full(len(x), li), x, y, origin, nf))
    lvl, x, y, origin, nf = (np.concatenate(c) if parts else np.zeros(0, np.int64)
                                     for c in zip(*parts))
    keep = np.arange(len(x))
    # The later stages run on the survivors of every level at once.
    for stage in range(DENSE_STAGES, cas.num_stages):
        if len(keep) == 0:
            break
        result.weak_evaluated += len(keep) * int(cas.stage_count[stage])
        ok = _stage_pass(cas, terms, L.sum, origin[keep], L.common_stride, nf[keep], stage)
        keep = keep[ok]
    raw = []
    for i in keep:               # scan order: level, then y, then x
        f = levels[lvl[i]][0]
        raw.append((int(_round_q(int(x[i]), f)), int(_round_q(int(y[i]), f)),
                    int(_round_q(cas.width, f)), int(_round_q(cas.height, f))))
    result.levels = len(levels)
    result.raw = raw
    grouped, result.cluster_overflow = group(raw, params.min_neighbors, params.max_clusters)
    d = params.downscale
    result.boxes = [(bx * d, by * d, (bx + w) * d, (by + h) * d) for bx, by, w, h in grouped]
    return result


def _similar(a, b):
    """OpenCV's SimilarRects with eps = 0.2, in integers: |d| <= 0.1 * (min w + min h)."""
    lim = min(a[2], b[2]) + min(a[3], b[3])
    return (10 * abs(a[0] - b[0]) <= lim and 10 * abs(a[1] - b[1]) <= lim and
            10 * abs(a[0] + a[2] - b[0] - b[2]) <= lim and
            10 * abs(a[1] + a[3] - b[1] - b[3]) <= lim)


def group(raw, min_neighbors, max_clusters=128):
    """Group raw windows (x, y, w, h) into detections; return (boxes, overflow count).

    Pass 1, in scan order: a window joins the first cluster whose first window (its seed) it
    resembles, else opens a cluster (at most `max_clusters`; the rest are counted as overflow).
    Pass 2: clusters whose seeds or rounded means resemble each other are merged, transitively
    (OpenCV's `partition` takes the transitive closure over all windows; the hardware gets
    close with one comparison per pair of clusters instead of per pair of windows). Merged
    clusters are listed by their lowest cluster index.
    """
    if min_neighbors <= 0:
        return list(raw), 0
    seeds, sums, counts = [], [], []
    overflow = 0
    for r in raw:
        for i, seed in enumerate(seeds):
            if _similar(seed, r):
                sums[i] = [a + b for a, b in zip(sums[i], r)]
                counts[i] += 1
                break
        else:
            if len(seeds) < max_clusters:
                seeds.append(r)
                sums.append(list(r))
                counts.append(1)
            else:
                overflow += 1

    def mean(total, n):
        return tuple((2 * v + n) // (2 * n) for v in total)

    means = [mean(t, n) for t, n in zip(sums, counts)]
    # Each merged cluster is labelled by its lowest cluster index (the hardware relabels the
    # higher label to the lower one on every merge), and listed in label order.
    label = list(range(len(seeds)))
    for i in range(len(seeds)):
        for j in range(i):
            if label[i] != label[j] and (_similar(seeds[i], seeds[j]) or
                                         _similar(means[i], means[j])):
                lo, hi = min(label[i], label[j]), max(label[i], label[j])
                label = [lo if v == hi else v for v in label]
    merged = {}
    for i in range(len(seeds)):
        t, n = merged.get(label[i], ([0, 0, 0, 0], 0))
        merged[label[i]] = ([a + b for a, b in zip(t, sums[i])], n + counts[i])
    clusters = [(mean(t, n), n) for t, n in (merged[k] for k in sorted(merged))]
    out = []
    for i, (r1, n1) in enumerate(clusters):
        if n1 <= min_neighbors:
            continue
        inside = False
        for j, (r2, n2) in enumerate(clusters):
            if j == i or n2 <= min_neighbors:
                continue
            dx, dy = (2 * r2[2] + 5) // 10, (2 * r2[3] + 5) // 10   # round(0.2 * w)
            if (r1[0] >= r2[0] - dx and r1[1] >= r2[1] - dy and
                    r1[0] + r1[2] <= r2[0] + r2[2] + dx and
                    r1[1] + r1[3] <= r2[1] + r2[3] + dy and (n2 > max(3, n1) or n1 < 3)):
                inside = True
                break
        if not inside:
            out.append(r1)
    return out, overflow


def stage_grids(rgb, cascade="frontalface_default", params=DetectorParams()):
    """Per scanned level, in scan order: (level index, (F, W_s, H_s, step), xs, ys, passed),
    passed[r, c] = stages the window at (xs[c], ys[r]) passes, at every position (before
    OpenCV's skip, see `visited`)."""
    cas = _offset_cascade(cascade, params)
    base = downscale(luma(rgb), params.downscale)
    if base.shape[0] <= cas.height or base.shape[1] <= cas.width:
        return []
    levels = pyramid_levels(base.shape[1], base.shape[0], cas, params)
    L = _Levels(base, levels)
    terms = cas.cache.get("corner_terms")
    if terms is None:
        terms = cas.cache["corner_terms"] = _corner_terms(cas)
    out = []
    stride = L.common_stride
    area = (cas.width - 2) * (cas.height - 2)
    for li, level in enumerate(levels):
        _f, ws, hs, step = level
        ys = np.arange(0, hs - cas.height, step)
        xs = np.arange(0, ws - cas.width, step)
        if len(ys) == 0 or len(xs) == 0:
            continue
        gy, gx = np.meshgrid(ys, xs, indexing="ij")
        origin = (L.offset[li] + gy * stride + gx).ravel()

        def corner(table, dx, dy, o=origin):
            return table[o + dy * stride + dx]

        iw, ih = cas.width - 2, cas.height - 2
        s = (corner(L.sum, 1, 1) - corner(L.sum, 1 + iw, 1) - corner(L.sum, 1, 1 + ih) +
             corner(L.sum, 1 + iw, 1 + ih)) & ((1 << SUM_BITS) - 1)
        q = (corner(L.sq, 1, 1) - corner(L.sq, 1 + iw, 1) - corner(L.sq, 1, 1 + ih) +
             corner(L.sq, 1 + iw, 1 + ih)) & ((1 << SQSUM_BITS) - 1)
        nf = isqrt(area * q - s * s)
        nf = np.where(nf == 0, 1, nf)
        passed = np.zeros(len(origin), np.int64)
        alive = np.arange(len(origin))
        for stage in range(cas.num_stages):
            if len(alive) == 0:
                break
            ok = _stage_pass(cas, terms, L.sum, origin[alive], stride, nf[alive], stage)
            alive = alive[ok]
            passed[alive] += 1
        out.append((li, level, xs, ys, passed.reshape(gy.shape)))
    return out


def visited(passed_row):
    """Which windows of a row OpenCV visits: the one after a stage-0 rejection is skipped."""
    vis = np.zeros(len(passed_row), bool)
    skip = False
    for c, p in enumerate(passed_row):
        if skip:
            skip = False
            continue
        vis[c] = True
        skip = p == 0
    return vis


def trace_windows(rgb, cascade="frontalface_default", params=DetectorParams()):
    """Return every window the detector visits, in scan order, as (level, x, y, stages passed)
    in level pixels: the per-window record the RTL's trace port is compared against, so a
    mismatch names the frame, window, scale and stage where the two diverge."""
    out = []
    for li, _level, xs, ys, passed in stage_grids(rgb, cascade, params):
        for r, y in enumerate(ys):
            out.extend((li, int(x), int(y), int(p))
                       for x, p, v in zip(xs, passed[r], visited(passed[r])) if v)
    return out
