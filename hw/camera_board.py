"""The in-camera board's logic, everything but its I/O primitives and clock generation:
camera configuration (SCCB), DVP capture and clock-domain crossing, the test pattern when no
camera answers, the whole pipeline (`Anonymizer`), the frame-locked DVI output (TMDS symbols),
buttons and LEDs. A board top (`bitstreams/ulx3s-85f/top.py`) adds the PLL, the pins and the
10:1 serialisers; the board-level simulation (`sim/board_sim.py`) runs this core as it is.

    cam domain:  DVP pins -> DVPCapture -> AsyncFIFO ─┐
    sync domain: SCCBWriter                         ├─> select -> Anonymizer -> DVIFramer -> TMDS
                 TestPattern ───────────────────────┘      (camera, or the pattern on NACK)

Clock domains: `sync` is the pixel clock (the pipeline and the display run on it), `cam` is the
camera's PCLK (defined by the top).

Buttons (debounced, rising edge): `btn_mode` cycles mosaic -> blur -> solid, `btn_shape`
toggles rectangle / ellipse. LEDs (`leds`):

    0 fail closed: the pipeline filled a frame since the last displayed frame start
    1 detector overrun: an analysis was abandoned since the last displayed frame start
    2 camera answered (its configuration was acknowledged)
    3 test pattern shown (no camera)
    4 DVP FIFO overflow (sticky: camera pixels were lost, those frames were filled)
    5 display could not show a whole frame (empty or broken) since the last frame start
    6 shape (on: ellipse)
    7 heartbeat (toggles every displayed frame)
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from .anonymizer import Anonymizer
from .detector_model import DetectorParams
from .dvp import DVPInput
from .ov5640 import OV5640_720P30_RGB565
from .regs import anonymizer_register_map
from .sccb import SCCBWriter
from .test_pattern import TestPattern
from .video_out import DVIFramer
from .video_timing import CEA_720P30, VideoTiming

__all__ = ["CameraBoard", "BOARD_DETECTOR", "BOARD_DETECT_EVERY", "BOARD_MIN_BLOCK",
           "BOARD_CORNERS_PER_CLOCK"]

#: The board's detector: 4 x 4 downscale (1280x720 -> 320x180 analysed) so its buffers fit
#: an LFE5U-85F's block RAM; 64 clusters (not 128) halve the grouper's LUT RAM, whose address
#: fan-out set the detector's routed Fmax (too many clusters fail the frame closed: the dev
#: video needs at most 5 at 1280x720, bald_guys.jpg of the dlib faces 39 for its 13 faces:
#: the model's raw windows clustered by a script by hand, 2026-11-28, not kept).
BOARD_DETECTOR = DetectorParams(downscale=4, max_clusters=64)
#: The board's smallest mosaic / blur block: a store of 16-pixel block means at 1280x720 takes
#: 12 block RAMs, one of 8-pixel means 48 (the block setting 8 acts as 16 on the board).
BOARD_MIN_BLOCK = 16
#: The grouper's six memories in LUT RAM on the board (~6,200 LUT4 and 1,260 DPR16X4 at 128
#: clusters, about half at 64; 187 block RAMs of 208 in all): the one layout that routed. With
#: all six in block RAM (207 of 208) router2's overused wires stopped falling at ~3,250 and rose
#: from iteration 20; with the three wide ones in block RAM (199) they stalled at ~3,000-3,300
#: from iteration 16 to 35 (2026-11-27).
BOARD_GROUPER_LUT_RAM = True
#: The board's engine reads 6 integral corners a clock (three luma ring copies): 192 of the 208
#: block RAMs. With nextpnr's HeAP placer the board did not route with 6 or 8 (201 block RAMs):
#: router2's overused wires fell to ~3,000-4,200, then rose (2026-11-28); with the static
#: placer (`bitstreams/ulx3s-85f/build.py`) 6 corners route and meet timing.
BOARD_CORNERS_PER_CLOCK = 6
#: The board's detector analyses every fourth frame (7.5 analyses a second at 720p30): one
#: analysis at 320x180 takes at most 4.44 M clocks on six dev frames with 6 corners a clock (the
#: RTL in `make bench`), 3.6 frame periods of the board's 1.235 M pixel
#: clocks (1674 x 738 at 37.14 MHz, `bitstreams/ulx3s-85f/top.py`); four give 4.94 M. An
#: analysis that does not end in time is abandoned and its frames filled. Each analysis masks
#: four frames; a new face can go unmasked for up to eight (0.27 s: frame a's faces mask frames
#: a + 5 .. a + 8) where every-frame analysis leaves two.
BOARD_DETECT_EVERY = 4


class CameraBoard(wiring.Component):
    """See the module docstring. `timing` is the display raster (its active area must be
    `width` x `height`); `sccb_quarter` / `clocks_per_ms` scale the SCCB bit time and
    pauses (a simulation shortens them); `detect_every`: the detector's analysis period in
    frames (`Anonymizer`); `dvp_depth`: the camera FIFO's depth (`dvp.dvp_fifo_depth`)."""

    def __init__(self, width=1280, height=720, timing: VideoTiming = CEA_720P30,
                 cascade="frontalface_default", params=BOARD_DETECTOR,
                 camera_table=OV5640_720P30_RGB565, sccb_quarter=None, clocks_per_ms=None,
                 pattern_size=None, pattern_period=None, framer_depth=4096, max_hold=None,
                 debounce_bits=17, min_block=BOARD_MIN_BLOCK,
                 detect_every=BOARD_DETECT_EVERY, dvp_depth=64):
        if (timing.h_active, timing.v_active) != (width, height):
            raise ValueError(f"the display's active area {timing.h_active}x{timing.v_active} "
                             f"must be the frame size {width}x{height}")
        self.width, self.height, self.timing = width, height, timing
        self.pixel_hz = timing.pixel_hz
        # 100 kHz SCL (SCCB allows up to 400 kHz): a quarter bit every 2.5 us.
        self.sccb_quarter = sccb_quarter or max(2, round(timing.pixel_hz / 400e3))
        self.clocks_per_ms = clocks_per_ms or round(timing.pixel_hz / 1e3)
        self.pattern_size = pattern_size or max(8, height * 2 // 15)    # 96 px at 720p
        self.pattern_period = pattern_period or timing.h_total * timing.v_total
        self.debounce_bits = debounce_bits
        self.camera_table = camera_table
        self.framer_depth, self.max_hold = framer_depth, max_hold
        self.regs = {r.name: r for r in anonymizer_register_map()}
        self.detect_every, self.dvp_depth = detect_every, dvp_depth
        self.pipeline = Anonymizer(width, height, cascade, params, min_block=min_block,
                                   grouper_lut_ram=BOARD_GROUPER_LUT_RAM,
                                   detect_every=detect_every,
                                   corners_per_clock=BOARD_CORNERS_PER_CLOCK)
        super().__init__({
            "cam_vsync": In(1), "cam_href": In(1), "cam_data": In(8),
            "sccb_scl_oe": Out(1), "sccb_sda_oe": Out(1), "sccb_sda_i": In(1, init=1),
            "btn_mode": In(1), "btn_shape": In(1),
            "tmds_r": Out(10), "tmds_g": Out(10), "tmds_b": Out(10),
            "leds": Out(8),
            "camera_ok": Out(1), "pattern_on": Out(1), "det_busy": Out(1),
            "frames_shown": Out(32), "frames_empty": Out(32), "frames_broken": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        w, h = self.width, self.height
        m.submodules.sccb = sccb = SCCBWriter(self.camera_table, quarter=self.sccb_quarter,
                                              clocks_per_ms=self.clocks_per_ms)
        m.d.comb += [self.sccb_scl_oe.eq(sccb.scl_oe), self.sccb_sda_oe.eq(sccb.sda_oe),
                     sccb.sda_i.eq(self.sccb_sda_i)]
        m.submodules.dvp = dvp = DVPInput(self.dvp_depth)
        m.d.comb += [dvp.vsync.eq(self.cam_vsync), dvp.href.eq(self.cam_href),
                     dvp.data.eq(self.cam_data)]
        m.submodules.pattern = pat = TestPattern(w, h, self.pattern_size, self.pattern_period)
        m.submodules.pipeline = pipe = self.pipeline
        m.submodules.framer = framer = DVIFramer(self.timing, self.framer_depth,
                                                 max_hold=self.max_hold)

        camera_ok = sccb.done & ~sccb.nack
        pattern_on = sccb.done & sccb.nack
        m.d.comb += [self.camera_ok.eq(camera_ok), self.pattern_on.eq(pattern_on),
                     pat.enable.eq(pattern_on)]
        # The source: the camera once configured, the pattern when no camera answered.
        # Before the camera is configured its pins are drained and ignored.
        src_valid, src = Signal(), Signal.like(dvp.o.payload)
        with m.If(camera_ok):
            m.d.comb += [src_valid.eq(dvp.o.valid), src.eq(dvp.o.payload),
                         dvp.o.ready.eq(pipe.s_axis_tready)]
        with m.Elif(pattern_on):
            m.d.comb += [src_valid.eq(pat.o.valid), src.eq(pat.o.payload),
                         pat.o.ready.eq(pipe.s_axis_tready), dvp.o.ready.eq(1)]
        with m.Else():
            m.d.comb += dvp.o.ready.eq(1)
        m.d.comb += [pipe.s_axis_tdata.eq(src.b | (src.g << 8) | (src.r << 16)),
                     pipe.s_axis_tuser.eq(src.first), pipe.s_axis_tlast.eq(src.last),
                     pipe.s_axis_tvalid.eq(src_valid)]
        out = framer.i.payload
        m.d.comb += [out.b.eq(pipe.m_axis_tdata[0:8]), out.g.eq(pipe.m_axis_tdata[8:16]),
                     out.r.eq(pipe.m_axis_tdata[16:24]), out.first.eq(pipe.m_axis_tuser),
                     out.last.eq(pipe.m_axis_tlast), framer.i.valid.eq(pipe.m_axis_tvalid),
                     pipe.m_axis_tready.eq(framer.i.ready),
                     self.tmds_r.eq(framer.tmds_r), self.tmds_g.eq(framer.tmds_g),
                     self.tmds_b.eq(framer.tmds_b),
                     self.frames_shown.eq(framer.frames_shown),
                     self.frames_empty.eq(framer.frames_empty),
                     self.frames_broken.eq(framer.frames_broken)]

        # Buttons: synchronised, sampled every 2**debounce_bits clocks, act on a press.
        mode = Signal(2)
        shape = Signal()
        tick_count = Signal(self.debounce_bits)
        m.d.sync += tick_count.eq(tick_count + 1)
        tick = tick_count == 0
        dirty = Signal(init=1)          # CONTROL is written once after reset
        for name in ("btn_mode", "btn_shape"):
            raw = Signal(name=f"{name}_sync")
            m.submodules[f"{name}_cdc"] = FFSynchronizer(getattr(self, name), raw)
            prev = Signal(name=f"{name}_prev")
            with m.If(tick):
                m.d.sync += prev.eq(raw)
                with m.If(raw & ~prev):
                    m.d.sync += dirty.eq(1)
                    if name == "btn_mode":
                        m.d.sync += mode.eq(mode + 1)
                        with m.If(mode == 2):
                            m.d.sync += mode.eq(0)
                    else:
                        m.d.sync += shape.eq(~shape)

        # Register bus: DET_OVERRUNS read at each debounce tick, a CONTROL write when the
        # settings changed, else FAILED_CLOSED and STATUS polled in turn.
        control = self.regs["CONTROL"]
        base = control.reset_value() & ~0b111
        failed, overruns = Signal(32), Signal(32)
        poll = Signal()
        with m.If(tick):
            m.d.comb += pipe.reg_addr.eq(self.regs["DET_OVERRUNS"].offset)
            m.d.sync += overruns.eq(pipe.reg_rdata)
        with m.Elif(dirty):
            m.d.comb += [pipe.reg_addr.eq(control.offset),
                         pipe.reg_wdata.eq(base | mode | (shape << 2)), pipe.reg_we.eq(1)]
            m.d.sync += dirty.eq(0)
        with m.Else():
            m.d.sync += poll.eq(~poll)
            with m.If(poll):
                m.d.comb += pipe.reg_addr.eq(self.regs["FAILED_CLOSED"].offset)
                m.d.sync += failed.eq(pipe.reg_rdata)
            with m.Else():
                m.d.comb += pipe.reg_addr.eq(self.regs["STATUS"].offset)
                m.d.sync += self.det_busy.eq(pipe.reg_rdata[3])

        # LEDs, refreshed a clock after every displayed frame start. Registered: the framer's
        # `frame_start` comes from its FIFO's level, and the routed board's worst path
        # (96f7f56, 21.4 ns) ran from there across the chip into these registers' enables.
        led_failed, led_overrun, led_bad, beat = Signal(), Signal(), Signal(), Signal()
        seen_failed, seen_overruns = Signal(32), Signal(32)
        seen_bad, bad_now, refresh = Signal(32), Signal(32), Signal()
        m.d.sync += [refresh.eq(framer.frame_start),
                     bad_now.eq(framer.frames_empty + framer.frames_broken)]
        with m.If(refresh):
            m.d.sync += [led_failed.eq(failed != seen_failed), seen_failed.eq(failed),
                         led_overrun.eq(overruns != seen_overruns),
                         seen_overruns.eq(overruns),
                         led_bad.eq(bad_now != seen_bad), seen_bad.eq(bad_now),
                         beat.eq(~beat)]
        m.d.comb += self.leds.eq(Cat(led_failed, led_overrun, camera_ok, pattern_on,
                                     dvp.overflow, led_bad, shape, beat))
        return m
