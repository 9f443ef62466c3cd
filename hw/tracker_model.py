"""Bit-exact model of the tracker: slots of boxes that keep a face masked between detections.

Each frame's detections (boxes in input pixels, half-open, in the detector's order) update the
slots in `update`:

1. Each detection, in order, is matched to the free-to-match valid slot whose predicted box
   (box moved by its velocity) it overlaps most (intersection area; ties: lowest slot). A match
   takes the detection's box, a velocity = the change of its top-left corner (clamped to
   +-VMAX px per frame), one more hit (saturating) and age 0.
2. A detection that overlaps no slot opens the lowest free slot (velocity 0, 1 hit). When every
   slot is in use it is merged into the slot with the nearest centre (L1 distance, ties lowest):
   that slot's box becomes the union of both, so the face is still masked, never dropped.
3. Every valid slot not matched this frame ages by one and moves by its velocity (clamped to
   the frame); a slot older than `hold` frames, or moved off the frame, is freed.

`mask_boxes` gives each valid slot's box grown by `margin` percent of its size on each side,
computed as `(size * margin * 656) >> 16` (a hair over the percentage), plus twice its speed
(the detector's result masks the frame after next), clamped to the frame.

More than `max_detections` boxes in one frame saturates the tracker: the extra boxes are not
tracked and the pipeline fails closed for the frame those results mask.
"""

from dataclasses import dataclass

__all__ = ["TrackerModel", "Slot", "VMAX", "MARGIN_MUL", "overlap_area"]

#: Velocity limit, pixels per frame (8-bit signed registers).
VMAX = 127
#: margin * size * MARGIN_MUL >> 16 is margin percent of size (656 / 65536 = 1 / 99.9).
MARGIN_MUL = 656


@dataclass
class Slot:
    valid: bool = False
    x0: int = 0
    y0: int = 0
    x1: int = 0
    y1: int = 0
    vx: int = 0
    vy: int = 0
    hits: int = 0
    age: int = 0

    def box(self):
        return (self.x0, self.y0, self.x1, self.y1)


def overlap_area(a, b):
    """Intersection area of two half-open boxes (0 when they do not overlap)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0


def _clamp(v, lo, hi):
    return max(lo, min(hi, v))


class TrackerModel:
    def __init__(self, width, height, slots=32, max_detections=32):
        self.width, self.height = width, height
        self.num_slots, self.max_detections = slots, max_detections
        self.reset()

    def reset(self):
        self.slots = [Slot() for _ in range(self.num_slots)]

    def update(self, boxes, hold=15):
        """Apply one frame's detections; return True when the tracker saturated."""
        matched = [False] * self.num_slots
        for d in boxes[:self.max_detections]:
            d = tuple(int(v) for v in d)
            best, best_area, free, near, near_dist = -1, 0, -1, 0, None
            for i, s in enumerate(self.slots):
                if not s.valid:
                    if free < 0:
                        free = i
                    continue
                dist = (abs(s.x0 + s.x1 - d[0] - d[2]) + abs(s.y0 + s.y1 - d[1] - d[3]))
                if near_dist is None or dist < near_dist:
                    near, near_dist = i, dist
                if matched[i]:
                    continue
                pred = (s.x0 + s.vx, s.y0 + s.vy, s.x1 + s.vx, s.y1 + s.vy)
                area = overlap_area(pred, d)
                if area > best_area:
                    best, best_area = i, area
            if best >= 0:
                s = self.slots[best]
                s.vx = _clamp(d[0] - s.x0, -VMAX, VMAX)
                s.vy = _clamp(d[1] - s.y0, -VMAX, VMAX)
                s.x0, s.y0, s.x1, s.y1 = d
                s.hits = min(s.hits + 1, 255)
                s.age = 0
                matched[best] = True
            elif free >= 0:
                self.slots[free] = Slot(True, *d, 0, 0, 1, 0)
                matched[free] = True
            else:
                s = self.slots[near]
                s.x0, s.y0 = min(s.x0, d[0]), min(s.y0, d[1])
                s.x1, s.y1 = max(s.x1, d[2]), max(s.y1, d[3])
                s.age = 0
                matched[near] = True
        for i, s in enumerate(self.slots):
            if not s.valid or matched[i]:
                continue
            s.age = min(s.age + 1, 255)
            s.x0 = _clamp(s.x0 + s.vx, 0, self.width)
            s.x1 = _clamp(s.x1 + s.vx, 0, self.width)
            s.y0 = _clamp(s.y0 + s.vy, 0, self.height)
            s.y1 = _clamp(s.y1 + s.vy, 0, self.height)
            if s.age > hold or s.x1 <= s.x0 or s.y1 <= s.y0:
                self.slots[i] = Slot()
        return len(boxes) > self.max_detections

    def mask_boxes(self, margin=30):
        """The regions the mask unit gets: one per slot (None for a free slot)."""
        out = []
        for s in self.slots:
            if not s.valid:
                out.append(None)
                continue
            mx = (((s.x1 - s.x0) * margin * MARGIN_MUL) >> 16) + 2 * abs(s.vx)
            my = (((s.y1 - s.y0) * margin * MARGIN_MUL) >> 16) + 2 * abs(s.vy)
            out.append((max(0, s.x0 - mx), max(0, s.y0 - my),
                        min(self.width, s.x1 + mx), min(self.height, s.y1 + my)))
        return out
