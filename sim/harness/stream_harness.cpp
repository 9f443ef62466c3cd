// Verilator harness for an obscura top with AXI4-Stream video ports and a register bus.
//
// Exposes a C API (used from Python through ctypes, see sim/verilator.py) that pushes a whole
// pixel stream through the model per call, so no Python runs per clock. TOP_CLASS and TOP_HEADER
// are set by the build to the Verilated top (e.g. Vmask_top / "Vmask_top.h").
#include <cstdint>
#include <cstring>
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
        top->m_axis_tready = 0;
        top->reg_we = 0;
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

}  // namespace

extern "C" {

void *obs_create() { return new Harness(); }

void obs_destroy(void *h) { delete static_cast<Harness *>(h); }

void obs_reset(void *hp) {
    auto *h = static_cast<Harness *>(hp);
    h->top->rst = 1;
    h->tick();
    h->tick();
    h->top->rst = 0;
    h->top->eval();
}

void obs_write_reg(void *hp, uint32_t addr, uint32_t data) {
    auto *h = static_cast<Harness *>(hp);
    h->top->reg_addr = addr;
    h->top->reg_wdata = data;
    h->top->reg_we = 1;
    h->tick();
    h->top->reg_we = 0;
    h->top->eval();
}

uint32_t obs_read_reg(void *hp, uint32_t addr) {
    auto *h = static_cast<Harness *>(hp);
    h->top->reg_addr = addr;
    h->top->eval();
    return h->top->reg_rdata;
}

uint64_t obs_cycles(void *hp) { return static_cast<Harness *>(hp)->cycles; }

// Clock n cycles with no input and the output ready.
void obs_idle(void *hp, uint64_t n) {
    auto *h = static_cast<Harness *>(hp);
    h->top->s_axis_tvalid = 0;
    h->top->m_axis_tready = 1;
    for (uint64_t i = 0; i < n; ++i) h->tick();
    h->top->m_axis_tready = 0;
    h->top->eval();
}

// Push n pixels (bgr: 3 bytes each, flags: bit 0 first, bit 1 last) and collect n_out pixels.
// idle_ppm / stall_ppm: chance per cycle (parts per million) of an input gap / output not ready.
// Returns the number of pixels collected; stops early after max_cycles.
size_t obs_stream(void *hp, const uint8_t *bgr, const uint8_t *flags, size_t n,
                  uint8_t *out_bgr, uint8_t *out_flags, size_t n_out,
                  uint32_t idle_ppm, uint32_t stall_ppm, uint64_t seed, uint64_t max_cycles,
                  uint64_t *first_out_cycle) {
    auto *h = static_cast<Harness *>(hp);
    auto *t = h->top.get();
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<uint32_t> ppm(0, 999999);
    size_t in = 0, out = 0;
    uint64_t start = h->cycles;
    *first_out_cycle = UINT64_MAX;
    while (out < n_out && h->cycles - start < max_cycles) {
        bool drive = in < n && !(idle_ppm && ppm(rng) < idle_ppm);
        t->s_axis_tvalid = drive;
        if (drive) {
            const uint8_t *p = bgr + 3 * in;
            t->s_axis_tdata = p[0] | (p[1] << 8) | (p[2] << 16);
            t->s_axis_tuser = flags[in] & 1;
            t->s_axis_tlast = (flags[in] >> 1) & 1;
        }
        t->m_axis_tready = !(stall_ppm && ppm(rng) < stall_ppm);
        t->eval();
        bool took = drive && t->s_axis_tready;
        if (t->m_axis_tvalid && t->m_axis_tready) {
            uint32_t d = t->m_axis_tdata;
            out_bgr[3 * out] = d & 0xff;
            out_bgr[3 * out + 1] = (d >> 8) & 0xff;
            out_bgr[3 * out + 2] = (d >> 16) & 0xff;
            out_flags[out] = t->m_axis_tuser | (t->m_axis_tlast << 1);
            if (out == 0) *first_out_cycle = h->cycles - start;
            ++out;
        }
        h->tick();
        if (took) ++in;
    }
    t->s_axis_tvalid = 0;
    t->m_axis_tready = 0;
    t->eval();
    return out;
}

}  // extern "C"

double sc_time_stamp() { return 0; }
