"""Proof that a chunk of a video, run with a warm-up, outputs what the single run outputs.

The chip's state before frame k is: the tracker's slots, the detections of frames k - 2 and
k - 1, the mask unit's block means of frame k - 1 and its learned frame size. The detections and
the block means are functions of single input frames, so every run that has processed the two
frames before k agrees on them (`MIN_WARMUP`). Only the tracker carries history, and no fixed
warm-up bounds it: a slot that keeps matching a face lives for ever, its velocity is the last
step of its box, and its index depends on slots freed long ago (on the dev clip a face is on
screen throughout and the tracker is never empty). So seams are checked, never assumed.

A slot's *contents* are its box, velocity and age; its hit count is only counted, nothing reads
it. Write S ~ T when two slot lists hold the same contents at possibly different indices. The
mask is the union of the slots' regions, so S ~ T gives the same output frame. An update
(`TrackerModel.update`) is equivariant under re-indexing except where the slot index settles a
choice: a detection whose largest overlap is shared by slots of different contents, or a merge
(all slots busy) whose nearest centre is. A new slot takes the lowest free index in either run,
which only extends the re-indexing. Hence, by induction over chunks (chunk 0 starts at frame 0):

* a chunk whose state before its first output frame *equals* that of an exact predecessor is
  exact (`STRICT`): identical state, identical inputs, identical run;
* a chunk whose state is ~ its verified predecessor's, and whose updates from its first output
  frame on never let an index settle a choice (`order_free`, replayed from the detections on
  the `model` backend), stays ~ the single run and outputs the same frames (`PERMUTED`);
* any other chunk is run again from the start of the latest STRICT chunk's run, which repeats
  that run and so is exact by construction: a longer warm-up, never a difference.
"""

import copy

from obscura.hw.tracker_model import VMAX, Slot, overlap_area

__all__ = ["MIN_WARMUP", "STRICT", "PERMUTED", "tracker_state", "contents", "replay_update",
           "UpdateRecorder", "seam_kind"]

#: Frames a chunk must run before its first output frame: the detector's two-frame lag (frame
#: k is masked with the detections of frames <= k - 2), which covers the block means of k - 1.
MIN_WARMUP = 2
STRICT, PERMUTED = "strict", "permuted"


def tracker_state(acc):
    """The valid slots of an accelerator's tracker: (index, box, vx, vy, age)."""
    dev = acc._dev
    if dev is None:
        return ()
    if acc.backend == "model":
        return tuple((i, s.box(), s.vx, s.vy, s.age)
                     for i, s in enumerate(dev.tracker.slots) if s.valid)

    def signed8(v):
        return v - 256 if v & 0x80 else v
    out = []
    for i in range(32):                     # the slot read-back registers (docs/registers.md)
        a, b, c = (dev.read(f"SLOT{i}_{r}") for r in "ABC")
        if b >> 31:
            out.append((i, (a & 0xFFF, a >> 16 & 0xFFF, b & 0xFFF, b >> 16 & 0xFFF),
                        signed8(c & 0xFF), signed8(c >> 8 & 0xFF), c >> 24))
    return tuple(out)


def contents(state):
    """The slots of a `tracker_state` without their indices, as a comparable multiset."""
    return sorted(s[1:] for s in state)


def _content(s):
    return (s.box(), s.vx, s.vy, s.age)


def _clamp(v, lo, hi):
    return max(lo, min(hi, v))


def replay_update(slots, boxes, hold, width, height, max_detections=32):
    """Replay `TrackerModel.update` on a copy of `slots`; return (new slots, order_free):
    order_free is False when a slot index settled a choice between slots of different
    contents. The caller compares the new slots with the model's, so a drift between this
    replay and the model fails the check rather than passing it."""
    slots = copy.deepcopy(slots)
    n = len(slots)
    matched, free_of_order = [False] * n, True

    def settled(tied):
        return len({_content(slots[i]) for i in tied}) > 1
    for d in boxes[:max_detections]:
        d = tuple(int(v) for v in d)
        valid = [i for i in range(n) if slots[i].valid]
        areas = {i: overlap_area((slots[i].x0 + slots[i].vx, slots[i].y0 + slots[i].vy,
                                  slots[i].x1 + slots[i].vx, slots[i].y1 + slots[i].vy), d)
                 for i in valid if not matched[i]}
        best_area = max(areas.values(), default=0)
        free = [i for i in range(n) if not slots[i].valid]
        if best_area > 0:
            tied = [i for i, a in areas.items() if a == best_area]
            free_of_order &= not settled(tied)
            s = slots[tied[0]]
            s.vx = _clamp(d[0] - s.x0, -VMAX, VMAX)
            s.vy = _clamp(d[1] - s.y0, -VMAX, VMAX)
            s.x0, s.y0, s.x1, s.y1 = d
            s.hits = min(s.hits + 1, 255)
            s.age = 0
            matched[tied[0]] = True
        elif free:
            slots[free[0]] = Slot(True, *d, 0, 0, 1, 0)
            matched[free[0]] = True
        else:
            dist = {i: abs(slots[i].x0 + slots[i].x1 - d[0] - d[2])
                    + abs(slots[i].y0 + slots[i].y1 - d[1] - d[3]) for i in valid}
            near = min(dist.values())
            tied = [i for i in valid if dist[i] == near]
            free_of_order &= not settled(tied)
            s = slots[tied[0]]
            s.x0, s.y0 = min(s.x0, d[0]), min(s.y0, d[1])
            s.x1, s.y1 = max(s.x1, d[2]), max(s.y1, d[3])
            s.age = 0
            matched[tied[0]] = True
    for i, s in enumerate(slots):
        if not s.valid or matched[i]:
            continue
        s.age = min(s.age + 1, 255)
        s.x0, s.x1 = _clamp(s.x0 + s.vx, 0, width), _clamp(s.x1 + s.vx, 0, width)
        s.y0, s.y1 = _clamp(s.y0 + s.vy, 0, height), _clamp(s.y1 + s.vy, 0, height)
        if s.age > hold or s.x1 <= s.x0 or s.y1 <= s.y0:
            slots[i] = Slot()
    return slots, free_of_order


class UpdateRecorder:
    """Watch a `model` accelerator frame by frame and tell whether every tracker update since
    `start()` was free of slot order. Other backends do not expose their detections: they
    report False, so their seams must match exactly."""

    def __init__(self, acc):
        self.acc = acc
        self.watching, self.order_free = False, acc.backend == "model"

    def start(self):
        self.watching = True

    def before(self):
        dev = self.acc._dev
        self._slots = copy.deepcopy(dev.tracker.slots) if self.watching and dev else None
        self._k = len(dev.results) if dev else 0

    def after(self):
        if not (self.watching and self.order_free):
            return
        dev = self.acc._dev
        if self._slots is None:             # the device was (re)built by this frame
            self.order_free = False
            return
        k = self._k
        if k < 2 or not dev.results[k - 2][1]:
            return                          # no update at this frame (startup, incomplete)
        new, free = replay_update(self._slots, dev.results[k - 2][0], self.acc.config.hold,
                                  dev.width, dev.height, dev.max_detections)
        self.order_free = free and new == dev.tracker.slots


def seam_kind(start, state_in, prev_kind, prev_state_out, order_free):
    """How a chunk is proven (`STRICT`, `PERMUTED`) or None when it must be run again.

    `start` is the first frame of its run; `prev_kind` and `prev_state_out` describe its
    verified predecessor (None for the first chunk)."""
    if start == 0:
        return STRICT
    if prev_kind is None:
        return None
    if state_in == prev_state_out and prev_kind == STRICT:
        return STRICT
    if contents(state_in) == contents(prev_state_out) and order_free:
        return PERMUTED
    return None
