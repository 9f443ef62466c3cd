"""Window grouping in hardware: `detector_model.group`, step for step.

Raw windows (x, y, w, h in base pixels, scan order) are clustered as they arrive: each is
compared with the clusters' seeds one per clock and joins the first similar one, or opens a
cluster (at most `max_clusters`, the rest counted as overflow). When the analysis is finished:
rounded means (a shared 4-lane restoring divider), the pairwise merge pass with relabelling to
the lowest index, merged means, OpenCV's inside rule, and the boxes out in label order.
With `min_neighbors` = 0 the raw windows go straight out, as OpenCV does. An abandoned frame
is cleared by resetting the block (the detector wraps it in a `ResetInserter`).
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from .data_reg import copy_of, data_reg
from .types import COORD_BITS

__all__ = ["Grouper", "Rect"]

#: Members per cluster are counted in COUNT_BITS (a 1280 x 720 frame visits < 2**18 windows).
COUNT_BITS = 18
SUM_BITS = COORD_BITS + COUNT_BITS
DIV_BITS = SUM_BITS + 2


class Rect(data.Struct):
    x: COORD_BITS
    y: COORD_BITS
    w: COORD_BITS
    h: COORD_BITS


def _absdiff(a, b):
    return Mux(a > b, a - b, b - a)


#: OpenCV's SimilarRects in two clocks (timing): the four distances and the limit,
#: registered, then the distances times 10 compared with the limit (times 10 in the first clock
#: made it three carry chains behind the rectangle registers: the detector's worst path once
#: the merged sums' address was a register).
SimParts = data.StructLayout({"d": data.ArrayLayout(COORD_BITS + 1, 4), "lim": COORD_BITS + 1})


def similar_parts(target, a, b):
    """First clock of OpenCV's SimilarRects (eps = 0.2, as `detector_model._similar`): the
    statements that load `target`, a `SimParts` register."""
    dists = (_absdiff(a.x, b.x), _absdiff(a.y, b.y), _absdiff(a.x + a.w, b.x + b.w),
             _absdiff(a.y + a.h, b.y + b.h))
    return [*(target.d[k].eq(v) for k, v in enumerate(dists)),
            target.lim.eq(Mux(a.w < b.w, a.w, b.w) + Mux(a.h < b.h, a.h, b.h))]


def similar(parts):
    """Second clock: whether the rectangles of a registered `SimParts` are similar (each
    distance times 10 within the limit)."""
    def times10(v):              # one adder, not a multiplier block (timing)
        return (v << 3) + (v << 1)
    return Cat(times10(parts.d[k]) <= parts.lim for k in range(4)).all()


def _div10(v, bits):
    """floor(v / 10) by a multiply, exact for every v < 2**bits (checked here)."""
    assert bits <= 14 and all((n * 6554) >> 16 == n // 10 for n in range(1 << bits))
    return (v * 6554) >> 16


class Grouper(wiring.Component):
    """Ports: `raw` stream of `Rect` in scan order; `raw_room`: room for two more raw windows
    (a producer that checks before it starts a window may have one more in flight); `finish`
    (the analysis has ended, group now); `boxes` stream of `Rect` out; `done` pulse after the
    last box; `busy`; `overflow` raw windows that found no free cluster this frame;
    `min_neighbors`."""

    def __init__(self, max_clusters=128, lut_ram=False):
        self.max_clusters, self.lut_ram = max_clusters, lut_ram
        super().__init__({
            "raw": In(stream.Signature(Rect)), "raw_room": Out(1), "finish": In(1),
            "boxes": Out(stream.Signature(Rect)), "done": Out(1), "busy": Out(1),
            "overflow": Out(16), "min_neighbors": In(8),
        })

    def elaborate(self, platform):
        m = Module()
        nmax = self.max_clusters
        ib = max(1, (nmax - 1).bit_length())
        sums_layout = data.StructLayout({"x": SUM_BITS, "y": SUM_BITS, "w": SUM_BITS,
                                         "h": SUM_BITS, "n": COUNT_BITS})
        cl_layout = data.StructLayout({"r": Rect, "n": COUNT_BITS})

        m.submodules.fifo = fifo = SyncFIFOBuffered(width=Rect.as_shape().size, depth=16)
        m.d.comb += [fifo.w_data.eq(self.raw.payload), fifo.w_en.eq(self.raw.valid),
                     self.raw.ready.eq(fifo.w_rdy), self.raw_room.eq(fifo.level < fifo.depth - 1)]
        r = data_reg(Rect)
        # `hold`: the FIFO's next window, read whenever the place is free: the FIFO's read
        # enable comes from a register and the FIFO's own state, not from the FSM (the state
        # decoded into the FIFO's read side was the whole top's worst path at c7505c4, seed 1:
        # 13.5 ns, 12.0 of routing).
        hold, hold_valid = data_reg(Rect), Signal()
        m.d.comb += fifo.r_en.eq(fifo.r_rdy & ~hold_valid)
        with m.If(fifo.r_en):
            m.d.sync += [hold.eq(fifo.r_data), hold_valid.eq(1)]

        # `lut_ram`: as block RAM these shallow memories take 2-4 DP16KD each (20 in all); as
        # LUT RAM ~6,200 LUT4 and 1,260 DPR16X4, which spread the detector out (at 320x240 it
        # placed at 78.2 MHz with block RAM, 67.9 with LUT RAM, two commits apart; the routed
        # board's worst path was that LUT RAM's read address). The ULX3S board builds them so:
        # with them in block RAM it did not route (`BOARD_GROUPER_LUT_RAM`).
        attrs = {"ram_style": "distributed"} if self.lut_ram else None

        def mem(name, shape, nread):
            mm = memory.Memory(shape=shape, depth=nmax, init=[], attrs=attrs)
            m.submodules[name] = mm
            return mm.write_port(), [mm.read_port() for _ in range(nread)]

        seed_w, (seed_a, seed_b) = mem("seeds", Rect, 2)
        acc_w, (acc_r,) = mem("sums", sums_layout, 1)
        mean_w, (mean_a, mean_b) = mem("means", Rect, 2)
        lab_w, (lab_a, lab_b, lab_c) = mem("labels", ib, 3)
        msum_w, (msum_r,) = mem("merged", sums_layout, 1)
        cl_w, (cl_a, cl_b) = mem("clusters", cl_layout, 2)

        n = Signal(range(nmax + 1))           # clusters
        nc = Signal(range(nmax + 1))          # merged clusters
        i = Signal(range(nmax + 1))
        j = Signal(range(nmax + 1))
        idx = Signal(range(nmax + 1))
        # `i` and `j` address four LUT RAMs each (seeds, means, labels, clusters), spread over
        # the chip: each RAM reads at a copy of its own, loaded with the same statements (`j`
        # into a far LUT RAM's read address was a seed's worst path at 4585ac2, 10.1 ns of
        # routing). `i`, `j` themselves drive the comparisons.
        i_at = {k: copy_of(i, f"i_{k}") for k in ("seeds", "means", "labels", "clusters")}
        j_at = {k: copy_of(j, f"j_{k}") for k in ("seeds", "means", "labels", "clusters")}

        def set_i(fn):
            """`i` and its copies each load `fn` of themselves (`set_j` likewise)."""
            return [r.eq(fn(r)) for r in (i, *i_at.values())]

        def set_j(fn):
            return [r.eq(fn(r)) for r in (j, *j_at.values())]
        # Data registers have no reset (`data_reg`): the abort's reset reaches only the
        # counters, valid bits, enables and the state (each is loaded before it is used).
        lo, hi = data_reg(ib, name="lo"), data_reg(ib, name="hi")
        lab_k = data_reg(ib)                  # the merged sums' address (read and write)
        p_la, p_lb = data_reg(ib, name="p_la"), data_reg(ib, name="p_lb")
        p_sim_s, p_sim_m = data_reg(name="p_sim_s"), data_reg(name="p_sim_m")
        p_sa, p_sb, p_ma, p_mb = (data_reg(Rect, name=f"p_{n}") for n in ["sa", "sb", "ma", "mb"])
        p_parts_s = data_reg(SimParts)
        p_parts_m = data_reg(SimParts)
        c1, c2 = data_reg(cl_layout, name="c1"), data_reg(cl_layout, name="c2")
        dx, dy = data_reg(COORD_BITS, name="dx"), data_reg(COORD_BITS, name="dy")  # margins
        acc_d = data_reg(sums_layout)         # a sums record read, registered
        sum_q = data_reg(sums_layout)         # a sums record to write, registered
        own = data_reg(sums_layout)           # a cluster's own sums (merge), its merged sums
        out_q = data_reg()                    # the inside rule's verdict: not emitted
        # The box out: one register for both ways out (PASS, EMIT), loaded on the way in (a
        # multiplexer of `r` and this register on the state was a seed's worst path at
        # 2a7ab77: the state's decode through the detector's scaling into its output FIFO).
        emit_r = data_reg(Rect)
        m.d.comb += self.boxes.payload.eq(emit_r)

        def add_sums(a, b, b_n):
            """`sum_q` loads a + b field by field, with a.n + b_n members."""
            return [*(getattr(sum_q, f).eq(getattr(a, f) + getattr(b, f)) for f in "xywh"),
                    sum_q.n.eq(a.n + b_n)]
        finished = Signal()
        with m.If(self.finish):
            m.d.sync += finished.eq(1)

        # A 4-lane restoring divider for the rounded means (2 t + n) // (2 n).
        div_start = Signal()
        div_busy = Signal()
        div_num = [data_reg(DIV_BITS, name=f"div_num{k}") for k in range(4)]
        div_rem = [data_reg(COUNT_BITS + 2, name=f"div_rem{k}") for k in range(4)]
        div_q = [data_reg(DIV_BITS, name=f"div_q{k}") for k in range(4)]
        div_den = data_reg(COUNT_BITS + 1)
        div_cnt = Signal(range(DIV_BITS + 1))
        # The sums come from memory: registered every clock (the means' sums, or the merged
        # ones once `div_merged`) and loaded a clock after `div_start` (`div_load`). Only
        # registers drive the divider's enables: `div_start` decoded from the state and a
        # label comparison was the detector's worst routed path into all of them.
        # `div_merged`: the divider's source is the merged sums (final pass), registered every
        # clock from the state (below the FSM), one clock ahead of `div_start`'s. Loaded only on
        # the pass's first and last states, its clock enable (the state's decode) was a seed's
        # worst routed path at 3b86138.
        div_merged = Signal()
        div_src_r, div_load = data_reg(sums_layout, name="div_src_r"), Signal()
        m.d.sync += [div_src_r.eq(Mux(div_merged, msum_r.data, acc_r.data)),
                     div_load.eq(div_start)]
        with m.If(div_start):
            m.d.sync += div_busy.eq(1)
        with m.If(div_load):
            m.d.sync += [div_cnt.eq(DIV_BITS), div_den.eq(div_src_r.n << 1)]
            for k, name in enumerate("xywh"):
                m.d.sync += [div_num[k].eq((getattr(div_src_r, name) << 1) + div_src_r.n),
                             div_rem[k].eq(0)]
        with m.Elif(div_busy):
            m.d.sync += div_cnt.eq(div_cnt - 1)
            with m.If(div_cnt == 1):
                m.d.sync += div_busy.eq(0)
            for k in range(4):
                shifted = Cat(div_num[k][-1], div_rem[k])
                take = shifted >= div_den
                m.d.sync += [div_rem[k].eq(Mux(take, shifted - div_den, shifted)),
                             div_num[k].eq(div_num[k] << 1),
                             div_q[k].eq(Cat(take, div_q[k]))]
        div_out = Signal(Rect)
        m.d.comb += [div_out.x.eq(div_q[0]), div_out.y.eq(div_q[1]), div_out.w.eq(div_q[2]),
                     div_out.h.eq(div_q[3])]

        # Read addresses straight from registers, the same in every state (a read has no side
        # effect): an address multiplexed by the state was the detector's worst routed path
        # (the state's decode, then 5.6 ns of routing to the labels' LUT RAM). The merged sums
        # are read and written at `lab_k`, a register: a cluster's label (loaded in MERGE_ACC,
        # read in MERGE_LAB) or, in the final pass, the cluster itself (loaded with idx). A
        # multiplexer of `lab_c.data` and `idx` in front of that LUT RAM was the detector's
        # worst routed path (idx to the multiplexer, then to every cell of the RAM: 12 ns of
        # routing).
        m.d.comb += [seed_a.addr.eq(i_at["seeds"]), seed_b.addr.eq(j_at["seeds"]),
                     mean_a.addr.eq(i_at["means"]), mean_b.addr.eq(j_at["means"]),
                     lab_a.addr.eq(i_at["labels"]), lab_b.addr.eq(j_at["labels"]),
                     lab_c.addr.eq(idx), acc_r.addr.eq(idx), cl_a.addr.eq(i_at["clusters"]),
                     cl_b.addr.eq(j_at["clusters"]),
                     msum_r.addr.eq(lab_k)]
        # Write addresses, data and enables likewise: registers, the same in every state (the
        # LUT RAM write address decoded from the state became the detector's worst routed path
        # once the read side was mended). Each write's state loads them on its way in: NEW's
        # cluster n goes in through `idx` (sums), `lab_wa` (label address) and `lo` (label).
        seed_we, acc_we, lab_we, msum_we, mean_we, cl_we = (
            Signal(name=f"{k}_we") for k in ("seed", "acc", "lab", "msum", "mean", "cl"))
        lab_wa = data_reg(ib)
        # The merged sums' write address: `lab_k` a clock later (it holds from MERGE_ACC to
        # MERGE_WR), a register of its own beside the RAM's write decode (timing: `lab_k` into
        # that decode, beside its read fan-out, was the whole top's worst path at 3b86138).
        msum_wa = data_reg(ib)
        m.d.sync += msum_wa.eq(lab_k)
        m.d.sync += [seed_we.eq(0), acc_we.eq(0), lab_we.eq(0), msum_we.eq(0), mean_we.eq(0),
                     cl_we.eq(0)]
        m.d.comb += [seed_w.addr.eq(n), seed_w.data.eq(r), seed_w.en.eq(seed_we),
                     acc_w.addr.eq(idx), acc_w.data.eq(sum_q), acc_w.en.eq(acc_we),
                     lab_w.addr.eq(lab_wa), lab_w.data.eq(lo), lab_w.en.eq(lab_we),
                     msum_w.addr.eq(msum_wa), msum_w.data.eq(sum_q), msum_w.en.eq(msum_we),
                     mean_w.addr.eq(idx), mean_w.data.eq(div_out), mean_w.en.eq(mean_we),
                     cl_w.addr.eq(nc), cl_w.data.r.eq(div_out), cl_w.data.n.eq(own.n),
                     cl_w.en.eq(cl_we)]

        # The merge pass's pair, a pipeline loaded every clock: the read addresses `i`, `j`
        # hold from PAIR_RD to PAIR_CMP, so in PAIR_CMP `p_sim_s | p_sim_m` is the pair's
        # verdict. Timing: loaded only in their states, these registers took the state's decode
        # as clock enable and were placed far from their logic (the verdict in the whole top's
        # worst path at 6bbb0d1: 4.2 ns of routing into it). The two verdicts (seeds, means) are
        # registers of their own, each beside its parts, ORed in PAIR_CMP: one verdict register
        # from both parts sat far from the means' (c7505c4 seed 2: 13.6 ns, 9.6 of routing).
        # Whether `j` is the last partner of `i` (merge pass) or of the clusters (inside rule),
        # registered likewise: `i`, `j`, `nc` hold from PAIR_RD / IN_RD to the state that acts
        # (`j + 1 == nc` into `j`'s clock enable was a worst path on a seed at 997c42b).
        p_last, in_last = data_reg(), data_reg()
        m.d.sync += [p_last.eq(j + 1 == i), in_last.eq(j + 1 == nc)]
        m.d.sync += [p_la.eq(lab_a.data), p_lb.eq(lab_b.data), p_sa.eq(seed_a.data),
                     p_sb.eq(seed_b.data), p_ma.eq(mean_a.data), p_mb.eq(mean_b.data),
                     *similar_parts(p_parts_s, p_sa, p_sb), *similar_parts(p_parts_m, p_ma, p_mb),
                     p_sim_s.eq(similar(p_parts_s)), p_sim_m.eq(similar(p_parts_m))]

        mn = self.min_neighbors
        m.d.comb += [self.done.eq(0), div_start.eq(0)]
        with m.FSM(name="grouper") as fsm:
            with m.State("IDLE"):
                with m.If(hold_valid):
                    m.d.sync += [hold_valid.eq(0), r.eq(hold), emit_r.eq(hold),
                                 *set_i(lambda x: 0)]
                    with m.If(mn == 0):
                        m.next = "PASS"
                    with m.Else():
                        m.next = "SCAN"
                with m.Elif(finished & ~fifo.r_rdy):   # every window taken
                    m.d.sync += [finished.eq(0), idx.eq(0)]
                    with m.If(mn == 0):
                        m.next = "DONE"
                    with m.Else():
                        m.next = "MEAN_RD"
            with m.State("PASS"):
                m.d.comb += self.boxes.valid.eq(1)
                with m.If(self.boxes.ready):
                    m.next = "IDLE"
            # ---------------------------------------------------------- pass 1: seeds
            with m.State("SCAN"):
                # One seed a clock: read (R), block RAM output registered (D), the
                # similarity test's two clocks (S, C), decide; a match squashes the seeds behind.
                rd_valid, rd_idx = Signal(), data_reg(range(nmax + 1), name="rd_idx")
                d_valid, s_valid, c_valid = Signal(), Signal(), Signal()
                d_idx = data_reg(range(nmax + 1))
                d_seed = data_reg(Rect)
                s_idx = data_reg(range(nmax + 1))
                s_parts = data_reg(SimParts)
                c_idx = data_reg(range(nmax + 1))
                c_sim = data_reg()
                m.d.sync += [rd_valid.eq(0), d_valid.eq(rd_valid), d_idx.eq(rd_idx),
                             d_seed.eq(seed_a.data), s_valid.eq(d_valid), s_idx.eq(d_idx),
                             *similar_parts(s_parts, d_seed, r),
                             c_valid.eq(s_valid), c_idx.eq(s_idx), c_sim.eq(similar(s_parts))]
                # NEW's writes loaded every clock, not on the decision (timing: the decision
                # was the detector's worst path into these registers' enables).
                m.d.sync += [idx.eq(n), lab_wa.eq(n), lo.eq(n),
                             *(getattr(sum_q, f).eq(getattr(r, f)) for f in "xywh"),
                             sum_q.n.eq(1)]
                with m.If(c_valid & c_sim):
                    m.d.sync += [d_valid.eq(0), s_valid.eq(0), c_valid.eq(0), idx.eq(c_idx)]
                    m.next = "ADD"
                with m.Elif(i < n):
                    m.d.sync += [rd_valid.eq(1), rd_idx.eq(i), *set_i(lambda x: x + 1)]
                with m.Elif(~rd_valid & ~d_valid & ~s_valid & ~c_valid):
                    with m.If(n < nmax):
                        m.d.sync += [seed_we.eq(1), acc_we.eq(1), lab_we.eq(1)]
                    m.next = "NEW"
            with m.State("ADD"):
                m.next = "ADD_REG"
            with m.State("ADD_REG"):
                # Block RAM outputs are registered before an adder, and the sums before
                # they are written (timing), here and below.
                m.d.sync += acc_d.eq(acc_r.data)
                m.next = "ADD_SUM"
            with m.State("ADD_SUM"):
                m.d.sync += [*add_sums(acc_d, r, 1), acc_we.eq(1)]
                m.next = "ADD_WR"
            with m.State("ADD_WR"):               # acc_we: the sums written
                m.next = "IDLE"
            with m.State("NEW"):
                with m.If(n < nmax):             # the write enables: the seed, sums, label
                    m.d.sync += n.eq(n + 1)
                with m.Else():
                    m.d.sync += self.overflow.eq(self.overflow + 1)
                m.next = "IDLE"
            # ---------------------------------------------------------- pass 2: means
            with m.State("MEAN_RD"):
                with m.If(idx == n):
                    m.d.sync += [*set_i(lambda x: 1), *set_j(lambda x: 0)]
                    m.next = "PAIR_RD"
                with m.Else():
                    m.next = "MEAN_DIV"
            with m.State("MEAN_DIV"):
                m.d.comb += div_start.eq(1)
                m.next = "MEAN_WAIT"
            with m.State("MEAN_WAIT"):
                with m.If(~div_busy & ~mean_we):
                    m.d.sync += mean_we.eq(1)
                with m.If(mean_we):
                    m.d.sync += idx.eq(idx + 1)
                    m.next = "MEAN_RD"
            # ---------------------------------------------------------- merge pass
            with m.State("PAIR_RD"):
                with m.If(i >= n):
                    m.d.sync += [idx.eq(0), nc.eq(0)]
                    m.next = "MERGE_RD"
                with m.Else():
                    m.next = "PAIR_DATA"
            # PAIR_DATA, PAIR_REG, PAIR_SIM: the pair's pipeline below (block RAM outputs
            # registered, the similarity's parts, its verdict) fills while `i`, `j` hold.
            with m.State("PAIR_DATA"):
                m.next = "PAIR_REG"
            with m.State("PAIR_REG"):
                m.next = "PAIR_SIM"
            with m.State("PAIR_SIM"):
                m.next = "PAIR_CMP"
            with m.State("PAIR_CMP"):
                la, lb = p_la, p_lb
                with m.If(p_last):
                    m.d.sync += [*set_i(lambda x: x + 1), *set_j(lambda x: 0)]
                with m.Else():
                    m.d.sync += set_j(lambda x: x + 1)
                m.next = "PAIR_RD"
                with m.If((la != lb) & (p_sim_s | p_sim_m)):
                    m.d.sync += [lo.eq(Mux(la < lb, la, lb)), hi.eq(Mux(la < lb, lb, la)),
                                 idx.eq(0)]
                    m.next = "SWEEP"
            with m.State("SWEEP"):
                # Relabel hi -> lo: read label k, compare it a clock later, write it back the
                # clock after (the last write lands as the state is left).
                sweep_valid = Signal()
                sweep_k = data_reg(range(nmax + 1))
                m.d.sync += [sweep_valid.eq(idx < n), sweep_k.eq(idx), idx.eq(idx + 1),
                             lab_wa.eq(sweep_k), lab_we.eq(sweep_valid & (lab_c.data == hi))]
                with m.If(~sweep_valid & (idx > n)):
                    m.next = "PAIR_RD"
            # ---------------------------------------------------------- merged sums and means
            with m.State("MERGE_RD"):
                with m.If(idx == n):
                    m.d.sync += [idx.eq(0), lab_k.eq(0)]
                    m.next = "FINAL_RD"
                with m.Else():
                    m.next = "MERGE_ACC"
            with m.State("MERGE_ACC"):
                m.d.sync += [lab_k.eq(lab_c.data), own.eq(acc_r.data)]
                m.next = "MERGE_LAB"
            with m.State("MERGE_LAB"):            # the label's merged sums read at lab_k
                m.next = "MERGE_REG"
            with m.State("MERGE_REG"):
                # A label's first member starts its merged sums from zero.
                m.d.sync += acc_d.eq(Mux(lab_k == idx, 0, msum_r.data))
                m.next = "MERGE_SUM"
            with m.State("MERGE_SUM"):
                m.d.sync += [*add_sums(acc_d, own, own.n), msum_we.eq(1)]
                m.next = "MERGE_WR"
            with m.State("MERGE_WR"):             # msum_we: the merged sums written
                m.d.sync += idx.eq(idx + 1)
                m.next = "MERGE_RD"
            with m.State("FINAL_RD"):
                with m.If(idx == n):
                    m.d.sync += [*set_i(lambda x: 0), *set_j(lambda x: 0)]
                    m.next = "IN_RD"
                with m.Else():
                    m.next = "FINAL_CHK"
            with m.State("FINAL_CHK"):
                m.d.sync += own.eq(msum_r.data)   # used only if the cluster is a label's own
                with m.If(lab_c.data == idx):
                    m.d.comb += div_start.eq(1)
                    m.next = "FINAL_WAIT"
                with m.Else():
                    m.d.sync += [idx.eq(idx + 1), lab_k.eq(idx + 1)]
                    m.next = "FINAL_RD"
            with m.State("FINAL_WAIT"):
                with m.If(~div_busy & ~cl_we):
                    m.d.sync += cl_we.eq(1)
                with m.If(cl_we):
                    m.d.sync += [nc.eq(nc + 1), idx.eq(idx + 1), lab_k.eq(idx + 1)]
                    m.next = "FINAL_RD"
            # ---------------------------------------------------------- inside rule, output
            with m.State("IN_RD"):
                with m.If(i >= nc):
                    m.next = "DONE"
                with m.Else():
                    m.next = "IN_REG"
            with m.State("IN_REG"):
                m.d.sync += [c1.eq(cl_a.data), c2.eq(cl_b.data)]
                m.next = "IN_DX"
            r1, r2 = c1.r, c2.r
            # The inside rule in three clocks (timing): the divisions by 10 (a multiplier each)
            # and the member counts' tests; the edges' sums; their comparisons. The verdict is
            # registered and acted on a clock later. (The sums and comparisons in one clock
            # behind `c1` into the verdict were a seed's worst path at 65e579a.)
            count_ok, skip = data_reg(name="in_count_ok"), data_reg(name="in_skip")
            edge = data_reg(data.ArrayLayout(COORD_BITS + 2, 8), name="in_edge")
            with m.State("IN_DX"):
                m.d.sync += [dx.eq(_div10((c2.r.w << 1) + 5, COORD_BITS + 2)),
                             dy.eq(_div10((c2.r.h << 1) + 5, COORD_BITS + 2)),
                             count_ok.eq((j != i) & (c2.n > mn) &
                                         ((c2.n > Mux(c1.n > 3, c1.n, 3)) | (c1.n < 3))),
                             skip.eq(c1.n <= mn)]
                m.next = "IN_SUM"
            with m.State("IN_SUM"):
                sums = (r1.x + dx, r2.x, r1.y + dy, r2.y,
                        r2.x + r2.w + dx, r1.x + r1.w, r2.y + r2.h + dy, r1.y + r1.h)
                m.d.sync += [edge[k].eq(v) for k, v in enumerate(sums)]
                m.next = "IN_CMP"
            with m.State("IN_CMP"):
                hit = count_ok & Cat(edge[2 * k] >= edge[2 * k + 1] for k in range(4)).all()
                m.d.sync += [emit_r.eq(r1), out_q.eq(skip | hit)]
                m.next = "IN_ACT"
            with m.State("IN_ACT"):
                with m.If(out_q):                # skipped, or inside another cluster
                    m.d.sync += [*set_i(lambda x: x + 1), *set_j(lambda x: 0)]
                    m.next = "IN_RD"
                with m.Elif(in_last):
                    m.next = "EMIT"
                with m.Else():
                    m.d.sync += set_j(lambda x: x + 1)
                    m.next = "IN_RD"
            with m.State("EMIT"):
                m.d.comb += self.boxes.valid.eq(1)
                with m.If(self.boxes.ready):
                    m.d.sync += [*set_i(lambda x: x + 1), *set_j(lambda x: 0)]
                    m.next = "IN_RD"
            with m.State("DONE"):
                m.d.comb += self.done.eq(1)
                m.d.sync += [n.eq(0), self.overflow.eq(0)]
                m.next = "IDLE"
        m.d.sync += div_merged.eq(fsm.ongoing("FINAL_RD") | fsm.ongoing("FINAL_CHK") |
                                  fsm.ongoing("FINAL_WAIT"))
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE") | fifo.r_rdy | hold_valid | finished)
        return m
