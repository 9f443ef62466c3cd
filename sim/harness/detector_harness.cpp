// Verilator harness for the detector top (hw/detector.py: DetectorTop): a video tap in
// (s_axis_*), detection records out (m_det_*), and the per-window trace port.
//
// C API used from Python through ctypes (sim/detector_sim.py): one call pushes a whole pixel
// stream and keeps clocking until the wanted number of end-of-frame records has come out, so
// no Python runs per clock.
#include <cstdint>
#include <memory>
#include <random>

#include "verilated.h"
#include TOP_HEADER

namespace {

struct Harness {
    VerilatedContext ctx;
    std::unique_ptr<TOP_CLASS> top;
    uint64_t cycles = 0;

    Harness() : top(new TOP_CLASS(&ctx)) {
        top->clk = 0;
        top->s_axis_tvalid = 0;
        top->m_det_tready = 0;
        top->eval();
    }

    void tick() {
        top->clk = 1;
        top->eval();
        top->clk = 0;
        top->eval();
        ++cycles;
    }
};

const uint64_t END_BIT = uint64_t(1) << 48;

}  // namespace

extern "C" {

void *det_create() { return new Harness(); }

void det_destroy(void *h) { delete static_cast<Harness *>(h); }

void det_reset(void *hp) {
    auto *h = static_cast<Harness *>(hp);
    h->top->rst = 1;
    h->tick();
    h->tick();
    h->top->rst = 0;
    h->top->eval();
}

void det_set_min_neighbors(void *hp, uint32_t v) {
    auto *h = static_cast<Harness *>(hp);
    h->top->min_neighbors = v;
    h->top->eval();
}

uint64_t det_cycles(void *hp) { return static_cast<Harness *>(hp)->cycles; }

// Push n pixels (bgr: 3 bytes each; flags: bit 0 first, bit 1 last), then keep clocking until
// `ends_wanted` end records have been collected or max_cycles have passed. Each record fills
// 4 words of `recs`: the record bits, then frame_weak, frame_windows, frame_cycles as they
// were when the record came out. Trace events fill 4 words each: level, x, y, stages passed.
// Returns the number of end records collected.
size_t det_run(void *hp, const uint8_t *bgr, const uint8_t *flags, size_t n, uint32_t idle_ppm,
               uint32_t stall_ppm, uint64_t seed, uint64_t max_cycles, size_t ends_wanted,
               uint64_t *recs, size_t rec_cap, size_t *n_recs, uint32_t *trace,
               size_t trace_cap, size_t *n_trace, uint64_t *used_cycles) {
    auto *h = static_cast<Harness *>(hp);
    auto *t = h->top.get();
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<uint32_t> ppm(0, 999999);
    size_t in = 0, ends = 0;
    *n_recs = 0;
    *n_trace = 0;
    uint64_t start = h->cycles;
    while ((in < n || ends < ends_wanted) && h->cycles - start < max_cycles) {
        bool drive = in < n && !(idle_ppm && ppm(rng) < idle_ppm);
        t->s_axis_tvalid = drive;
        if (drive) {
            const uint8_t *p = bgr + 3 * in;
            t->s_axis_tdata = p[0] | (p[1] << 8) | (p[2] << 16);
            t->s_axis_tuser = flags[in] & 1;
            t->s_axis_tlast = (flags[in] >> 1) & 1;
        }
        t->m_det_tready = !(stall_ppm && ppm(rng) < stall_ppm);
        t->eval();
        if (t->m_det_tvalid && t->m_det_tready) {
            uint64_t rec = t->m_det_tdata;
            if (*n_recs < rec_cap) {
                uint64_t *r = recs + 4 * *n_recs;
                r[0] = rec;
                r[1] = t->frame_weak;
                r[2] = t->frame_windows;
                r[3] = t->frame_cycles;
                ++*n_recs;
            }
            if (rec & END_BIT) ++ends;
        }
        if (t->trace_valid && *n_trace < trace_cap) {
            uint32_t *e = trace + 4 * *n_trace;
            e[0] = t->trace_level;
            e[1] = t->trace_x;
            e[2] = t->trace_y;
            e[3] = t->trace_stages;
            ++*n_trace;
        }
        h->tick();
        if (drive) ++in;
    }
    t->s_axis_tvalid = 0;
    t->m_det_tready = 0;
    t->eval();
    *used_cycles = h->cycles - start;
    return ends;
}

}  // extern "C"

double sc_time_stamp() { return 0; }
