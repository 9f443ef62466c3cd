"""`make bench` runs its sections as child processes, one per core: the scheduler keeps the
order rules (a section after the ones it reads, wall-clock sections alone) and keeps a failed
section's reason. Fake sections here: each records when it ran. Also the bench's helpers that
decide what a long run reports: the 720p video's segments, a stopped nextpnr run's numbers."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import run as bench  # noqa: E402

CHILD = """
import json, os, sys, time
name, out, log = sys.argv[1:4]
t0 = time.time()
open(log + "." + name, "w").close()          # "I have started"
partner = {"a": "b", "b": "a"}.get(name)
saw = False
while partner and time.time() < t0 + 60 and not saw:   # meet the partner, if any runs
    saw = os.path.exists(log + "." + partner)
    time.sleep(0.05)
time.sleep(0.3)
print(f"{name} says hello", flush=True)
if name == "broken":
    sys.exit(3)
with open(log, "a") as f:
    f.write(json.dumps([name, t0, time.time()]) + "\\n")
with open(out, "w") as f:
    json.dump({"result": {"value": name, "saw_partner": saw} if partner else {"value": name}},
              f)
"""


def _run(tmp_path, names, jobs, after=None, alone=()):
    log = tmp_path / "log.jsonl"
    results = {"meta": {"section_seconds": {}}}

    def command(name, out, quick):
        return [sys.executable, "-c", CHILD, name, str(out), str(log)]

    bench.run_sections(names, False, jobs, results, tmp_path / "results.json",
                       after=after or {}, alone=set(alone), command=command,
                       work=tmp_path / "sections")
    spans = {}
    if log.exists():
        for line in log.read_text().splitlines():
            name, t0, t1 = json.loads(line)
            spans[name] = (t0, t1)
    return results, spans


def _overlap(a, b):
    return a[0] < b[1] and b[0] < a[1]


def test_two_jobs_run_side_by_side_and_every_result_is_saved(tmp_path):
    results, spans = _run(tmp_path, ["a", "b", "c"], jobs=2)
    assert results["a"] == {"value": "a", "saw_partner": True}      # ran at the same time
    assert results["b"] == {"value": "b", "saw_partner": True}
    assert results["c"] == {"value": "c"}
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved["meta"]["section_seconds"]) == {"a", "b", "c"}


def test_a_section_waits_for_the_one_it_reads_and_alone_runs_alone(tmp_path):
    results, spans = _run(tmp_path, ["reader", "writer", "timed", "other"], jobs=2,
                          after={"reader": ("writer",)}, alone={"timed"})
    assert spans["reader"][0] >= spans["writer"][1]
    for name in ("reader", "writer", "other"):
        assert not _overlap(spans["timed"], spans[name]), name


def test_a_failed_section_records_why_and_the_others_go_on(tmp_path, capsys):
    results, spans = _run(tmp_path, ["broken", "fine"], jobs=2)
    assert results["broken"] is None
    assert "exited with 3" in results["broken_reason"]
    assert results["fine"] == {"value": "fine"}
    out = capsys.readouterr().out
    assert "[broken] broken says hello" in out       # a child's output, tagged


def test_unknown_sections_are_refused_with_the_list():
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "nosuch"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "unknown section(s) nosuch" in proc.stderr and "detector_rtl" in proc.stderr


def test_video_segments_cover_every_frame_once():
    for count, parts in [(275, 2), (275, 3), (7, 7), (3, 5), (1, 1)]:
        spans = bench.segments(count, parts)
        assert spans[0][0] == 0 and spans[-1][1] == count
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))     # contiguous, no overlap
        sizes = [b - a for a, b in spans]
        assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1
    assert bench.segments(275, 2) == [(0, 137), (137, 275)]


def test_a_stopped_place_and_route_still_reports_its_estimate_and_utilisation(tmp_path):
    from synth import placed_numbers

    log = tmp_path / "nextpnr.log"
    log.write_text("Info: Device utilisation:\n"
                   "Info: \t              DP16KD:     180/    208    86%\n"
                   "Info: \t          MULT18X18D:      67/    156    42%\n"
                   "Info: \t          TRELLIS_FF:   24138/  83640    28%\n"
                   "Info: \t        TRELLIS_COMB:   47236/  83640    56%\n"
                   "Info: Max frequency for clock 'clk': 48.10 MHz (FAIL at 74.25 MHz)\n"
                   "Info: Max frequency for clock 'clk': 51.95 MHz (FAIL at 74.25 MHz)\n"
                   "Info:     iter=9 wires=899869 overused=14612 overuse=14955 archfail=NA\n"
                   "Info:     iter=10 wires=904240 overused=14058 overuse=14331 archfail=NA\n")
    got = placed_numbers(log)
    assert got["fmax_placed_mhz"] == 51.95         # the last estimate, after refinement
    assert (got["luts"], got["ffs"], got["ebr"], got["dsp"]) == (47236, 24138, 180, 67)
    assert got["lut_pct"] == 56.48
    assert got["router_last_iteration"] == {"iteration": 10, "overused_wires": 14058}
    log.write_text("Info: Packing IOs..\n")
    assert placed_numbers(log) is None


def test_the_engine_workload_counts_the_weak_classifiers_the_model_evaluates():
    """`engine_model.frame_work` (the work any engine organisation must do) counts the same
    weak classifiers as the detector model's counter, which the RTL's counter equals."""
    from engine_model import frame_work

    from conftest import real_frame_rgb
    from obscura.hw import detector_model as dm
    from obscura.hw.cascade import load_cascade

    cas = load_cascade("frontalface_default")
    frame = real_frame_rgb(320, 240)
    params = dm.DetectorParams()
    corners, weak = frame_work(dm.stage_grids(frame, cas, params), cas)
    det = dm.detect(frame, cas, params)
    assert weak == det.weak_evaluated > 0
    assert corners > 2 * weak          # every weak classifier reads two rectangles or more


def test_a_routed_blocks_worst_path_is_read_from_its_log(tmp_path):
    from synth import worst_path

    log = tmp_path / "nextpnr.log"
    # The shape of nextpnr 0.11's report, shortened from build/synth/blk_tracker's log.
    log.write_text(
        "Info: Critical path report for clock 'clk' (posedge -> posedge):\n"
        "Info:       type curr  total name\n"
        "Info:   clk-to-q  0.52  0.52 Source aged_we_TRELLIS_FF_Q_16.Q\n"
        "Info:    routing  1.68  2.20 Net aged_we[16] (71,3) -> (72,7)\n"
        "Info:                          Sink $signal_LUT4_D_13.B\n"
        "Info:      logic  0.24  2.44 Source $signal_LUT4_D_13.F\n"
        "Info:    routing 10.75 13.19 Net $signal_LUT4_D_13_Z (72,7) -> (47,26)\n"
        "Info:                          Sink slot16_TRELLIS_FF_Q_49.CE\n"
        "Info: 0.76 ns logic, 12.43 ns routing\n\n"
        "Info: Critical path report for cross-domain path 'posedge clk' -> '<async>':\n"
        "Info:                          Sink elsewhere.D\n")
    assert worst_path(log) == {"from": "aged_we_TRELLIS_FF_Q_16.Q",
                               "to": "slot16_TRELLIS_FF_Q_49.CE",
                               "logic_ns": 0.76, "routing_ns": 12.43,
                               "longest_net": "$signal_LUT4_D_13_Z", "longest_net_ns": 10.75}
    log.write_text("Info: Packing IOs..\n")
    assert worst_path(log) is None


@pytest.mark.parametrize("corners,downscale", [(4, 2), (8, 2), (6, 4)])
def test_the_engine_calibration_models_the_engine_at_its_width(corners, downscale):
    """`engine_options`' calibration row compares the RTL's cycles with the model of the engine
    as built at the RTL's width (`corners`) and downscale, whatever widths the variant rows
    try."""
    from engine_model import BUILT, built_cycles, engine_options, frame_cycles

    from conftest import real_frame_rgb
    from obscura.hw import detector_model as dm
    from obscura.hw.cascade import load_cascade

    frame = real_frame_rgb(320, 240)
    cas = load_cascade("frontalface_default")
    params = dm.DetectorParams(downscale=downscale)
    model = frame_cycles(dm.stage_grids(frame, cas, params), cas, corners=corners, **BUILT)
    out = engine_options([frame], params=params, measured=[model], corners=corners,
                         budget=model)
    assert out["calibration_model_over_rtl"] == 1.0
    assert (out["downscale"], out["budget_cycles"]) == (downscale, model)
    built = [v for v in out["variants"] if v["corners_per_clock"] == corners and v["lanes"] == 1
             and v["speculative_next_stage"] and not v["rows_overlapped"]]
    assert [v["over_budget_max"] for v in built] == [1.0]
    assert built_cycles([frame], "frontalface_default", params, corners) == [model]


def test_placed_fmax_is_the_estimate_before_routing(tmp_path):
    from synth import placed_fmax

    log = tmp_path / "nextpnr.log"
    log.write_text("Info: Max frequency for clock 'clk': 50.10 MHz (FAIL at 74.25 MHz)\n"
                   "Info: Max frequency for clock 'clk': 61.71 MHz (FAIL at 74.25 MHz)\n"
                   "Info: Routing globals...\n"
                   "Warning: Max frequency for clock 'clk': 72.81 MHz (FAIL at 74.25 MHz)\n")
    assert placed_fmax(log) == 61.71
    log.write_text("Info: Packing IOs..\n")
    assert placed_fmax(log) is None


FAKE_NEXTPNR = """
import sys
if "--tmg-ripup" in sys.argv:              # stuck on a last overused wire
    for k in range(1, 100000):
        print(f"Info:     iter={k} wires=600000 overused=1 overuse=1 tmgfail=80", flush=True)
else:
    print("Info:     iter=1 wires=600000 overused=0 overuse=0 archfail=0")
    print("Info: Program finished normally.")
"""


def test_a_stalled_timing_driven_route_is_routed_again_without_the_option(tmp_path):
    from conftest import load_board_module

    build = load_board_module("build")
    fake = tmp_path / "fake_nextpnr.py"
    fake.write_text(FAKE_NEXTPNR)
    log = tmp_path / "nextpnr.log"
    rc, kept = build.run_nextpnr([sys.executable, str(fake), "--seed", "3", "--tmg-ripup"],
                                 log, tmp_path, timeout=120)
    assert (rc, kept) == (0, False)
    assert f"iter={build.RIPUP_MAX_ITERS + 1} " in (tmp_path / "nextpnr.log.ripup").read_text()
    assert "Program finished normally" in log.read_text()
    rc, kept = build.run_nextpnr([sys.executable, str(fake), "--tmg-ripup"][:2], log, tmp_path)
    assert (rc, kept) == (0, False)                  # no option given: run once, as it is


FAKE_ROUTER = """
import json, pathlib, sys, time
with open(sys.argv[1], "a") as f:          # one line per run
    f.write("ran\\n")
time.sleep(1)
pathlib.Path("report.json").write_text(json.dumps({"fmax": {"clk": {"achieved": 80.0}}}))
print("Info: Max frequency for clock 'clk': 70.00 MHz (PASS at 74.25 MHz)")
print("Info: Program finished normally.")
"""


def test_two_routes_of_one_seed_run_nextpnr_once(tmp_path, monkeypatch):
    import threading

    import synth

    fake, runs = tmp_path / "fake_router.py", tmp_path / "runs.txt"
    fake.write_text(FAKE_ROUTER)
    (tmp_path / "top.json").write_text("{}")
    monkeypatch.setattr(synth, "nextpnr_command",
                        lambda *args: [sys.executable, str(fake), str(runs)])
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        synth.route_seed(tmp_path, "top", 2))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert runs.read_text() == "ran\n"
    assert [r["fmax_mhz"] for r in results] == [80.0, 80.0]
    assert results[0]["fmax_placed_mhz"] == 70.0
