// Verilator harness for the camera board core (hw/camera_board.py) with two clocks.
//
// Around the Verilated core it plays:
// * a camera: acknowledges SCCB writes (or not, when absent), and once configured sends
//   frames as RGB565 byte pairs in DVP timing (VSYNC pulse, HREF per line, blanking) on its
//   own pixel clock, optionally waiting in the vertical blanking until the detector is idle;
// * a recorder on the SCCB lines (every change of SCL/SDA) and on the TMDS outputs (every
//   clock with a data symbol, and every change of the blue channel's control token), which
//   Python decodes with the TMDS model (sim/board_sim.py).
//
// No Python runs per clock. TOP_CLASS / TOP_HEADER are set by the build.
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "verilated.h"
#include TOP_HEADER

namespace {

bool is_token(uint32_t s) {
    return s == 0x354 || s == 0x0AB || s == 0x154 || s == 0x2AB;
}

struct Harness {
    VerilatedContext ctx;
    std::unique_ptr<TOP_CLASS> top;
    uint64_t sync_half_ps = 6734, cam_half_ps = 5952;   // 74.25 MHz, 84 MHz
    uint64_t next_sync = 0, next_cam = 0;
    uint64_t sync_cycles = 0, cam_cycles = 0;
    bool camera_present = true;
    // SCCB device model state.
    int sccb_bits = 0, prev_scl = 1, prev_sda = 1;
    bool sccb_ack = false;
    std::vector<uint8_t> sccb_trace;    // (scl << 1 | sda) at every change
    // TMDS recorder.
    uint32_t prev_blue = 0xFFFF;
    bool de_since_vsync = false;
    int prev_vsync = 0;
    uint64_t frames_seen = 0;

    Harness() : top(new TOP_CLASS(&ctx)) {
        top->clk = 0;
        top->cam_clk = 0;
        top->rst = 0;
        top->cam_rst = 0;
        top->sccb_sda_i = 1;
        top->cam_vsync = 0;
        top->cam_href = 0;
        top->cam_data = 0;
        top->btn_mode = 0;
        top->btn_shape = 0;
        top->eval();
        next_sync = sync_half_ps;
        next_cam = cam_half_ps;
    }

    void on_sync_rise(uint16_t *rec, size_t rec_cap, size_t *n_rec) {
        ++sync_cycles;
        // SCCB: open-drain lines with pull-ups; the device pulls SDA low in each ninth bit.
        int scl = top->sccb_scl_oe ? 0 : 1;
        int msda = top->sccb_sda_oe ? 0 : 1;
        int sda = (sccb_ack && camera_present) ? 0 : msda;
        if (prev_scl && scl && prev_sda && !sda && !sccb_ack) sccb_bits = 0;
        if (!prev_scl && scl) ++sccb_bits;
        if (prev_scl && !scl) sccb_ack = (sccb_bits % 9) == 8;
        sda = (sccb_ack && camera_present) ? 0 : msda;
        top->sccb_sda_i = sda;
        if (scl != prev_scl || sda != prev_sda) sccb_trace.push_back((scl << 1) | sda);
        prev_scl = scl;
        prev_sda = sda;
        // TMDS.
        uint32_t r = top->tmds_r, g = top->tmds_g, b = top->tmds_b;
        bool data = !is_token(b) || !is_token(g) || !is_token(r);
        if (data || b != prev_blue) {
            if (*n_rec < rec_cap) {
                rec[3 * *n_rec] = r;
                rec[3 * *n_rec + 1] = g;
                rec[3 * *n_rec + 2] = b;
                ++*n_rec;
            }
        }
        if (data) de_since_vsync = true;
        if (!data) {
            int vsync = (b == 0x154 || b == 0x2AB);  // c1 set
            if (vsync && !prev_vsync) {
                if (de_since_vsync) ++frames_seen;
                de_since_vsync = false;
            }
            prev_vsync = vsync;
        }
        prev_blue = b;
    }
};

// The camera: a state machine advanced once per PCLK rising edge.
struct Camera {
    const uint8_t *bytes = nullptr;     // n_frames x h x 2w
    int n_frames = 0, w = 0, h = 0, h_blank = 0, v_front = 0, v_sync = 0, v_back = 0;
    bool pace = true;
    int frame = 0;
    int64_t pos = 0;      // clock within the frame's blanking + lines
    bool waiting = false;
    bool started = false;

    int line_len() const { return 2 * w + h_blank; }

    // Drive the pins for the next PCLK period.
    void step(TOP_CLASS *t) {
        t->cam_vsync = 0;
        t->cam_href = 0;
        t->cam_data = 0;
        if (frame >= n_frames) return;
        if (!started) {
            if (!t->camera_ok) return;
            started = true;
            pos = 0;
        }
        int64_t blank = (int64_t)(v_front + v_sync + v_back) * line_len();
        if (pos == (int64_t)v_front * line_len() && pace && t->det_busy) {
            return;     // hold the vertical blanking until the detector is idle
        }
        if (pos < blank) {
            int64_t line = pos / line_len();
            t->cam_vsync = (line >= v_front && line < v_front + v_sync) ? 1 : 0;
        } else {
            int64_t p = pos - blank;
            int64_t y = p / line_len(), x = p % line_len();
            if (x < 2 * w) {
                t->cam_href = 1;
                t->cam_data = bytes[((int64_t)frame * h + y) * 2 * w + x];
            }
        }
        ++pos;
        if (pos == blank + (int64_t)h * line_len()) {
            ++frame;
            pos = 0;
        }
    }
};

}  // namespace

extern "C" {

void *bh_create() { return new Harness(); }

void bh_destroy(void *h) { delete static_cast<Harness *>(h); }

void bh_set_clocks(void *hp, uint64_t sync_ps, uint64_t cam_ps) {
    auto *h = static_cast<Harness *>(hp);
    h->sync_half_ps = sync_ps / 2;
    h->cam_half_ps = cam_ps / 2;
    h->next_sync = h->sync_half_ps;
    h->next_cam = h->cam_half_ps;
}

void bh_set_inputs(void *hp, int camera_present, int btn_mode, int btn_shape) {
    auto *h = static_cast<Harness *>(hp);
    h->camera_present = camera_present != 0;
    h->top->btn_mode = btn_mode;
    h->top->btn_shape = btn_shape;
}

void bh_reset(void *hp) {
    auto *h = static_cast<Harness *>(hp);
    auto *t = h->top.get();
    t->rst = 1;
    t->cam_rst = 1;
    for (int i = 0; i < 4; ++i) {
        t->clk = 1; t->cam_clk = 1; t->eval();
        t->clk = 0; t->cam_clk = 0; t->eval();
    }
    t->rst = 0;
    t->cam_rst = 0;
    t->eval();
}

// Run until `frames_wanted` frames with picture have been shown (a VSYNC after data), or
// `max_sync_cycles`. Records TMDS symbols (r, g, b) into rec (capacity rec_cap triples) and
// returns how many; *frames_out gets the frames seen.
size_t bh_run(void *hp, const uint8_t *bytes, int n_frames, int w, int hgt, int h_blank,
              int v_front, int v_sync, int v_back, int pace, uint64_t frames_wanted,
              uint64_t max_sync_cycles, uint16_t *rec, size_t rec_cap, uint64_t *frames_out) {
    auto *h = static_cast<Harness *>(hp);
    auto *t = h->top.get();
    Camera cam;
    cam.bytes = bytes;
    cam.n_frames = n_frames;
    cam.w = w;
    cam.h = hgt;
    cam.h_blank = h_blank;
    cam.v_front = v_front;
    cam.v_sync = v_sync;
    cam.v_back = v_back;
    cam.pace = pace != 0;
    size_t n_rec = 0;
    h->frames_seen = 0;
    uint64_t start = h->sync_cycles;
    int sync_level = 0, cam_level = 0;
    while (h->frames_seen < frames_wanted && h->sync_cycles - start < max_sync_cycles) {
        if (h->next_sync <= h->next_cam) {
            sync_level ^= 1;
            t->clk = sync_level;
            h->next_sync += h->sync_half_ps;
            t->eval();
            if (sync_level) h->on_sync_rise(rec, rec_cap, &n_rec);
        } else {
            cam_level ^= 1;
            t->cam_clk = cam_level;
            h->next_cam += h->cam_half_ps;
            t->eval();
            if (cam_level) {
                ++h->cam_cycles;
                cam.step(t);
            }
        }
    }
    t->eval();
    *frames_out = h->frames_seen;
    return n_rec;
}

uint64_t bh_sync_cycles(void *hp) { return static_cast<Harness *>(hp)->sync_cycles; }

size_t bh_sccb_trace(void *hp, uint8_t *out, size_t cap) {
    auto *h = static_cast<Harness *>(hp);
    size_t n = h->sccb_trace.size();
    if (out) std::memcpy(out, h->sccb_trace.data(), n < cap ? n : cap);
    return n;
}

uint32_t bh_status(void *hp, int which) {
    auto *t = static_cast<Harness *>(hp)->top.get();
    switch (which) {
        case 0: return t->leds;
        case 1: return t->camera_ok;
        case 2: return t->pattern_on;
        case 3: return t->frames_shown;
        case 4: return t->frames_empty;
        case 5: return t->frames_broken;
        case 6: return t->det_busy;
        default: return 0;
    }
}

}  // extern "C"

double sc_time_stamp() { return 0; }
