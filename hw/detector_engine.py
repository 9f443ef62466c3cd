"""The cascade engine: pyramid, integral images, variance normalisation and cascade evaluation
over a stored base image, bit-exact with `detector_model` (docs/detector.md, docs/architecture.md).

Per pyramid level, window row by window row:

1. **Rows**: level image rows are resampled from the base image (four parity banks give the
   2 x 2 bilinear neighbourhood in one read), summed down the columns (`colsum`, modulo 2**21 and
   2**26) and across the row into the integral and squared-integral **ring** of window
   height + 1 rows of W + 1 entries. The ring keeps absolute integrals modulo 2**21 / 2**26,
   so every window difference equals the model's; a corner's address is
   `(origin + offset) mod ring` (one conditional subtraction), and a feature's corner offsets
   are constants of the cascade program.
2. **nf**: every window of the row gets its normalisation factor (8 corners, 2 clocks, a
   pipelined integer square root) into a row buffer.
3. **Evaluation**: windows in OpenCV's order with its skip after a stage-0 rejection. The
   sequencer streams the window's corner groups (2, 4, 6 or 8 corners a clock: one luma ring
   copy per two) from stage 0 on, across stage ends, without waiting for comparisons (only
   tree nodes, alt2, wait); each stage's verdict comes back behind its last leaf, and the one
   that ends the window (a rejection, or the last stage) flushes the groups issued behind it.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from .cascade import NODE_FRAC
from .cascade_program import LEAF_BITS, STAGE_BITS, THRESH_BITS, WEIGHT_BITS, CascadeProgram
from .data_reg import data_reg, keep_reg
from .detector_model import SCALE_FRAC, SQSUM_BITS, SUM_BITS, THRESHOLD_OFFSET_SHIFT
from .types import COORD_BITS

__all__ = ["CascadeEngine", "ISQRT_STAGES"]

#: Input of the square root: A * sqsum - sum**2 < 2**34 for a 31 x 31 window.
ISQRT_IN_BITS = 34
ISQRT_STAGES = ISQRT_IN_BITS // 2
#: Entries of each frame-store block (2048 x 9 bit: one DP16KD deep).
FS_SUB_DEPTH = 2048
#: Entries of each cascade program ROM: one DP16KD deep (1024 x 18), no multiplexer inside.
PROG_SUB_DEPTH = 1024
#: The widest unsigned operand of the ECP5's 18 x 18 signed multipliers: wider products are
#: formed in parts of this many bits, each part one DSP, registered before they are added.
DSP_PART_BITS = 17
#: The square root of a number below 2**34 is below 2**17: 17 bits, so that nf times a
#: threshold's parts fits one DSP each (E3).
NF_BITS = ISQRT_STAGES


def _bits(n):
    return max(1, int(n).bit_length())


def _block_split(m, name, shape, depth, block_depth, raddrs, init=None, write=None,
                 early=False, selects=1):
    """A memory of `depth` entries built as memories one block RAM deep (`block_depth`
    entries), each block's outputs registered before the select: a DP16KD's clock-to-out
    plus a multiplexer over several blocks does not fit one clock. `raddrs`: one address per
    read port. `write=(data, en)` adds a writer at the first read port's address and makes
    the other read ports transparent for it, so Yosys keeps each block in one set of block
    RAMs (see the ring). Returns `(values, blocks)`: per read port the entry at its address
    two clocks after the address (read, then registered), and the memories in address order
    (a writer at an address of its own adds its ports).

    `early`: the addresses and the write enable come a clock ahead (the write data does
    not), and every block registers copies of its own (kept apart by synthesis,
    `hw/data_reg.py`), placed beside its block RAMs: one address net to every block of a
    memory spread over the chip was the whole top's worst path (the ring's, 10.4 ns of
    routing at 4585ac2). Values then come three clocks after the address.

    `selects` > 1: each read port's value is a list of that many selections of the same entry,
    each by a copy of its own of the block select (kept apart like `early`'s), so the fields
    of the entry that feed different logic do not share one select net."""
    bits = (block_depth - 1).bit_length()
    nblk = -(-depth // block_depth)
    regs, blocks = [[] for _ in raddrs], []
    for k in range(nblk):
        chunk = (init or [])[k * block_depth:(k + 1) * block_depth]
        mem = memory.Memory(shape=shape, depth=min(block_depth, depth - k * block_depth),
                            init=chunk)
        m.submodules[f"{name}_{k}"] = mem
        here_addrs = [a[:bits] for a in raddrs]
        if early:
            here_addrs = [keep_reg(bits, name=f"{name}_{k}_addr{p}", reset_less=True)
                          for p in range(len(raddrs))]
            m.d.sync += [h.eq(a[:bits]) for h, a in zip(here_addrs, raddrs)]
        writer = ()
        if write is not None:
            wp = mem.write_port()
            here = write[1] if nblk == 1 else write[1] & (raddrs[0][bits:] == k)
            if early:
                here_r = keep_reg(name=f"{name}_{k}_we")
                m.d.sync += here_r.eq(here)
                here = here_r
            m.d.comb += [wp.addr.eq(here_addrs[0]), wp.data.eq(write[0]), wp.en.eq(here)]
            writer = (wp,)
        for p in range(len(raddrs)):
            rp = mem.read_port(transparent_for=writer if p else ())
            # Data only (the pipelines' valid bits say when it counts): no reset, so the
            # abort's reset does not fan out to every block's output (the board's detector's
            # worst routed path with 4 corners: 13.0 ns).
            reg = Signal(shape, name=f"{name}_q{k}" + (f"_{p}" if p else ""), reset_less=True)
            m.d.comb += rp.addr.eq(here_addrs[p])
            m.d.sync += reg.eq(rp.data)
            regs[p].append(reg)
        blocks.append(mem)
    values = []
    for p, raddr in enumerate(raddrs):
        if nblk == 1:
            values.append([regs[p][0]] * selects if selects > 1 else regs[p][0])
            continue
        sfx = f"_{p}" if p else ""
        blk1 = data_reg(range(nblk), name=f"{name}_blk1{sfx}")
        if early:
            blk0 = data_reg(range(nblk), name=f"{name}_blk0{sfx}")
            m.d.sync += [blk0.eq(raddr[bits:]), blk1.eq(blk0)]
        else:
            m.d.sync += blk1.eq(raddr[bits:])
        blks = [keep_reg(range(nblk), name=f"{name}_blk{sfx}_{c}", reset_less=True)
                if selects > 1 else data_reg(range(nblk), name=f"{name}_blk{sfx}")
                for c in range(selects)]
        m.d.sync += [blk.eq(blk1) for blk in blks]
        views = [Array(regs[p])[blk] for blk in blks]
        values.append(views if selects > 1 else views[0])
    return values, blocks


class CascadeEngine(wiring.Component):
    """Ports: base-image writes (`wr_*`, into buffer `wr_buf`); `start` (analyse `start_buf`),
    `busy`, `done` (an analysis is abandoned by resetting the engine: a `ResetInserter`);
    `raw_*` a window that passed every stage (level coordinates and the level's index, no
    backpressure: the engine waits for `raw_ready` before each window); `trace_*` one
    event per window visited with the number of stages it passed; `windows`, `weak` counters.
    """

    def __init__(self, base_w, base_h, levels, program: CascadeProgram):
        self.base_w, self.base_h = base_w, base_h
        self.levels = levels
        self.prog = program
        self.stride = program.stride
        # The integral rows a window reads: its height + 1. Rows are built between window
        # rows, never during evaluation, so the ring needs no more (25 rows for 24 x 24, where
        # a power of two would take 32: the ring copies are most of the engine's block RAM).
        self.ring_rows = program.height + 1
        if any(step >= self.ring_rows for _f, _w, _h, step in levels):
            raise ValueError("a window row step must be smaller than the integral ring")
        self.ring_bits = _bits(self.ring_rows * self.stride - 1)
        self.level_bits = _bits(max(len(levels) - 1, 1))
        self.stage_bits = _bits(program.num_stages)
        super().__init__({
            "wr_en": In(1), "wr_x": In(COORD_BITS), "wr_y": In(COORD_BITS), "wr_data": In(8),
            "wr_buf": In(1),
            "start": In(1), "start_buf": In(1), "busy": Out(1), "done": Out(1),
            "thr_offset": In(signed(8)),
            "raw_valid": Out(1), "raw_ready": In(1), "raw_level": Out(self.level_bits),
            "raw_x": Out(COORD_BITS), "raw_y": Out(COORD_BITS),
            "trace_valid": Out(1), "trace_level": Out(self.level_bits),
            "trace_x": Out(COORD_BITS), "trace_y": Out(COORD_BITS),
            "trace_stages": Out(self.stage_bits),
            "windows": Out(32), "weak": Out(32),
        })

    # ------------------------------------------------------------------ helpers
    def _level_table(self):
        """Per-level constants as Arrays indexed by the level counter."""
        win_w, win_h = self.prog.width, self.prog.height
        rows = []
        for f, ws, hs, step in self.levels:
            nwx = len(range(0, ws - win_w, step))
            nwy = len(range(0, hs - win_h, step))
            rows.append(dict(f=f, ws=ws, step=step, c=(f - (1 << SCALE_FRAC)) >> 1,
                             nwx=nwx, nwy=nwy, step_stride=step * self.stride))
        return {k: Array(Const(r[k], _bits(max(x[k] for x in rows) + 1)) for r in rows)
                for k in rows[0]}

    def elaborate(self, platform):
        m = Module()
        prog, stride = self.prog, self.stride
        win_w, win_h = prog.width, prog.height
        lv = self._level_table()
        nlev = len(self.levels)
        # The ring holds `ring_rows` rows of `stride` = W + 1 entries (no power-of-two
        # padding): a row slot plus a column never passes the end; a window's corner may wrap
        # past the last slot, which one subtraction undoes (E1A). Row slots advance by adding
        # a stride and wrapping (`slot_add`), never by a multiplication or a modulo.
        ring_size = self.ring_rows * stride

        def slot_add(slot, delta):
            """`slot + delta` wrapped to the ring (`delta` a multiple of the stride below its
            size)."""
            total = slot + delta
            return Mux(total >= ring_size, total - ring_size, total)[:self.ring_bits]

        # -------------------------------------------------------------- frame store
        half_w, half_h = -(-self.base_w // 2), -(-self.base_h // 2)
        bank_depth = half_w * half_h
        # Each bank is built of blocks one block RAM deep (FS_SUB_DEPTH), read at R1 and
        # registered at R1S before the select (`_block_split`).
        fs_bits = (FS_SUB_DEPTH - 1).bit_length()
        # Writes are registered a clock (address, data, bank) before the blocks: no multiplier
        # in front of a write enable. The analysis of a buffer starts long after its last write.
        fs_waddr = data_reg(range(2 * bank_depth))
        fs_wdata, fs_wen, fs_wpar = data_reg(8), Signal(), data_reg(2)
        m.d.sync += [fs_waddr.eq(self.wr_buf * bank_depth + (self.wr_y >> 1) * half_w +
                                 (self.wr_x >> 1)),
                     fs_wdata.eq(self.wr_data), fs_wen.eq(self.wr_en),
                     fs_wpar.eq(Cat(self.wr_x[0], self.wr_y[0]))]
        # An address only (the R pipeline's valid bits say when it counts): no reset, so the
        # abort's reset does not fan out to it (that was the detector's worst routed path with
        # the grouper in block RAM).
        fs_raddr = [[Signal(range(2 * bank_depth), name=f"fs_raddr{pr}{pc}", reset_less=True)
                     for pc in (0, 1)]
                    for pr in (0, 1)]
        fs_q = [[None, None], [None, None]]   # per bank: the value read, at R1S
        for pr in (0, 1):
            for pc in (0, 1):
                (fs_q[pr][pc],), blocks = _block_split(
                    m, f"frame_{pr}{pc}", 8, 2 * bank_depth, FS_SUB_DEPTH, [fs_raddr[pr][pc]])
                for k, mem in enumerate(blocks):
                    wp = mem.write_port()
                    m.d.comb += [
                        wp.addr.eq(fs_waddr[:fs_bits]), wp.data.eq(fs_wdata),
                        wp.en.eq(fs_wen & (fs_wpar == (pr << 1 | pc)) &
                                 (fs_waddr[fs_bits:] == k))]

        # -------------------------------------------------------------- ring and line memories
        ring_depth = ring_size
        # The rings are built of blocks one block RAM deep, like the frame store: a corner is
        # read (N1, E2), registered per block (N1S, E2S) and then selected. Block RAM: a
        # DP16KD has two ports. Yosys 0.70 maps a read port onto the write port's block RAM
        # port only when it has the writer's address signal, and then only if every other
        # read port of that memory is transparent for the writer (it has no cap for "old
        # data" across ports and would emulate it by copying the memory). So port A shares
        # the writer's address and port B is transparent (`_block_split`): rows are written
        # (phase 0) while no corner read is used, so transparency changes nothing read.
        # Corners beyond A and B read further luma copies written alongside, one per two
        # corners of a group (K / 2 copies in all), each copy's first port sharing its
        # writer's address the same way; copy 0's ports also serve the nf pipeline, and the
        # squared ring has one copy.
        # The ring's addresses and write enable come a clock ahead (`early`): every block
        # registers its own copies beside it.
        K = prog.group
        ring_addr = [Signal(self.ring_bits, name=f"ring_addr{k}") for k in range(K)]
        ring_addr_a, ring_addr_b = ring_addr[0], ring_addr[1]
        ring_wen = Signal()
        ring_wdata_s, ring_wdata_q = Signal(SUM_BITS), Signal(SQSUM_BITS)
        (rs_a, rs_b), _ = _block_split(m, "ring_s", SUM_BITS, ring_depth, FS_SUB_DEPTH,
                                       [ring_addr_a, ring_addr_b], write=(ring_wdata_s, ring_wen),
                                       early=True)
        (rq_a, rq_b), _ = _block_split(m, "ring_q", SQSUM_BITS, ring_depth, FS_SUB_DEPTH,
                                       [ring_addr_a, ring_addr_b], write=(ring_wdata_q, ring_wen),
                                       early=True)
        rs_more = []
        for j in range(1, K // 2):
            # Copy 1 keeps the name it had when there were at most two copies.
            name = "ring_s_cd" if j == 1 else f"ring_s_{j}"
            vals, _ = _block_split(m, name, SUM_BITS, ring_depth, FS_SUB_DEPTH,
                                   ring_addr[2 * j:2 * j + 2], write=(ring_wdata_s, ring_wen),
                                   early=True)
            rs_more += vals
        m.submodules.colsum_s = colsum_s = memory.Memory(shape=SUM_BITS, depth=self.base_w,
                                                         init=[])
        m.submodules.colsum_q = colsum_q = memory.Memory(shape=SQSUM_BITS, depth=self.base_w,
                                                         init=[])
        cs_w, cq_w = colsum_s.write_port(), colsum_q.write_port()
        cs_r, cq_r = colsum_s.read_port(), colsum_q.read_port()
        max_nwx = max(len(range(0, ws - win_w, step)) for _, ws, _, step in self.levels)
        m.submodules.nf_buf = nf_buf = memory.Memory(shape=NF_BITS, depth=max_nwx, init=[])
        nf_w = nf_buf.write_port()
        nf_r = nf_buf.read_port()

        # -------------------------------------------------------------- control state
        level = Signal(self.level_bits)
        buf = Signal()
        wy = Signal(COORD_BITS)              # current window row (level pixels)
        wy_idx = Signal(COORD_BITS)          # its index
        rows_issued = Signal(COORD_BITS + 1)  # integral rows sent down the row pipeline
        # Rows the window row `wy` needs, wy + win_h + 1: a register loaded with `wy` (the sum
        # in front of the row issue's comparisons was the whole top's worst path at fabd32d).
        need = data_reg(COORD_BITS + 1)
        issue_slot = Signal(self.ring_bits)   # ... its ring slot: (rows_issued mod rows) * stride
        wy_slot = Signal(self.ring_bits)      # the ring slot of window row `wy`
        rows_done = Signal(COORD_BITS + 1)    # integral rows written
        # The level's constants, registered when the level changes (IDLE, ROW_END): read
        # through the level's multiplexer, they were the start of the engine's worst path
        # (`level` -> `sx` + `f` -> `ix1`, 16.1 ns in the whole top at 82a277a).
        lvr = {k: Signal(len(a[0]), name=f"lv_{k}") for k, a in lv.items()}

        def load_level(index):
            return [lvr[k].eq(a[index]) for k, a in lv.items()]
        f_l, ws_l = lvr["f"], lvr["ws"]
        step_l, c_l = lvr["step"], lvr["c"]
        nwx_l, nwy_l = lvr["nwx"], lvr["nwy"]

        # ---------------------------------------------------------- row pipeline (resample)
        # R0: beat b = 0..ws of integral row r (b = 0 writes the zero column; row 0 is zeros).
        r0_valid, r0_b, r0_row = Signal(), Signal(COORD_BITS + 1), Signal(COORD_BITS + 1)
        sx = data_reg(32)
        sy = data_reg(32)                       # source row position of the next image row
        row_sy = data_reg(32)                   # ... of the row being issued (latched at b = 0)
        # Timing: no clamp, multiplier or carry chain between a position register and the
        # frame-store address. The row part of each bank's address is computed from `sy` in two
        # stages while the row before is issued (`sy` moves at its beat 1) and latched at b = 0;
        # the column part is computed from the next `sx` a beat ahead (`ix`, `ix1` registered).
        def clamp_pair(pos, size, i, i1):
            i_raw = pos >> SCALE_FRAC
            return [i.eq(Mux(i_raw > size - 1, size - 1, i_raw)),
                    i1.eq(Mux(i_raw >= size - 1, size - 1, i_raw + 1))]
        iy_s, iy1_s = data_reg(COORD_BITS), data_reg(COORD_BITS)
        m.d.sync += clamp_pair(sy, self.base_h, iy_s, iy1_s)
        base_s = [data_reg(range(2 * bank_depth)) for _ in (0, 1)]
        base_row = [data_reg(range(2 * bank_depth)) for _ in (0, 1)]
        y_par_s, y_par = data_reg(2), data_reg(2)           # iy, iy1 parities
        for pr in (0, 1):
            rr = Mux(iy_s[0] == pr, iy_s, iy1_s) >> 1
            m.d.sync += base_s[pr].eq(buf * bank_depth + rr * half_w)
        m.d.sync += y_par_s.eq(Cat(iy_s[0], iy1_s[0]))
        fy = data_reg(8)
        m.d.comb += fy.eq(row_sy[8:16])
        ix, ix1 = data_reg(COORD_BITS), data_reg(COORD_BITS)
        # The value `sx` takes at a beat issued (FSM below), a function of the beat only: the
        # issue decision is the registers' enable, not a term of their data (timing).
        sx_next = Signal(32)
        m.d.comb += sx_next.eq(Mux(r0_b == 0, c_l, sx + f_l))
        for pr in (0, 1):
            for pc in (0, 1):
                cc = Mux(ix[0] == pc, ix, ix1) >> 1
                # R0 -> R0A: the address registered before it fans out to the bank's block
                # RAMs (timing: the adder's output routed across the chip to them was the
                # detector's worst path at 1280x720, 11.2 ns on one net).
                m.d.sync += fs_raddr[pr][pc].eq(base_row[pr] + cc)
        r_meta = data.StructLayout({"valid": 1, "b": COORD_BITS + 1, "row": COORD_BITS + 1,
                                    "slot": self.ring_bits, "last": 1})
        r0a, r1 = Signal(r_meta), Signal(r_meta)
        r0a_sel, r1_sel = data_reg(4), data_reg(4)   # iy parity, iy1 parity, ix parity, ix1 parity
        r0a_fx, r0a_fy, r1_fx, r1_fy = data_reg(8), data_reg(8), data_reg(8), data_reg(8)
        m.d.sync += [r0a.valid.eq(r0_valid), r0a.b.eq(r0_b), r0a.row.eq(r0_row),
                     r0a.slot.eq(issue_slot),
                     r0a.last.eq(r0_b == ws_l),
                     r0a_sel.eq(Cat(y_par, ix[0], ix1[0])),
                     r0a_fx.eq(sx[8:16]), r0a_fy.eq(fy),
                     r1.eq(r0a), r1_sel.eq(r0a_sel), r1_fx.eq(r0a_fx), r1_fy.eq(r0a_fy)]
        # R1 -> R1S: every frame-store block's output registered (`fs_q` selects among them).
        r1s = Signal(r_meta)
        r1s_sel = data_reg(4)
        r1s_fx, r1s_fy = data_reg(8), data_reg(8)
        r1s_fxn = data_reg(9)                   # 256 - fx, registered ahead of the multipliers
        m.d.sync += [r1s.eq(r1), r1s_sel.eq(r1_sel), r1s_fx.eq(r1_fx), r1s_fy.eq(r1_fy),
                     r1s_fxn.eq(256 - r1_fx)]

        # R1S -> R1B: the four neighbours, registered (block select and bank select).
        def bank(pr_sel, pc_sel):
            return Mux(pr_sel, Mux(pc_sel, fs_q[1][1], fs_q[1][0]),
                       Mux(pc_sel, fs_q[0][1], fs_q[0][0]))
        r1b = Signal(r_meta)
        p00, p01, p10, p11 = (data_reg(8, name=f"p{n}") for n in ("00", "01", "10", "11"))
        r1b_fx, r1b_fy, r1b_fxn = data_reg(8), data_reg(8), data_reg(9)
        m.d.sync += [r1b.eq(r1s), r1b_fx.eq(r1s_fx), r1b_fy.eq(r1s_fy), r1b_fxn.eq(r1s_fxn),
                     p00.eq(bank(r1s_sel[0], r1s_sel[2])), p01.eq(bank(r1s_sel[0], r1s_sel[3])),
                     p10.eq(bank(r1s_sel[1], r1s_sel[2])), p11.eq(bank(r1s_sel[1], r1s_sel[3]))]
        # R1B -> R2: horizontal interpolation.
        r2 = Signal(r_meta)
        top, bot, r2_fy, r2_fyn = data_reg(17), data_reg(17), data_reg(8), data_reg(9)
        m.d.sync += [r2.eq(r1b), r2_fy.eq(r1b_fy), r2_fyn.eq(256 - r1b_fy),
                     top.eq(p00 * r1b_fxn + p01 * r1b_fx),
                     bot.eq(p10 * r1b_fxn + p11 * r1b_fx)]
        # R2 -> R2M: the vertical interpolation's products, registered (timing: the products,
        # their sum and its routing into `pix` were the detector's worst path at 1280x720
        # once the grouper's was mended, 13.8 ns).
        r2m = Signal(r_meta)
        top_p, bot_p = data_reg(25), data_reg(25)
        m.d.sync += [r2m.eq(r2), top_p.eq(top * r2_fyn), bot_p.eq(bot * r2_fy)]
        # R2M -> R3: vertical interpolation; colsum read for the column.
        r3 = Signal(r_meta)
        pix = data_reg(8)
        m.d.sync += [r3.eq(r2m), pix.eq((top_p + bot_p + (1 << 15)) >> 16)]
        col = Signal(COORD_BITS)
        m.d.comb += [cs_r.addr.eq(r2m.b - 1), cq_r.addr.eq(r2m.b - 1)]
        # R3 -> R3R: the column sums read and the pixel's square, registered (a block RAM's
        # clock-to-out leaves no time for two additions behind it). The column is written
        # back at R3R, a clock later than it was read: its next read is a row later.
        r3r = Signal(r_meta)
        cs_d, cq_d = data_reg(SUM_BITS), data_reg(SQSUM_BITS)
        pix_d, pix_sq = data_reg(8), data_reg(16)
        m.d.sync += [r3r.eq(r3), cs_d.eq(cs_r.data), cq_d.eq(cq_r.data), pix_d.eq(pix),
                     pix_sq.eq(pix * pix)]
        # R3R: column sums and the row's running sums; R4 writes the ring.
        m.d.comb += col.eq(r3r.b - 1)
        zero_row = r3r.row == 0
        data_beat = r3r.valid & (r3r.b != 0)
        cs_new = Mux(zero_row, 0, cs_d + pix_d)[:SUM_BITS]
        cq_new = Mux(zero_row, 0, cq_d + pix_sq)[:SQSUM_BITS]
        m.d.comb += [cs_w.addr.eq(col), cq_w.addr.eq(col), cs_w.data.eq(cs_new),
                     cq_w.data.eq(cq_new), cs_w.en.eq(data_beat), cq_w.en.eq(data_beat)]
        acc_s, acc_q = data_reg(SUM_BITS), data_reg(SQSUM_BITS)
        r4 = Signal(r_meta)
        m.d.sync += r4.eq(r3r)
        with m.If(r3r.valid):
            m.d.sync += [acc_s.eq(Mux(r3r.b == 0, 0, acc_s + cs_new)),
                         acc_q.eq(Mux(r3r.b == 0, 0, acc_q + cq_new))]
        row_write = Signal()
        row_waddr = data_reg(self.ring_bits)
        # Row slots travel down the pipeline with their beats (counted at issue, `issue_slot`).
        # R4's write address and enable, a clock ahead (the ring's blocks register them).
        m.d.sync += row_waddr.eq(r3.slot + r3.b)
        m.d.comb += [ring_wdata_s.eq(acc_s), ring_wdata_q.eq(acc_q),
                     ring_wen.eq(row_write & r3r.valid)]
        with m.If(r4.valid & r4.last):
            m.d.sync += rows_done.eq(r4.row + 1)

        # ---------------------------------------------------------- nf pipeline
        area = (win_w - 2) * (win_h - 2)
        n0_valid, n0_phase, n0_i = Signal(), data_reg(), data_reg(COORD_BITS)
        n0_x = data_reg(COORD_BITS)
        # Registered from `wy_slot`, which is stable from ROW_END through ROWS, NF and the
        # windows.
        top_slot, bot_slot = data_reg(self.ring_bits), data_reg(self.ring_bits)
        row_slot, row_slot_wrap = data_reg(self.ring_bits), data_reg(signed(self.ring_bits + 1))
        m.d.sync += [top_slot.eq(slot_add(wy_slot, stride)),
                     bot_slot.eq(slot_add(wy_slot, (win_h - 1) * stride)),
                     row_slot.eq(wy_slot),
                     row_slot_wrap.eq(wy_slot - ring_size)]
        # N0A: the corner addresses registered before the ring (and its transparency compare).
        n0a_valid, n0a_phase, n0a_i = Signal(), data_reg(), data_reg(COORD_BITS)
        nf_addr_a, nf_addr_b = data_reg(self.ring_bits), data_reg(self.ring_bits)
        m.d.sync += [n0a_valid.eq(n0_valid), n0a_phase.eq(n0_phase), n0a_i.eq(n0_i),
                     nf_addr_a.eq(Mux(n0_phase, bot_slot, top_slot) + n0_x + 1),
                     nf_addr_b.eq(Mux(n0_phase, bot_slot, top_slot) + n0_x + win_w - 1)]
        # N0B: the ring's blocks register the addresses (`early`).
        n0b_valid, n0b_phase, n0b_i = Signal(), data_reg(), data_reg(COORD_BITS)
        m.d.sync += [n0b_valid.eq(n0a_valid), n0b_phase.eq(n0a_phase), n0b_i.eq(n0a_i)]
        n1_valid, n1_phase, n1_i = Signal(), data_reg(), data_reg(COORD_BITS)
        m.d.sync += [n1_valid.eq(n0b_valid), n1_phase.eq(n0b_phase), n1_i.eq(n0b_i)]
        n1s_valid, n1s_phase, n1s_i = Signal(), data_reg(), data_reg(COORD_BITS)
        m.d.sync += [n1s_valid.eq(n1_valid), n1s_phase.eq(n1_phase), n1s_i.eq(n1_i)]
        # N1B: the four ring outputs, selected among the blocks, registered before any
        # arithmetic (timing).
        n1b_valid, n1b_phase, n1b_i = Signal(), data_reg(), data_reg(COORD_BITS)
        ra_s, rb_s = data_reg(SUM_BITS), data_reg(SUM_BITS)
        ra_q, rb_q = data_reg(SQSUM_BITS), data_reg(SQSUM_BITS)
        m.d.sync += [n1b_valid.eq(n1s_valid), n1b_phase.eq(n1s_phase), n1b_i.eq(n1s_i),
                     ra_s.eq(rs_a), rb_s.eq(rs_b), ra_q.eq(rq_a), rb_q.eq(rq_b)]
        tl_s, tr_s, tl_q, tr_q = (data_reg(SUM_BITS), data_reg(SUM_BITS), data_reg(SQSUM_BITS),
                                  data_reg(SQSUM_BITS))
        n2_valid, n2_i = Signal(), data_reg(COORD_BITS)
        s_win, q_win = data_reg(SUM_BITS), data_reg(SQSUM_BITS)
        m.d.sync += n2_valid.eq(0)
        with m.If(n1b_valid & ~n1b_phase):
            m.d.sync += [tl_s.eq(ra_s), tr_s.eq(rb_s), tl_q.eq(ra_q), tr_q.eq(rb_q)]
        with m.If(n1b_valid & n1b_phase):
            m.d.sync += [n2_valid.eq(1), n2_i.eq(n1b_i),
                         s_win.eq((tl_s - tr_s - ra_s + rb_s)[:SUM_BITS]),
                         q_win.eq((tl_q - tr_q - ra_q + rb_q)[:SQSUM_BITS])]
        # N2 -> N2P: the products in parts of at most 17 x 17 bits (one DSP each), registered
        # beside the DSPs; N2P -> N3: the parts added. A whole product (its DSPs, their
        # routing and the adder joining them) in one clock was the whole top's worst path
        # (q_win * area, 16.2 ns at 9879231).
        lo = DSP_PART_BITS
        n2p_valid, n2p_i = Signal(), data_reg(COORD_BITS)
        aq_lo, aq_hi = data_reg(lo + _bits(area)), data_reg(SQSUM_BITS - lo + _bits(area))
        ss_ll, ss_lh, ss_hh = (data_reg(2 * lo), data_reg(SUM_BITS + 1),
                               data_reg(2 * (SUM_BITS - lo)))
        s_lo, s_hi = s_win[:lo], s_win[lo:]
        m.d.sync += [n2p_valid.eq(n2_valid), n2p_i.eq(n2_i),
                     aq_lo.eq(q_win[:lo] * area), aq_hi.eq(q_win[lo:] * area),
                     ss_ll.eq(s_lo * s_lo), ss_lh.eq(s_lo * s_hi), ss_hh.eq(s_hi * s_hi)]
        n3_valid, n3_i = Signal(), data_reg(COORD_BITS)
        aq, ss = data_reg(SQSUM_BITS + _bits(area)), data_reg(2 * SUM_BITS)
        # s * s = ll + 2 lh 2^17 + hh 2^34, and ll < 2^34: ll and hh side by side, one adder.
        m.d.sync += [n3_valid.eq(n2p_valid), n3_i.eq(n2p_i), aq.eq(aq_lo + (aq_hi << lo)),
                     ss.eq(Cat(ss_ll, ss_hh) + (ss_lh << (lo + 1)))]
        # Restoring integer square root, one result bit per stage.
        sq_valid = [Signal(name=f"sq{k}_valid") for k in range(ISQRT_STAGES + 1)]
        sq_i = [data_reg(COORD_BITS, name=f"sq{k}_i") for k in range(ISQRT_STAGES + 1)]
        sq_rem = [data_reg(ISQRT_IN_BITS + 1, name=f"sq{k}_rem") for k in range(ISQRT_STAGES + 1)]
        sq_res = [data_reg(ISQRT_IN_BITS + 1, name=f"sq{k}_res") for k in range(ISQRT_STAGES + 1)]
        m.d.sync += [sq_valid[0].eq(n3_valid), sq_i[0].eq(n3_i),
                     sq_rem[0].eq((aq - ss)[:ISQRT_IN_BITS]), sq_res[0].eq(0)]
        for k in range(ISQRT_STAGES):
            bit = 1 << (ISQRT_IN_BITS - 2 - 2 * k)
            trial = sq_res[k] + bit
            take = sq_rem[k] >= trial
            m.d.sync += [sq_valid[k + 1].eq(sq_valid[k]), sq_i[k + 1].eq(sq_i[k]),
                         sq_rem[k + 1].eq(Mux(take, sq_rem[k] - trial, sq_rem[k])),
                         sq_res[k + 1].eq(Mux(take, (sq_res[k] >> 1) + bit, sq_res[k] >> 1))]
        nf_val = sq_res[ISQRT_STAGES][:NF_BITS]
        nf_done = Signal(COORD_BITS + 1)      # nf values written for this row
        m.d.comb += [nf_w.addr.eq(sq_i[-1]), nf_w.data.eq(Mux(nf_val == 0, 1, nf_val)),
                     nf_w.en.eq(sq_valid[-1])]
        with m.If(sq_valid[-1]):
            m.d.sync += nf_done.eq(sq_i[-1] + 1)

        # ---------------------------------------------------------- evaluation pipeline
        pair_layout = data.StructLayout({
            "off": data.ArrayLayout(self.ring_bits, K),
            "w": data.ArrayLayout(signed(WEIGHT_BITS), K),
            "last": 1, "wait": 1, "node": _bits(len(prog.nodes))})
        pair_bits = _bits(len(prog.pairs))
        child_layout = data.StructLayout({"is_leaf": 1, "leaf": signed(LEAF_BITS),
                                          "pair": pair_bits})
        node_layout = data.StructLayout({"thr": signed(THRESH_BITS), "left": child_layout,
                                         "right": child_layout, "resume": pair_bits})

        def kid(k):
            return {"is_leaf": k[0], "leaf": k[1], "pair": k[2]}

        pair_init = [{"off": list(p[0]), "w": list(p[1]), "last": p[2], "wait": p[3],
                      "node": p[4]} for p in prog.pairs]
        node_init = [{"thr": n[0], "left": kid(n[1]), "right": kid(n[2]), "resume": n[3]}
                     for n in prog.nodes]
        st_count = Array(Const(s[2], 12) for s in prog.stages)
        st_thr = Array(Const(s[3], signed(STAGE_BITS)) for s in prog.stages)

        # Stages are laid out one after the other (each starts where the one before ends), so
        # the sequencer streams a window's program from stage 0 on without waiting for any
        # stage's verdict (speculation): a rejecting verdict flushes the groups issued behind
        # it. `stage` is the stage whose leaves are being summed, not the one being issued.
        assert all(a[1] == b[0] for a, b in zip(prog.stages, prog.stages[1:]))
        prog_end = prog.stages[-1][1]
        stage = Signal(self.stage_bits)
        # The stage's constants, loaded with `stage` (no table lookup on the sequencer's or
        # the verdict's path: timing).
        stage_last_leaf = Signal(12)          # its weak classifier count - 1
        stage_count = Signal(12)
        pair_addr = Signal(pair_bits + 1)
        hold = Signal()                       # waiting for a tree node's comparison
        origin = data_reg(self.ring_bits)
        origin_wrap = data_reg(signed(self.ring_bits + 1))   # origin - ring_size
        nf = data_reg(NF_BITS)
        # E0: issue
        issue = Signal()
        e1_valid = Signal()
        m.d.sync += e1_valid.eq(issue)
        # E1S: the program is split by address into ROMs one block RAM deep
        # (PROG_SUB_DEPTH entries) whose outputs are registered; E1R selects among them. A
        # DP16KD's clock-to-out, the routing across dozens of them and their multiplexer do
        # not fit one clock. A tree node's last group stops the sequencer at E1R (`kill`) and
        # cancels the two groups issued behind it; the node's comparison says where to go on.
        e1r = data_reg(pair_layout)
        e1r_valid = Signal()
        kill = e1r_valid & e1r.last & e1r.wait
        # The word is selected K + 1 times, by copies of the block select: once for E1R, once
        # for each corner address (one select net into all of them, then the address adders,
        # was a seed's worst path at 65e579a).
        ((prog_word, *prog_off),), _ = _block_split(
            m, "pair_rom", pair_layout, len(pair_init), PROG_SUB_DEPTH, [pair_addr],
            init=pair_init, selects=K + 1)
        e1s_valid = Signal()
        m.d.sync += [e1s_valid.eq(e1_valid & ~kill), e1r_valid.eq(e1s_valid & ~kill),
                     e1r.eq(prog_word)]
        # E1R: corner addresses from the selected program word, registered; E1A: the ring's
        # blocks register them (`early`) and read. (From E1R's `e1r`, with the ring's blocks
        # reading at `ea` itself, one net carried each address to every block: 10.4 ns.)
        ea = [data_reg(self.ring_bits, name=f"ea{k}") for k in range(K)]
        e1a_valid, e1a_last, e1a_wait = Signal(), data_reg(), data_reg()
        e1a_w = data_reg(data.ArrayLayout(signed(WEIGHT_BITS), K))
        e1a_node = Signal.like(e1r.node)
        m.d.sync += [e1a_valid.eq(e1r_valid), e1a_last.eq(e1r.last), e1a_wait.eq(e1r.wait),
                     e1a_w.eq(e1r.w), e1a_node.eq(e1r.node)]
        # Both sums in parallel, then a select on the sign: one carry chain deep.
        for k, a in enumerate(ea):
            wrapped = origin_wrap + prog_off[k].off[k]
            m.d.sync += a.eq(Mux(wrapped < 0, origin + prog_off[k].off[k],
                                 wrapped[:self.ring_bits]))
        eval_addr_a, eval_addr_b = ea[0], ea[1]
        m.d.comb += [ring_addr[k].eq(ea[k]) for k in range(3, K, 2)]
        # The node ROM, split like the program: read at E2, its blocks registered at E2S.
        (node_word,), _ = _block_split(m, "node_rom", node_layout, len(node_init),
                                       PROG_SUB_DEPTH, [e1a_node], init=node_init)
        # E2: ring and node ROM data arrive
        e2_valid = Signal()
        e2_w = data_reg(data.ArrayLayout(signed(WEIGHT_BITS), K))
        e2_last, e2_wait = data_reg(), data_reg()
        m.d.sync += [e2_valid.eq(e1a_valid), e2_w.eq(e1a_w),
                     e2_last.eq(e1a_last), e2_wait.eq(e1a_wait)]
        # E2S: the ring's and the node ROM's blocks registered (block RAM clock-to-out and the
        # output multiplexer of a memory split over several block RAMs fill a clock).
        e2s_valid, e2s_last, e2s_wait = Signal(), data_reg(), data_reg()
        e2s_w = data_reg(data.ArrayLayout(signed(WEIGHT_BITS), K))
        m.d.sync += [e2s_valid.eq(e2_valid), e2s_last.eq(e2_last), e2s_wait.eq(e2_wait),
                     e2s_w.eq(e2_w)]
        # E2R: the corners selected among the ring's blocks, registered.
        values = [rs_a, rs_b] + list(rs_more)
        e2r = [data_reg(SUM_BITS, name=f"e2r_v{k}") for k in range(K)]
        e2r_valid, e2r_last, e2r_wait = Signal(), data_reg(), data_reg()
        e2r_w = data_reg(data.ArrayLayout(signed(WEIGHT_BITS), K))
        e2r_node = data_reg(node_layout)
        m.d.sync += [e2r_valid.eq(e2s_valid), e2r_last.eq(e2s_last), e2r_wait.eq(e2s_wait),
                     e2r_w.eq(e2s_w), e2r_node.eq(node_word)]
        m.d.sync += [r.eq(v) for r, v in zip(e2r, values)]
        # E2P: weighted corners (weights -4..4), modulo 2**SUM_BITS.
        e2p = [data_reg(SUM_BITS, name=f"e2p_p{k}") for k in range(K)]
        e2p_valid, e2p_last, e2p_wait = Signal(), data_reg(), data_reg()
        e2p_node = data_reg(node_layout)
        m.d.sync += [e2p_valid.eq(e2r_valid), e2p_last.eq(e2r_last), e2p_wait.eq(e2r_wait),
                     e2p_node.eq(e2r_node)]
        m.d.sync += [p.eq((v * e2r_w[k])[:SUM_BITS]) for k, (p, v) in enumerate(zip(e2p, e2r))]
        # E2Q (groups of more than 4 corners): pairs of products summed, registered, so the
        # running sum below adds at most four terms in a clock, as with groups of 4.
        if K > 4:
            e2q = [data_reg(SUM_BITS, name=f"e2q_p{k}") for k in range(K // 2)]
            e2q_valid, e2q_last, e2q_wait = Signal(), data_reg(), data_reg()
            e2q_node = data_reg(node_layout)
            m.d.sync += [e2q_valid.eq(e2p_valid), e2q_last.eq(e2p_last),
                         e2q_wait.eq(e2p_wait), e2q_node.eq(e2p_node)]
            m.d.sync += [q.eq((e2p[2 * k] + e2p[2 * k + 1])[:SUM_BITS])
                         for k, q in enumerate(e2q)]
            terms, t_valid, t_last, t_wait, t_node = e2q, e2q_valid, e2q_last, e2q_wait, e2q_node
        else:
            terms, t_valid, t_last, t_wait, t_node = e2p, e2p_valid, e2p_last, e2p_wait, e2p_node
        # E2S: the node's running sum.
        fresh = Signal(init=1)                # the next group starts a node
        acc = data_reg(SUM_BITS)
        part = sum(terms)[:SUM_BITS]
        acc_new = (Mux(fresh, 0, acc) + part)[:SUM_BITS]
        e3_valid, e3_wait = Signal(), data_reg()
        fsum = data_reg(signed(SUM_BITS))
        e3_node = data_reg(node_layout)
        m.d.sync += e3_valid.eq(0)
        with m.If(t_valid):
            m.d.sync += [acc.eq(acc_new), fresh.eq(t_last)]
            with m.If(t_last):
                m.d.sync += [e3_valid.eq(1), e3_wait.eq(t_wait), fsum.eq(acc_new),
                             e3_node.eq(t_node)]
        # E3: the two sides of `fsum * 2**NODE_FRAC < t_q * nf`, the right one in two products
        # that each fit one DSP (t_q = hi * 2**17 + lo, lo unsigned), registered beside them:
        # a 22 x 18 product spans several DSPs joined by an adder.
        lo = DSP_PART_BITS
        e4_valid, e4_wait = Signal(), data_reg()
        lhs = data_reg(signed(SUM_BITS + NODE_FRAC))
        rhs_lo = data_reg(lo + NF_BITS)
        rhs_hi = data_reg(signed(THRESH_BITS - lo + NF_BITS + 1))
        e4_node = data_reg(node_layout)
        m.d.sync += [e4_valid.eq(e3_valid), e4_wait.eq(e3_wait), e4_node.eq(e3_node),
                     lhs.eq(fsum << NODE_FRAC), rhs_lo.eq(e3_node.thr[:lo] * nf),
                     rhs_hi.eq(e3_node.thr[lo:].as_signed() * nf)]
        # E4: the comparison, registered: its carry chain (40 bits) and the stage sum's
        # select below, across the engine, did not fit one clock (the detector's worst path).
        # lhs < hi * nf * 2**17 + lo * nf, as lhs - hi * nf * 2**17 < lo * nf.
        e5_valid, e5_wait, lt = Signal(), data_reg(), data_reg()
        e5_node = data_reg(node_layout)
        m.d.sync += [e5_valid.eq(e4_valid), e5_wait.eq(e4_wait), e5_node.eq(e4_node),
                     lt.eq((lhs - (rhs_hi << lo)) < rhs_lo)]
        # E5: choose the child
        child = Signal(child_layout)
        m.d.comb += child.eq(Mux(lt, e5_node.left, e5_node.right))
        leaf_event = e5_valid & child.is_leaf
        tree_event = e5_valid & e5_wait
        tree_target = Mux(child.is_leaf, e5_node.resume, child.pair)
        # Each stage's sum starts at minus (its threshold + the threshold offset), so the
        # stage passes when the sum's sign bit is clear: the verdict is a register, with no
        # comparison (a 30-bit carry chain) in front of the sequencer's and the FSM's enables.
        # One bit wider than a sum or a threshold, so the difference cannot wrap.
        stage_sum = Signal(signed(STAGE_BITS + 1))
        sum_init = Signal(signed(STAGE_BITS))          # minus the offset, per analysis
        # Stage starts per window: stage 0's and stage 1's sums, formed once per analysis;
        # `init_next` the start of the stage after the current one, formed a clock after a
        # stage is entered from `thr_after` (the threshold two stages on): every stage has
        # at least two weak classifiers (`cascade_program` checks), so it is ready before
        # the stage's last leaf.
        init0, init1, init_next = (Signal(signed(STAGE_BITS + 1), name=n)
                                   for n in ("init0", "init1", "init_next"))
        thr_after = Signal(signed(STAGE_BITS))
        load_next = Signal()
        m.d.sync += load_next.eq(0)
        with m.If(load_next):
            m.d.sync += init_next.eq(sum_init - thr_after)
        leaves = Signal(12)
        # A stage's verdict registered at its last leaf (the next stage's leaves may follow
        # at once): passed, and whether the window ends there (rejected, or the last stage).
        fin_valid, fin_stage = Signal(), Signal(self.stage_bits)
        fin_pass, fin_end = Signal(), Signal()
        m.d.sync += fin_valid.eq(0)
        # Timing: both possible sums are formed and the registered comparison picks one
        # (carry select), so the select does not wait for the adder's carry chain.
        # `keep` stops Yosys from sharing the two adders behind a multiplexer again.
        sum_left = Signal(signed(STAGE_BITS + 1), attrs={"keep": 1})
        sum_right = Signal(signed(STAGE_BITS + 1), attrs={"keep": 1})
        m.d.comb += [sum_left.eq(stage_sum + e5_node.left.leaf),
                     sum_right.eq(stage_sum + e5_node.right.leaf)]
        new_sum = Mux(lt, sum_left, sum_right)
        new_pass = ~new_sum[-1]
        with m.If(leaf_event):
            with m.If(leaves == stage_last_leaf):
                m.d.sync += [fin_valid.eq(1), fin_pass.eq(new_pass),
                             fin_end.eq(~new_pass | (stage == prog.num_stages - 1)),
                             fin_stage.eq(stage), stage_sum.eq(init_next), leaves.eq(0),
                             stage.eq(stage + 1), load_next.eq(1)]
                for k in range(1, prog.num_stages):
                    with m.If(stage == k - 1):
                        m.d.sync += [stage_last_leaf.eq(st_count[k].value - 1),
                                     stage_count.eq(st_count[k].value)]
                        if k + 1 < prog.num_stages:
                            m.d.sync += thr_after.eq(st_thr[k + 1].value)
            with m.Else():
                m.d.sync += [stage_sum.eq(new_sum), leaves.eq(leaves + 1)]
        verdict = fin_valid
        passed = fin_pass

        # ---------------------------------------------------------- address muxing of port A/B
        phase = Signal(2)                     # 0 rows, 1 nf, 2 eval
        m.d.comb += [
            ring_addr_a.eq(Mux(phase == 0, row_waddr, Mux(phase == 1, nf_addr_a, eval_addr_a))),
            ring_addr_b.eq(Mux(phase == 1, nf_addr_b, eval_addr_b)),
            row_write.eq(phase == 0),
        ]
        m.d.comb += [ring_addr[k].eq(Mux(phase == 0, row_waddr, ea[k])) for k in range(2, K, 2)]

        # ---------------------------------------------------------- control FSM
        wx = Signal(COORD_BITS)
        wx_idx = Signal(COORD_BITS)
        skip = Signal()
        m.d.sync += [self.trace_valid.eq(0), self.raw_valid.eq(0)]
        m.d.comb += issue.eq(0)
        # The weak-classifier counter adds a stage's count the clock after the stage is
        # loaded, from `stage_count` (a register), not from the next stage's table entry in
        # the same clock (the next stage's index, its lookup and a 32-bit adder in series were
        # the deepest path of the whole top, 11.1 LUT levels).
        count_stage = Signal()
        count_val = data_reg(12)
        m.d.sync += [count_stage.eq(0), count_val.eq(stage_count)]
        with m.If(count_stage):
            m.d.sync += self.weak.eq(self.weak + count_val)
        # A finished window's speculative groups, flushed from every stage of the pipeline.
        flush = Signal()
        pipe_valids = [e1_valid, e1s_valid, e1r_valid, e1a_valid, e2_valid, e2s_valid,
                       e2r_valid, e2p_valid, e3_valid, e4_valid, e5_valid, fin_valid]
        if K > 4:
            pipe_valids.append(e2q_valid)
        with m.FSM(name="engine") as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [buf.eq(self.start_buf), level.eq(0), self.windows.eq(0),
                                 self.weak.eq(0),
                                 sum_init.eq(-(self.thr_offset << THRESHOLD_OFFSET_SHIFT)),
                                 *load_level(0)]
                    m.next = "LEVEL"
            with m.State("LEVEL"):
                m.d.sync += [wy.eq(0), need.eq(win_h + 1), wy_idx.eq(0), rows_issued.eq(0),
                             rows_done.eq(0),
                             issue_slot.eq(0), wy_slot.eq(0),
                             r0_b.eq(0), sx.eq(c_l), sy.eq(c_l), phase.eq(0),
                             init0.eq(sum_init - st_thr[0].value)]
                if prog.num_stages > 1:
                    m.d.sync += init1.eq(sum_init - st_thr[1].value)
                m.next = "ROWS"
            with m.State("ROWS"):
                # Issue integral rows up to wy + win_h, then wait for the last write.
                with m.If(rows_issued < need):
                    m.d.comb += r0_valid.eq(1)
                    m.d.comb += r0_row.eq(rows_issued)
                    with m.If(r0_b == 0):
                        m.d.sync += [row_sy.eq(sy), Cat(*base_row).eq(Cat(*base_s)),
                                     y_par.eq(y_par_s)]
                    m.d.sync += [sx.eq(sx_next), *clamp_pair(sx_next, self.base_w, ix, ix1)]
                    # Row r + 1 starts from sy + f (rows 0 and 1 both from c: row 0 is zeros).
                    with m.If((r0_b == 1) & (rows_issued != 0)):
                        m.d.sync += sy.eq(sy + f_l)
                    with m.If(r0_b == ws_l):
                        m.d.sync += [r0_b.eq(0), rows_issued.eq(rows_issued + 1),
                                     issue_slot.eq(slot_add(issue_slot, stride))]
                    with m.Else():
                        m.d.sync += r0_b.eq(r0_b + 1)
                with m.Elif(rows_done >= need):
                    m.d.sync += [phase.eq(1), n0_i.eq(0), n0_x.eq(0), n0_phase.eq(0),
                                 nf_done.eq(0)]
                    m.next = "NF"
            with m.State("NF"):
                with m.If(n0_i < nwx_l):
                    m.d.comb += n0_valid.eq(1)
                    m.d.sync += n0_phase.eq(~n0_phase)
                    with m.If(n0_phase):
                        m.d.sync += [n0_i.eq(n0_i + 1), n0_x.eq(n0_x + step_l)]
                with m.Elif(nf_done == nwx_l):
                    m.d.sync += [phase.eq(2), wx.eq(0), wx_idx.eq(0), skip.eq(0)]
                    m.next = "WINDOW"
            with m.State("WINDOW"):
                m.d.comb += nf_r.addr.eq(wx_idx)
                with m.If(wx_idx == nwx_l):
                    m.next = "ROW_END"
                with m.Elif(skip):
                    m.d.sync += [skip.eq(0), wx.eq(wx + step_l), wx_idx.eq(wx_idx + 1)]
                with m.Elif(self.raw_ready):
                    m.next = "WINDOW_NF"
            with m.State("WINDOW_NF"):
                m.d.sync += [nf.eq(nf_r.data), stage.eq(0), pair_addr.eq(prog.stages[0][0]),
                             stage_last_leaf.eq(st_count[0].value - 1),
                             stage_count.eq(st_count[0]), stage_sum.eq(init0),
                             init_next.eq(init1), load_next.eq(0), leaves.eq(0), hold.eq(0),
                             fresh.eq(1), fin_valid.eq(0),
                             origin.eq(row_slot + wx),
                             origin_wrap.eq(row_slot_wrap + wx),
                             self.windows.eq(self.windows + 1), count_stage.eq(1),
                             count_val.eq(st_count[0])]
                m.next = "EVAL"
            with m.State("EVAL"):
                with m.If(verdict & fin_end):
                    m.d.comb += flush.eq(1)
                    m.d.sync += [self.trace_valid.eq(1), self.trace_level.eq(level),
                                 self.trace_x.eq(wx), self.trace_y.eq(wy),
                                 self.trace_stages.eq(fin_stage + passed),
                                 skip.eq((fin_stage == 0) & ~passed),
                                 wx.eq(wx + step_l), wx_idx.eq(wx_idx + 1)]
                    with m.If(passed):
                        m.d.sync += [self.raw_valid.eq(1), self.raw_level.eq(level),
                                     self.raw_x.eq(wx), self.raw_y.eq(wy)]
                    m.next = "WINDOW"
                with m.Else():
                    with m.If(verdict):
                        # The next stage is entered: its weak classifiers count (its count
                        # is in `stage_count` now, `count_val` a clock later).
                        m.d.sync += count_stage.eq(1)
                    with m.If(tree_event):
                        m.d.sync += [pair_addr.eq(tree_target), hold.eq(0)]
                    with m.Elif(~hold & ~kill & (pair_addr < prog_end)):
                        m.d.comb += issue.eq(1)
                        m.d.sync += pair_addr.eq(pair_addr + 1)
                    with m.If(kill):
                        m.d.sync += hold.eq(1)
            with m.State("ROW_END"):
                with m.If(wy_idx + 1 < nwy_l):
                    m.d.sync += [wy.eq(wy + step_l), need.eq(need + step_l),
                                 wy_idx.eq(wy_idx + 1), phase.eq(0),
                                 wy_slot.eq(slot_add(wy_slot, lvr["step_stride"]))]
                    m.next = "ROWS"
                with m.Elif(level + 1 < nlev):
                    m.d.sync += [level.eq(level + 1), *load_level(level + 1)]
                    m.next = "LEVEL"
                with m.Else():
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
        with m.If(flush):
            m.d.sync += [v.eq(0) for v in pipe_valids]
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        return m

