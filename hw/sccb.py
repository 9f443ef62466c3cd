"""SCCB (I2C-compatible) master that writes a camera's register table after reset.

Each table entry is either a 3-phase write `(reg, value)` (16-bit register address, 8-bit
value: START, device address + W, reg[15:8], reg[7:0], value, STOP; SCCB spec v2.2 section
3.2.1.1) or a pause `("delay", ms)`. The lines are open drain: `scl_oe` / `sda_oe` pull a line
low, releasing it lets the pull-up raise it, and `sda_i` reads it back for the acknowledge of
the device address. No acknowledge there means no camera answers: the writer stops, sets
`nack`, and the board shows its test pattern.

Timing: one bit is four quarter periods of `quarter` clocks each (SCL low while SDA changes,
then high); `clocks_per_ms` scales the pauses (a simulation may shorten them).

`sccb_writes` (the bytes of each transaction) and `decode_i2c` (recover transactions from
sampled SCL/SDA levels) are the spec the tests compare the waveform with.
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["SCCBWriter", "sccb_writes", "decode_i2c", "DELAY"]

#: Marks a pause entry in a register table: ("delay", milliseconds).
DELAY = "delay"


def _entries(table):
    for entry in table:
        reg, value = entry
        if reg == DELAY:
            if not 0 <= value < 1 << 16:
                raise ValueError(f"a delay must be 0..65535 ms, not {value!r}")
        elif not (0 <= reg < 1 << 16 and 0 <= value < 1 << 8):
            raise ValueError(f"register entry {entry!r}: address must be 16-bit and value "
                             f"8-bit")
    return list(table)


def sccb_writes(table, device=0x3C):
    """Return the byte sequence of each write transaction of `table` (delays skipped)."""
    return [(device << 1, reg >> 8, reg & 0xFF, value) for reg, value in _entries(table)
            if reg != DELAY]


def decode_i2c(scl, sda):
    """Return the transactions (lists of (byte, acked)) seen on sampled SCL/SDA levels."""
    out, cur, bits = [], None, []
    prev_scl, prev_sda = 1, 1
    for c, d in zip(scl, sda):
        c, d = int(c), int(d)
        if prev_scl and c:
            if prev_sda and not d:          # START (or repeated START)
                if cur:
                    out.append(cur)
                cur, bits = [], []
            elif not prev_sda and d:        # STOP
                if cur is not None:
                    out.append(cur)
                cur, bits = None, []
        elif not prev_scl and c and cur is not None:    # SCL rising: sample
            bits.append(d)
            if len(bits) == 9:
                byte = int("".join(str(b) for b in bits[:8]), 2)
                cur.append((byte, bits[8] == 0))
                bits = []
        prev_scl, prev_sda = c, d
    return out


class SCCBWriter(wiring.Component):
    """Write `table` once after reset. Ports: open-drain `scl_oe`, `sda_oe` (1 pulls low),
    `sda_i`; `done` (table written or abandoned), `nack` (no acknowledge: no camera)."""

    scl_oe: Out(1)
    sda_oe: Out(1)
    sda_i: In(1)
    done: Out(1)
    nack: Out(1)

    def __init__(self, table, device=0x3C, quarter=186, clocks_per_ms=74250):
        self.table = _entries(table)
        if not self.table:
            raise ValueError("the register table is empty")
        self.device, self.quarter, self.clocks_per_ms = device, quarter, clocks_per_ms
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        # ROM word: bit 24 = delay, [23:8] = register or milliseconds, [7:0] = value.
        words = []
        for reg, value in self.table:
            words.append((1 << 24) | (value << 8) if reg == DELAY else (reg << 8) | value)
        m.submodules.rom = rom = Memory(shape=25, depth=len(words), init=words)
        rd = rom.read_port(domain="comb")
        index = Signal(range(len(words) + 1))
        m.d.comb += rd.addr.eq(index)
        word = rd.data

        tick = Signal()
        qcount = Signal(range(self.quarter))
        m.d.comb += tick.eq(qcount == self.quarter - 1)
        m.d.sync += qcount.eq(qcount + 1)
        with m.If(tick):
            m.d.sync += qcount.eq(0)

        scl, sda = Signal(init=1), Signal(init=1)
        m.d.comb += [self.scl_oe.eq(~scl), self.sda_oe.eq(~sda)]
        shift = Signal(32)
        # Timing: the bit position is a byte count and a slot in the byte (9 with the
        # acknowledge), and a pause counts milliseconds and clocks within one: no modulo by 9
        # and no multiplier between a register and the next state.
        nbyte = Signal(2)
        slot = Signal(range(9))
        phase = Signal(2)
        wait_ms = Signal(16)
        wait_clk = Signal(range(max(2, self.clocks_per_ms)))
        first_ack = Signal()

        with m.FSM():
            with m.State("LOAD"):
                with m.If(index == len(words)):
                    m.next = "DONE"
                with m.Elif(word[24]):
                    m.d.sync += [wait_ms.eq(word[8:24]), wait_clk.eq(self.clocks_per_ms - 1)]
                    m.next = "PAUSE"
                with m.Else():
                    m.d.sync += [shift.eq(Cat(word[0:8], word[8:16], word[16:24],
                                              Const(self.device << 1, 8))),
                                 nbyte.eq(0), slot.eq(0), phase.eq(0)]
                    m.next = "START"
            with m.State("PAUSE"):
                # `ms` milliseconds (and a clock): the sub-millisecond count restarts per ms.
                m.d.sync += wait_clk.eq(wait_clk - 1)
                with m.If(wait_clk == 0):
                    m.d.sync += [wait_clk.eq(self.clocks_per_ms - 1), wait_ms.eq(wait_ms - 1)]
                    with m.If(wait_ms == 0):
                        m.d.sync += index.eq(index + 1)
                        m.next = "LOAD"
            with m.State("START"):
                # SDA falls while SCL is high, then SCL falls.
                with m.If(tick):
                    m.d.sync += phase.eq(phase + 1)
                    with m.Switch(phase):
                        with m.Case(0):
                            m.d.sync += [scl.eq(1), sda.eq(1)]
                        with m.Case(1):
                            m.d.sync += sda.eq(0)
                        with m.Case(2):
                            m.d.sync += scl.eq(0)
                        with m.Case(3):
                            m.next = "BIT"
            with m.State("BIT"):
                ack_slot = slot == 8
                with m.If(tick):
                    m.d.sync += phase.eq(phase + 1)
                    with m.Switch(phase):
                        with m.Case(0):
                            m.d.sync += sda.eq(ack_slot | shift[31])
                        with m.Case(1):
                            m.d.sync += scl.eq(1)
                        with m.Case(2):
                            with m.If(ack_slot & (nbyte == 0)):
                                m.d.sync += first_ack.eq(~self.sda_i)
                        with m.Case(3):
                            m.d.sync += [scl.eq(0), slot.eq(slot + 1)]
                            with m.If(~ack_slot):
                                m.d.sync += shift.eq(shift << 1)
                            with m.Else():
                                m.d.sync += [slot.eq(0), nbyte.eq(nbyte + 1)]
                                with m.If(nbyte == 3):
                                    m.next = "STOP"
            with m.State("STOP"):
                # SDA low, SCL rises, then SDA rises while SCL is high.
                with m.If(tick):
                    m.d.sync += phase.eq(phase + 1)
                    with m.Switch(phase):
                        with m.Case(0):
                            m.d.sync += sda.eq(0)
                        with m.Case(1):
                            m.d.sync += scl.eq(1)
                        with m.Case(2):
                            m.d.sync += sda.eq(1)
                        with m.Case(3):
                            with m.If(~first_ack):
                                m.d.sync += self.nack.eq(1)
                                m.next = "DONE"
                            with m.Else():
                                m.d.sync += index.eq(index + 1)
                                m.next = "LOAD"
            with m.State("DONE"):
                m.d.comb += self.done.eq(1)
        return m
