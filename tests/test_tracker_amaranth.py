"""Tracker RTL in Amaranth's simulator against `TrackerModel`, frame by frame, on random scenes
of moving boxes: slots and published regions after every frame, merges when every slot is busy,
saturation, unanalysed frames; and the worst case fits the pipeline's delay line."""

import random

import pytest
from amaranth.sim import Simulator

from obscura.hw.anonymizer import DELAY
from obscura.hw.tracker import Tracker
from obscura.hw.tracker_model import VMAX, TrackerModel

W, H = 320, 240


def scene(rng, frames, faces, max_boxes):
    """Per frame: (boxes, analysed). Faces drift with a velocity, some vanish for a few frames,
    and now and then a burst of extra boxes or an unanalysed frame."""
    tracks = [[rng.randrange(0, W - 60), rng.randrange(0, H - 60), rng.randrange(16, 60),
               rng.randrange(-9, 10), rng.randrange(-9, 10)] for _ in range(faces)]
    out = []
    for _ in range(frames):
        boxes = []
        for t in tracks:
            t[0] = min(max(t[0] + t[3], -20), W)
            t[1] = min(max(t[1] + t[4], -20), H)
            x0, y0 = max(t[0], 0), max(t[1], 0)
            x1, y1 = min(t[0] + t[2], W), min(t[1] + t[2], H)
            if x1 > x0 and y1 > y0 and rng.random() < 0.8:
                boxes.append((x0, y0, x1, y1))
        if rng.random() < 0.15:
            for _ in range(rng.randrange(1, max_boxes + 1)):
                x0, y0 = rng.randrange(0, W - 8), rng.randrange(0, H - 8)
                boxes.append((x0, y0, min(W, x0 + rng.randrange(4, 80)),
                              min(H, y0 + rng.randrange(4, 80))))
        rng.shuffle(boxes)
        out.append((boxes, rng.random() > 0.1))
    return out


def run(dut, frames, hold, margin):
    """Drive `frames` through the tracker; return per frame (slots, regions, vouched, clocks
    from the end record to the published regions)."""
    got = []

    async def bench(ctx):
        ctx.set(dut.hold, hold)
        ctx.set(dut.margin, margin)
        for _ in range(2):                   # the mask unit has started frames 0 and 1
            ctx.set(dut.frame_start, 1)
            await ctx.tick()
        ctx.set(dut.frame_start, 0)
        for j, (boxes, analysed) in enumerate(frames):
            recs = [{"x0": b[0], "y0": b[1], "x1": b[2], "y1": b[3]} for b in boxes]
            recs.append({"end": 1, "analysed": int(analysed)})
            for rec in recs:
                ctx.set(dut.records.payload, rec)
                ctx.set(dut.records.valid, 1)
                for _ in range(4 * DELAY):      # a clock edge with valid and ready takes it
                    taken = ctx.get(dut.records.ready)
                    await ctx.tick()
                    if taken:
                        break
                else:
                    raise AssertionError(f"frame {j}: the tracker never took its records")
            ctx.set(dut.records.valid, 0)
            clocks = 0
            while ctx.get(dut.frames_done) != (j + 1) % 256:
                await ctx.tick()
                clocks += 1
                assert clocks < 4 * DELAY, f"frame {j}: its results were never applied"
            slots = []
            for i in range(dut.num_slots):       # the read-back port, slot by slot
                ctx.set(dut.slot_addr, i)
                s = ctx.get(dut.slot_data)
                slots.append(dict(valid=s.valid, x0=s.x0, y0=s.y0, x1=s.x1, y1=s.y1, vx=s.vx,
                                  vy=s.vy, hits=s.hits, age=s.age))
            regions = [(r.x0, r.y0, r.x1, r.y1) if r.enable else None
                       for r in ctx.get(dut.regions)]
            got.append((slots, regions, ctx.get(dut.pub_vouched), clocks))
            ctx.set(dut.frame_start, 1)      # the mask unit starts the next frame
            await ctx.tick()
            ctx.set(dut.frame_start, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got


def check(frames, slots, max_det, hold, margin):
    dut = Tracker(W, H, num_slots=slots, max_detections=max_det)
    model = TrackerModel(W, H, slots=slots, max_detections=max_det)
    got = run(dut, frames, hold, margin)
    for j, ((boxes, analysed), (g_slots, g_regions, g_vouched, _)) in enumerate(
            zip(frames, got)):
        saturated = False
        if analysed:
            saturated = model.update(boxes, hold)
        for i, (s, g) in enumerate(zip(model.slots, g_slots)):
            want = (dict(valid=1, x0=s.x0, y0=s.y0, x1=s.x1, y1=s.y1, vx=s.vx, vy=s.vy,
                         hits=s.hits, age=s.age) if s.valid else None)
            have = g if g["valid"] else None
            assert have == want, f"frame {j}, slot {i}: expected {want}, got {have}"
        assert g_regions == model.mask_boxes(margin), f"frame {j}: regions"
        assert g_vouched == int(analysed and not saturated), f"frame {j}: vouched"
    return got


@pytest.mark.parametrize("seed", range(3))
def test_few_slots_merge_and_saturate(seed):
    """4 slots, 6 detections a frame at most: slots fill, merge into the nearest, saturate."""
    rng = random.Random(seed)
    check(scene(rng, 40, 5, 8), slots=4, max_det=6, hold=rng.randrange(0, 5),
          margin=rng.randrange(0, 101))


def test_fast_face_velocity_is_clamped():
    """A face that jumps more than VMAX px between analyses, right then back: the velocity
    saturates at +-VMAX (both directions of the clamp, RTL and model alike)."""
    big, right = (0, 0, 300, 200), (150, 20, 320, 220)
    got = check([([big], True), ([right], True), ([big], True)], slots=4, max_det=4, hold=3,
                margin=30)
    assert [g[0][0]["vx"] for g in got] == [0, VMAX, -VMAX]
    assert [g[0][0]["vy"] for g in got] == [0, 20, -20]


def test_default_size_and_worst_case_fits_the_delay_line():
    """32 slots, 32 detections: results match, and applying a full frame of detections takes
    fewer clocks than the delay line that gives the tracker its time."""
    rng = random.Random(7)
    frames = scene(rng, 12, 20, 40)
    full = [(x, y, x + 20, y + 20) for x in range(0, 320, 40) for y in range(0, 160, 40)]
    frames += [(full, True), (full[::-1], True), ([], True)]
    got = check(frames, slots=32, max_det=32, hold=3, margin=30)
    worst = max(clocks for *_, clocks in got)
    assert worst < DELAY, f"applying a frame took {worst} clocks, the delay line is {DELAY}"


def test_frame_counters_wrap_without_failing_closed():
    """Past frame 256 the 8-bit frame counters wrap: results keep being applied and vouched
    (a signed difference of the two counters once held them back for 256 frames)."""
    rng = random.Random(3)
    frames = [([(100 + (j % 7), 80, 140 + (j % 7), 120)] + ([] if j % 50 else
               [(rng.randrange(0, 200), 10, 250, 60)]), True) for j in range(300)]
    got = check(frames, slots=4, max_det=6, hold=2, margin=30)
    assert all(vouched for _, _, vouched, _ in got[250:])
