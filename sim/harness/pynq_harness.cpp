// Verilator harness for the PYNQ overlay's IP (`ObscuraPynq`, hw/pynq_top.py) with a model of
// the Xilinx AXI DMA in simple (register direct) mode on its two streams, and an AXI4-Lite
// master on its register port. Driven from Python (sim/fake_pynq.py) through the C API below.
//
// The AXI DMA model follows PG021's simple mode, for the registers PYNQ's driver uses:
//   MM2S: DMACR 0x00, DMASR 0x04, SA 0x18, SA_MSB 0x1C, LENGTH 0x28
//   S2MM: DMACR 0x30, DMASR 0x34, DA 0x48, DA_MSB 0x4C, LENGTH 0x58
//   DMACR bit 0 RS (run/stop), bit 2 Reset; DMASR bit 0 Halted, bit 1 Idle, bit 4 DMAIntErr,
//   bit 5 DMASlvErr, bit 6 DMADecErr, bit 12 IOC_Irq (write 1 to clear).
// Writing LENGTH (non-zero, channel running) starts a transfer. MM2S reads LENGTH bytes from
// memory and streams them as 32-bit words, tlast on the last word. S2MM accepts words while a
// transfer is programmed (tready is low otherwise), ends at tlast and then reads back in
// LENGTH the bytes it wrote. A packet longer than the S2MM buffer is "undefined" in PG021; the
// model flags DMAIntErr and halts, so it can never pass silently. Idle reads 0 after a start
// until the first transfer completes (PYNQ's driver allows for that with `_first_transfer`).
// Addresses are host pointers of buffers that sim/fake_pynq.py allocated and checked.
#include <cstdint>
#include <cstring>
#include <memory>

#include "verilated.h"
#include TOP_HEADER

namespace {

struct Channel {
    bool running = false;  // DMACR.RS
    bool busy = false;     // a transfer is under way
    bool idle = false;     // DMASR.Idle
    bool ioc = false;      // DMASR.IOC_Irq
    uint32_t err = 0;      // DMASR error bits (4..6)
    uint32_t dmacr = 0;
    uint64_t addr = 0;
    uint32_t length = 0;   // LENGTH register
    uint32_t *mem = nullptr;
    uint64_t words = 0, pos = 0;
    uint64_t beats = 0;    // words moved since creation (progress, for hang detection)

    void reset() { *this = Channel(); }

    uint32_t status() const {
        return (running ? 0 : 1) | (idle ? 2 : 0) | err | (ioc ? 0x1000 : 0);
    }
};

struct Harness {
    VerilatedContext ctx;
    std::unique_ptr<TOP_CLASS> top;
    uint64_t cycles = 0;
    Channel mm2s, s2mm;
    uint32_t s2mm_num = 3, s2mm_den = 4;   // S2MM accepts in num of every den clocks
    bool aw_fire = false, w_fire = false, b_fire = false, ar_fire = false, r_fire = false;
    uint32_t rdata = 0;

    Harness() : top(new TOP_CLASS(&ctx)) {
        top->clk = 0;
        top->rst = 0;
        top->s_axis_tvalid = 0;
        top->m_axis_tready = 0;
        top->s_axil_awvalid = 0;
        top->s_axil_wvalid = 0;
        top->s_axil_bready = 0;
        top->s_axil_arvalid = 0;
        top->s_axil_rready = 0;
        top->eval();
    }

    // One clock: drive the DMA's stream signals, sample every handshake, rising edge, update.
    void step() {
        auto *t = top.get();
        t->s_axis_tvalid = mm2s.busy;
        if (mm2s.busy) {
            t->s_axis_tdata = mm2s.mem[mm2s.pos];
            t->s_axis_tlast = mm2s.pos + 1 == mm2s.words;
            t->s_axis_tkeep = 0xF;
        } else {
            t->s_axis_tlast = 0;
        }
        t->m_axis_tready = s2mm.busy && (cycles % s2mm_den) < s2mm_num;
        t->eval();
        bool in_fire = t->s_axis_tvalid && t->s_axis_tready;
        bool out_fire = t->m_axis_tvalid && t->m_axis_tready;
        uint32_t out_data = t->m_axis_tdata;
        bool out_last = t->m_axis_tlast;
        aw_fire = t->s_axil_awvalid && t->s_axil_awready;
        w_fire = t->s_axil_wvalid && t->s_axil_wready;
        b_fire = t->s_axil_bvalid && t->s_axil_bready;
        ar_fire = t->s_axil_arvalid && t->s_axil_arready;
        r_fire = t->s_axil_rvalid && t->s_axil_rready;
        rdata = t->s_axil_rdata;
        t->clk = 1;
        t->eval();
        t->clk = 0;
        t->eval();
        ++cycles;
        if (in_fire) {
            ++mm2s.pos;
            ++mm2s.beats;
            if (mm2s.pos == mm2s.words) {
                mm2s.busy = false;
                mm2s.idle = mm2s.ioc = true;
            }
        }
        if (out_fire) {
            s2mm.mem[s2mm.pos++] = out_data;
            ++s2mm.beats;
            if (out_last) {
                s2mm.busy = false;
                s2mm.idle = s2mm.ioc = true;
                s2mm.length = static_cast<uint32_t>(4 * s2mm.pos);
            } else if (s2mm.pos == s2mm.words) {
                // The packet is longer than the buffer: PG021 leaves it undefined.
                s2mm.busy = false;
                s2mm.running = false;
                s2mm.err |= 0x10;
                s2mm.length = static_cast<uint32_t>(4 * s2mm.pos);
            }
        }
    }

    Channel &channel(uint32_t offset) { return offset >= 0x30 ? s2mm : mm2s; }

    void dma_write(uint32_t offset, uint32_t value) {
        Channel &ch = channel(offset);
        switch (offset % 0x30) {
        case 0x00:
            if (value & 4) {          // soft reset: the whole DMA, both channels
                mm2s.reset();
                s2mm.reset();
                return;
            }
            ch.dmacr = value;
            if (value & 1) {
                ch.running = true;
            } else {                  // stop: the transfer under way is abandoned
                ch.running = false;
                ch.busy = false;
            }
            break;
        case 0x04:
            if (value & 0x1000) ch.ioc = false;
            break;
        case 0x18: ch.addr = (ch.addr & ~0xFFFFFFFFull) | value; break;
        case 0x1C: ch.addr = (ch.addr & 0xFFFFFFFFull) | (static_cast<uint64_t>(value) << 32);
            break;
        case 0x28:
            ch.length = value;
            if (!ch.running || ch.busy) break;
            if (value == 0 || value % 4) {    // 32-bit stream: whole words only
                ch.err |= 0x10;
                ch.running = false;
                break;
            }
            ch.mem = reinterpret_cast<uint32_t *>(ch.addr);
            ch.words = value / 4;
            ch.pos = 0;
            ch.busy = true;
            ch.idle = false;
            break;
        default: break;
        }
    }

    uint32_t dma_read(uint32_t offset) {
        Channel &ch = channel(offset);
        switch (offset % 0x30) {
        case 0x00: return ch.dmacr;
        case 0x04: return ch.status();
        case 0x18: return static_cast<uint32_t>(ch.addr);
        case 0x1C: return static_cast<uint32_t>(ch.addr >> 32);
        case 0x28: return ch.length;
        default: return 0;
        }
    }
};

}  // namespace

extern "C" {

void *pq_create() { return new Harness(); }

void pq_destroy(void *h) { delete static_cast<Harness *>(h); }

uint64_t pq_cycles(void *h) { return static_cast<Harness *>(h)->cycles; }

// Reset the IP (rst high for two clocks) and the DMA.
void pq_reset(void *hp) {
    auto *h = static_cast<Harness *>(hp);
    h->mm2s.reset();
    h->s2mm.reset();
    h->top->rst = 1;
    h->step();
    h->step();
    h->top->rst = 0;
    h->top->eval();
}

void pq_set_s2mm_rate(void *hp, uint32_t num, uint32_t den) {
    auto *h = static_cast<Harness *>(hp);
    h->s2mm_num = num;
    h->s2mm_den = den ? den : 1;
}

// Run n clocks.
void pq_run(void *hp, uint64_t n) {
    auto *h = static_cast<Harness *>(hp);
    for (uint64_t i = 0; i < n; ++i) h->step();
}

// Run until channel (0 MM2S, 1 S2MM) has no transfer under way, at most n clocks; return the
// clocks run.
uint64_t pq_run_until_done(void *hp, uint32_t which, uint64_t n) {
    auto *h = static_cast<Harness *>(hp);
    Channel &ch = which ? h->s2mm : h->mm2s;
    uint64_t i = 0;
    while (i < n && ch.busy) {
        h->step();
        ++i;
    }
    return i;
}

uint64_t pq_beats(void *hp, uint32_t which) {
    auto *h = static_cast<Harness *>(hp);
    return which ? h->s2mm.beats : h->mm2s.beats;
}

void pq_dma_write(void *hp, uint32_t offset, uint32_t value) {
    static_cast<Harness *>(hp)->dma_write(offset, value);
}

uint32_t pq_dma_read(void *hp, uint32_t offset) {
    return static_cast<Harness *>(hp)->dma_read(offset);
}

// Flag an error on a channel and halt it (the address check is done in Python).
void pq_dma_fault(void *hp, uint32_t offset, uint32_t bits) {
    auto *h = static_cast<Harness *>(hp);
    Channel &ch = h->channel(offset);
    ch.err |= bits;
    ch.running = false;
    ch.busy = false;
}

// AXI4-Lite write through the IP's slave, as the PS's general-purpose port does it (address
// and data offered together). Returns 0, or 1 when the slave did not answer in `limit` clocks.
int pq_axil_write(void *hp, uint32_t addr, uint32_t data, uint64_t limit) {
    auto *h = static_cast<Harness *>(hp);
    auto *t = h->top.get();
    t->s_axil_awaddr = addr;
    t->s_axil_awvalid = 1;
    t->s_axil_wdata = data;
    t->s_axil_wstrb = 0xF;
    t->s_axil_wvalid = 1;
    t->s_axil_bready = 1;
    bool aw = false, w = false, b = false;
    for (uint64_t i = 0; i < limit && !b; ++i) {
        h->step();
        aw |= h->aw_fire;
        w |= h->w_fire;
        b |= h->b_fire;
        if (aw) t->s_axil_awvalid = 0;
        if (w) t->s_axil_wvalid = 0;
    }
    t->s_axil_awvalid = 0;
    t->s_axil_wvalid = 0;
    t->s_axil_bready = 0;
    t->eval();
    return b ? 0 : 1;
}

// AXI4-Lite read; *ok is 0 when the slave did not answer in `limit` clocks.
uint32_t pq_axil_read(void *hp, uint32_t addr, uint64_t limit, int *ok) {
    auto *h = static_cast<Harness *>(hp);
    auto *t = h->top.get();
    t->s_axil_araddr = addr;
    t->s_axil_arvalid = 1;
    t->s_axil_rready = 1;
    bool ar = false, r = false;
    uint32_t data = 0;
    for (uint64_t i = 0; i < limit && !r; ++i) {
        h->step();
        ar |= h->ar_fire;
        if (h->r_fire) {
            r = true;
            data = h->rdata;
        }
        if (ar) t->s_axil_arvalid = 0;
    }
    t->s_axil_arvalid = 0;
    t->s_axil_rready = 0;
    t->eval();
    *ok = r ? 1 : 0;
    return data;
}

}  // extern "C"

double sc_time_stamp() { return 0; }
