"""A clock-count model of the cascade engine, to weigh microarchitectures before building them.

The detector model gives, for every window position of a frame, how many stages it passes. From
that and the cascade program's corner groups this module counts the clocks of the engine as built
(`BUILT`: one window at a time, `corners` integral corners a clock, the next stage issued
speculatively behind the current one, so one pipeline drain of `drain(corners)` clocks per
window, after the stage that decides it) and of variants: the first engine (a drain after every
stage), `lanes` windows of a row evaluated in lockstep (a batch runs until its deepest visited
window has finished), rows built during evaluation, a filter of the first stages. The
calibration row compares the model of the current engine with the RTL's measured cycles on the
same frames. Stump cascades only (tree
nodes wait on every comparison, which this model does not count).
"""

import numpy as np

from obscura.hw import detector_model as dm
from obscura.hw.cascade import load_cascade
from obscura.hw.detector_engine import ISQRT_STAGES

#: Clocks from a stage's last corner group to its verdict (E0 issue, E1S, E1R .. E5, verdict);
#: groups of more than 4 corners add one (E2Q, `drain`).
DRAIN = 12
#: Clocks per visited window outside evaluation (WINDOW, WINDOW_NF, the verdict's return).
WINDOW_OVERHEAD = 3
#: Row pipeline (R0 .. R4 with R0A, R1S, R2M, R3R) and nf pipeline (N0, N0A, N0B, N1S ..
#: square root) drains per window row.
ROW_DRAIN, NF_DRAIN = 9, ISQRT_STAGES + 8


#: (lanes, corners a clock, speculative next stage, rows overlapped, filter stages): the
#: engine as first built, then as built now (`BUILT`, 4 or 8 corners a clock), then ideas.
VARIANTS = [(1, 4, False, False, 0), (1, 4, True, False, 0), (1, 6, True, False, 0),
            (1, 8, True, False, 0), (1, 4, True, True, 0),
            (2, 4, True, True, 0), (4, 4, True, True, 0), (1, 8, True, True, 0),
            (2, 8, True, True, 0), (4, 8, True, True, 0), (8, 8, True, True, 0),
            (8, 16, True, True, 0), (4, 8, True, True, 1), (4, 8, True, True, 3),
            (8, 16, True, True, 3)]


#: The engine as built: one window at a time, the next stage issued speculatively, rows built
#: between window rows (`frame_cycles` keywords; `corners` is the engine's parameter).
BUILT = {"lanes": 1, "speculate": True, "overlap_rows": False, "filter_stages": 0}


def drain(corners):
    """The engine's stage drain when it reads `corners` corners a clock."""
    return DRAIN + (corners > 4)


def groups_per_stage(cas, corners):
    """Clocks each stage's corner groups take at `corners` corners a clock."""
    terms = dm._corner_terms(cas)
    out = []
    for s in range(cas.num_stages):
        first, count = int(cas.stage_first[s]), int(cas.stage_count[s])
        n = 0
        for k in range(first, first + count):
            n += -(-len(terms[cas.node_feature[int(cas.weak_root[k])]]) // corners)
        out.append(n)
    return np.array(out)


def frame_cycles(grids, cas, lanes=1, corners=4, speculate=False, overlap_rows=False,
                 filter_stages=0):
    """Clocks of one frame's analysis (`grids`: `detector_model.stage_grids` of the frame) for
    an engine variant. `overlap_rows`: the next window
    row's integral rows and nf are built while this row's windows are evaluated (a ring with
    room for both), so a window row costs the longer of the two. `filter_stages` = k > 0: a
    filter evaluates stages 0 .. k - 1 of one window a clock (nf too) as the row streams past,
    and queues the windows that pass them for the engine, which starts them at stage k."""
    if filter_stages:
        return _filtered_frame_cycles(grids, cas, lanes, corners, filter_stages)
    g = groups_per_stage(cas, corners)
    # Entering stage k costs its groups; a drain follows every stage entered, or with
    # speculation only the last one (the stage that decides the window).
    if speculate:
        enter = np.concatenate([[0], np.cumsum(g)]) + drain(corners)
    else:
        enter = np.concatenate([[0], np.cumsum(g + drain(corners))])
    total = 0
    win_h = cas.height
    for _li, (_f, ws, _hs, step), _xs, _ys, passed in grids:
        nwy, nwx = passed.shape
        entered = np.minimum(passed + 1, cas.num_stages)
        pad = (-nwx) % lanes
        for r in range(nwy):
            # Rows: win_h + 1 integral rows before the first window row, `step` before each
            # next one, ws + 1 beats each; nf: 2 clocks a window; the pipelines' drains.
            rows = (win_h + 1 if r == 0 else step) * (ws + 1) + 2 * nwx + ROW_DRAIN + NF_DRAIN
            vis = dm.visited(passed[r])
            deep = np.where(vis, entered[r], 0)
            if pad:
                deep = np.concatenate([deep, np.zeros(pad, np.int64)])
                vis = np.concatenate([vis, np.zeros(pad, bool)])
            deep = deep.reshape(-1, lanes).max(1)
            any_vis = vis.reshape(-1, lanes).any(1)
            work = int(np.where(any_vis, WINDOW_OVERHEAD + enter[deep], 1).sum()) + 2
            total += max(rows, work) if overlap_rows and r > 0 else rows + work
    return total


def _filtered_frame_cycles(grids, cas, lanes, corners, k):
    # Speculative engine, rows overlapped; survivors leave the filter through a FIFO, so a
    # batch of `lanes` is consecutive survivors, not neighbouring positions.
    enter = np.concatenate([[0], np.cumsum(groups_per_stage(cas, corners))])
    total = 0
    for _li, (_f, ws, _hs, step), _xs, _ys, passed in grids:
        for r, row in enumerate(passed):
            build = (cas.height + 1 if r == 0 else step) * (ws + 1) + ROW_DRAIN
            vis = dm.visited(row)
            filt = int(vis.sum()) + NF_DRAIN
            deep = np.minimum(row[vis & (row >= k)] + 1, cas.num_stages)
            deep = np.concatenate([deep, np.full((-len(deep)) % lanes, k)]).reshape(-1, lanes)
            work = int((WINDOW_OVERHEAD + drain(corners) + enter[deep.max(1)] - enter[k]).sum())
            total += build + max(filt, work) if r == 0 else max(build, filt, work)
    return total


def frame_work(grids, cas):
    """(integral corner terms, weak classifiers) a frame's visited windows evaluate: the work
    any engine must do, whatever its organisation (`grids`: `detector_model.stage_grids`)."""
    # One corner a clock: a stage's clocks are its corner terms.
    corners_upto = np.concatenate([[0], np.cumsum(groups_per_stage(cas, 1))])
    weak_upto = np.concatenate([[0], np.cumsum(cas.stage_count)])
    corners = weak = 0
    for _li, _level, _xs, _ys, passed in grids:
        for row in passed:
            entered = np.minimum(row[dm.visited(row)] + 1, cas.num_stages)
            corners += int(corners_upto[entered].sum())
            weak += int(weak_upto[entered].sum())
    return corners, weak


def built_cycles(frames, cascade, params, corners):
    """Clocks of the engine as built (`BUILT`, `corners` a clock) for each of `frames` with
    `cascade`: what a cascade costs before an RTL run, e.g. a second one beside the first."""
    cas = load_cascade(cascade)
    return [frame_cycles(dm.stage_grids(f, cas, params), cas, corners=corners, **BUILT)
            for f in frames]


def engine_options(frames, cascade="frontalface_default", params=None, measured=None,
                   budget=2_475_000, corners=8):
    """Clock estimates per frame for engine variants; `measured` (RTL cycles of the same
    frames, in order, from an engine reading `corners` corners a clock) adds a calibration of
    the model against it."""
    params = params or dm.DetectorParams()
    cas = load_cascade(cascade)
    per_frame = [dm.stage_grids(f, cas, params) for f in frames]
    rows = []
    for lanes, width, speculate, overlap, filt in VARIANTS:
        cyc = [frame_cycles(lv, cas, lanes, width, speculate, overlap, filt)
               for lv in per_frame]
        rows.append({"lanes": lanes, "corners_per_clock": width,
                     "speculative_next_stage": speculate, "rows_overlapped": overlap,
                     "filter_stages": filt,
                     "cycles_mean": int(np.mean(cyc)), "cycles_max": int(max(cyc)),
                     "over_budget_max": round(max(cyc) / budget, 2)})
    # The work itself: integral corners a clock that any organisation must sustain to finish
    # the worst frame within the budget (lanes in lockstep need more: they idle on divergence).
    work = [frame_work(lv, cas) for lv in per_frame]
    corners_max, weak_max = (max(w[i] for w in work) for i in (0, 1))
    out = {"frames": len(frames), "cascade": cascade, "downscale": params.downscale,
           "budget_cycles": budget, "variants": rows,
           "corner_terms_max": corners_max, "weak_evaluated_max": weak_max,
           "corners_per_clock_needed": round(corners_max / budget, 1),
           "weak_per_clock_needed": round(weak_max / budget, 2)}
    if measured:
        model = [frame_cycles(lv, cas, corners=corners, **BUILT) for lv in per_frame]
        out["calibration_model_over_rtl"] = round(float(np.mean(
            np.array(model) / np.array(measured, float))), 3)
    return out
