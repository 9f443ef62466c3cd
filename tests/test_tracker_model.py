"""The tracker model's rules (hw/tracker_model.py): what keeps a face masked."""

from obscura.hw.tracker_model import VMAX, TrackerModel, overlap_area


def test_a_new_face_gets_a_slot_and_is_masked_at_once():
    t = TrackerModel(640, 360)
    assert not t.update([(100, 100, 150, 150)])
    boxes = [b for b in t.mask_boxes(margin=0) if b]
    assert boxes == [(100, 100, 150, 150)]


def test_margin_grows_the_box_and_clamps_to_the_frame():
    t = TrackerModel(640, 360)
    t.update([(0, 100, 100, 200)])
    (box,) = [b for b in t.mask_boxes(margin=30) if b]
    # 30 % of 100 px, computed as 100 * 30 * 656 >> 16 = 30
    assert box == (0, 70, 130, 230)


def test_a_missed_face_is_held_moving_with_its_velocity_then_dropped():
    t = TrackerModel(640, 360)
    t.update([(100, 100, 150, 150)])
    t.update([(110, 104, 160, 154)])               # moved (+10, +4)
    slot = next(s for s in t.slots if s.valid)
    assert (slot.vx, slot.vy, slot.hits) == (10, 4, 2)
    for age in range(1, 4):
        t.update([], hold=3)
        slot = next(s for s in t.slots if s.valid)
        assert slot.age == age and slot.box() == (110 + 10 * age, 104 + 4 * age,
                                                  160 + 10 * age, 154 + 4 * age)
    t.update([], hold=3)
    assert not any(s.valid for s in t.slots)


def test_masks_grow_by_twice_the_speed():
    t = TrackerModel(640, 360)
    t.update([(100, 100, 150, 150)])
    t.update([(120, 100, 170, 150)])
    (box,) = [b for b in t.mask_boxes(margin=0) if b]
    assert box == (80, 100, 210, 150)


def test_velocity_is_clamped():
    t = TrackerModel(1280, 720)
    t.update([(0, 0, 400, 400)])
    t.update([(300, 0, 700, 400)])
    assert next(s for s in t.slots if s.valid).vx == VMAX


def test_when_every_slot_is_busy_a_new_face_is_merged_not_dropped():
    t = TrackerModel(640, 360, slots=2)
    t.update([(0, 0, 20, 20), (100, 100, 120, 120)])
    t.update([(0, 0, 20, 20), (100, 100, 120, 120), (300, 300, 320, 320)])
    boxes = [b for b in t.mask_boxes(margin=0) if b]
    assert any(overlap_area(b, (300, 300, 320, 320)) == 400 for b in boxes)
    assert any(b[:2] == (100, 100) and b[2:] == (320, 320) for b in boxes)


def test_more_detections_than_inputs_saturate():
    t = TrackerModel(640, 360, max_detections=2)
    assert t.update([(0, 0, 10, 10), (20, 0, 30, 10), (40, 0, 50, 10)])
    assert sum(s.valid for s in t.slots) == 2
