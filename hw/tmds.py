"""TMDS 8b/10b encoding for DVI/HDMI output, with its numpy model and a decoder.

The encoder follows the DVI 1.0 specification (section 3.2.2, "T.M.D.S. encoding algorithm"):
stage 1 minimises transitions (XOR or XNOR chain, chosen by the number of ones, bit 8 says
which); stage 2 keeps the line DC balanced with a running disparity counter, inverting the
eight data bits (bit 9 set) when that moves the count towards zero. During blanking (`de` = 0)
the two control bits select one of four control tokens and the disparity counter is reset.

Symbols are sent least significant bit first. `TMDSEncoder.LATENCY` clocks separate an input
from its symbol.
"""

import numpy as np
from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["TMDSEncoder", "CTRL_TOKENS", "tmds_encode", "tmds_decode", "tmds_decode_stream",
           "TMDSError"]

#: Control tokens for (c1, c0) = 0b00, 0b01, 0b10, 0b11 (DVI 1.0, table 3-2; c0 = HSYNC and
#: c1 = VSYNC on the blue channel, 0 on the others).
CTRL_TOKENS = (0b1101010100, 0b0010101011, 0b0101010100, 0b1010101011)


class TMDSError(ValueError):
    """A 10-bit symbol that no TMDS encoder emits."""


def _popcount8(v):
    return bin(v & 0xFF).count("1")


def _stage1(d):
    """Return the 9-bit transition-minimised word q_m of data byte `d`."""
    n1 = _popcount8(d)
    xnor = n1 > 4 or (n1 == 4 and not d & 1)
    q = d & 1
    prev = q
    for i in range(1, 8):
        bit = (d >> i) & 1
        prev = (1 - (prev ^ bit)) if xnor else (prev ^ bit)
        q |= prev << i
    return q | ((0 if xnor else 1) << 8)


def tmds_encode(data, de, ctrl):
    """Encode sequences of data bytes, data-enable flags and 2-bit control values; return the
    10-bit symbols (numpy uint16) and the running disparity after each symbol."""
    data, de, ctrl = (np.asarray(a).astype(np.int64).ravel() for a in (data, de, ctrl))
    out = np.zeros(len(data), np.uint16)
    disp = np.zeros(len(data), np.int64)
    cnt = 0
    for i, (d, e, c) in enumerate(zip(data, de, ctrl)):
        if not e:
            cnt = 0
            out[i] = CTRL_TOKENS[c & 3]
            disp[i] = 0
            continue
        qm = _stage1(int(d))
        n1 = _popcount8(qm)
        n0 = 8 - n1
        q8 = (qm >> 8) & 1
        low = qm & 0xFF
        if cnt == 0 or n1 == n0:
            sym = ((1 - q8) << 9) | (q8 << 8) | (low if q8 else (~low & 0xFF))
            cnt += (n1 - n0) if q8 else (n0 - n1)
        elif (cnt > 0 and n1 > n0) or (cnt < 0 and n0 > n1):
            sym = (1 << 9) | (q8 << 8) | (~low & 0xFF)
            cnt += 2 * q8 + (n0 - n1)
        else:
            sym = (q8 << 8) | low
            cnt += -2 * (1 - q8) + (n1 - n0)
        out[i] = sym
        disp[i] = cnt
    return out, disp


def tmds_decode(sym):
    """Return ("data", byte) or ("ctrl", c) for one 10-bit symbol; raise `TMDSError` for a
    control-like symbol that is not a token (a data symbol always decodes)."""
    sym = int(sym)
    if sym in CTRL_TOKENS:
        return "ctrl", CTRL_TOKENS.index(sym)
    low = sym & 0xFF
    if sym >> 9 & 1:
        low = ~low & 0xFF
    xor = sym >> 8 & 1
    d = low & 1
    for i in range(1, 8):
        bit = ((low >> i) ^ (low >> (i - 1))) & 1
        d |= (bit if xor else 1 - bit) << i
    return "data", d


def tmds_decode_stream(symbols):
    """Decode a channel's symbols into (de, value) arrays: value = byte where de, else the
    control value (a data symbol equal to a token cannot occur: tokens have 5 transitions more
    than any stage-1 word allows)."""
    symbols = np.asarray(symbols, np.int64).ravel()
    table = {}
    de = np.zeros(len(symbols), bool)
    val = np.zeros(len(symbols), np.uint8)
    for s in np.unique(symbols):
        table[int(s)] = tmds_decode(int(s))
    for i, s in enumerate(symbols):
        kind, v = table[int(s)]
        de[i] = kind == "data"
        val[i] = v
    return de, val


class TMDSEncoder(wiring.Component):
    """One TMDS channel: `data`, `de` and `ctrl` in, `symbol` out `LATENCY` clocks later."""

    #: Clocks from an input to its symbol (stage 1 registered, stage 2 registered).
    LATENCY = 2

    data: In(8)
    de: In(1)
    ctrl: In(2)
    symbol: Out(10)

    def elaborate(self, platform):
        m = Module()
        d = self.data
        n1 = Signal(4)
        m.d.comb += n1.eq(sum(d[i] for i in range(8)))
        xnor = (n1 > 4) | ((n1 == 4) & ~d[0])
        chain = [d[0]]
        for i in range(1, 8):
            chain.append(chain[-1] ^ d[i] ^ xnor)
        qm = Signal(9)
        de1 = Signal()
        ctrl1 = Signal(2)
        m.d.sync += [qm.eq(Cat(*chain, ~xnor)), de1.eq(self.de), ctrl1.eq(self.ctrl)]

        # Stage 2: DC balance with the running disparity (a signed count of ones minus zeros).
        cnt = Signal(range(-16, 16))
        q1 = Signal(4)
        m.d.comb += q1.eq(sum(qm[i] for i in range(8)))
        diff = Signal(range(-8, 9))             # ones minus zeros of q_m[0:8]
        m.d.comb += diff.eq(q1 * 2 - 8)
        q8 = qm[8]
        low = qm[0:8]
        with m.If(~de1):
            m.d.sync += cnt.eq(0)
            with m.Switch(ctrl1):
                for c, token in enumerate(CTRL_TOKENS):
                    with m.Case(c):
                        m.d.sync += self.symbol.eq(Const(token, 10))
        with m.Elif((cnt == 0) | (diff == 0)):
            with m.If(q8):
                m.d.sync += [self.symbol.eq(Cat(low, q8, 0)), cnt.eq(cnt + diff)]
            with m.Else():
                m.d.sync += [self.symbol.eq(Cat(~low, q8, 1)), cnt.eq(cnt - diff)]
        with m.Elif(((cnt > 0) & (diff > 0)) | ((cnt < 0) & (diff < 0))):
            m.d.sync += [self.symbol.eq(Cat(~low, q8, 1)),
                         cnt.eq(cnt + Cat(0, q8) - diff)]
        with m.Else():
            m.d.sync += [self.symbol.eq(Cat(low, q8, 0)),
                         cnt.eq(cnt - Cat(0, ~q8) + diff)]
        return m
