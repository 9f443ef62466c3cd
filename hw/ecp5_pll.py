"""ECP5 EHXPLLL settings: a divider search (the same limits as nextpnr's `ecppll`) and the
primitive instance.

    f_out = f_in * CLKFB_DIV / CLKI_DIV      (feedback from CLKOP)
    f_vco = f_out * CLKOP_DIV                (400..800 MHz)
    f_pfd = f_in / CLKI_DIV                  (3.125..400 MHz)
    f_secondary = f_vco / CLKOSn_DIV

Limits from the ECP5 family data sheet (FPGA-DS-02012, "sysCLOCK PLL timing") as encoded in
ecppll: CLKI_DIV 1..128, CLKFB_DIV 1..80, output dividers 1..128. Phases: the coarse phase of
a 0-degree output is CLKOP_DIV // 2 VCO cycles for CLKOP and every secondary output (ecppll's
convention), so all outputs share their rising edges where their periods allow.
"""

from dataclasses import dataclass, field

from amaranth.hdl import Instance

__all__ = ["PLLConfig", "ecp5_pll"]

VCO_MIN, VCO_MAX = 400.0, 800.0
PFD_MIN, PFD_MAX = 3.125, 400.0


@dataclass(frozen=True)
class PLLConfig:
    fin_mhz: float
    clki_div: int
    clkfb_div: int
    clkop_div: int
    secondary_divs: tuple = field(default_factory=tuple)    # CLKOS, CLKOS2, CLKOS3

    @property
    def fout_mhz(self):
        return self.fin_mhz * self.clkfb_div / self.clki_div

    @property
    def vco_mhz(self):
        return self.fout_mhz * self.clkop_div

    @property
    def secondary_mhz(self):
        return tuple(self.vco_mhz / d for d in self.secondary_divs)

    def instance(self, clki, clkop, secondaries=(), lock=None):
        """Return the EHXPLLL `Instance` driving `clkop` and the given secondary outputs."""
        if len(secondaries) != len(self.secondary_divs):
            raise ValueError(f"{len(self.secondary_divs)} secondary outputs configured, "
                             f"{len(secondaries)} given")
        cphase = self.clkop_div // 2
        params = {
            "p_PLLRST_ENA": "DISABLED", "p_INTFB_WAKE": "DISABLED",
            "p_STDBY_ENABLE": "DISABLED", "p_DPHASE_SOURCE": "DISABLED",
            "p_OUTDIVIDER_MUXA": "DIVA", "p_OUTDIVIDER_MUXB": "DIVB",
            "p_OUTDIVIDER_MUXC": "DIVC", "p_OUTDIVIDER_MUXD": "DIVD",
            "p_CLKI_DIV": self.clki_div, "p_CLKFB_DIV": self.clkfb_div,
            "p_FEEDBK_PATH": "CLKOP",
            "p_CLKOP_ENABLE": "ENABLED", "p_CLKOP_DIV": self.clkop_div,
            "p_CLKOP_CPHASE": cphase, "p_CLKOP_FPHASE": 0,
            "i_CLKI": clki, "i_CLKFB": clkop, "i_RST": 0, "i_STDBY": 0,
            "i_PHASESEL0": 0, "i_PHASESEL1": 0, "i_PHASEDIR": 1, "i_PHASESTEP": 1,
            "i_PHASELOADREG": 1, "i_PLLWAKESYNC": 0, "i_ENCLKOP": 0,
            "o_CLKOP": clkop,
            "a_FREQUENCY_PIN_CLKI": f"{self.fin_mhz:g}",
            "a_FREQUENCY_PIN_CLKOP": f"{self.fout_mhz:.4f}",
            "a_ICP_CURRENT": "12", "a_LPF_RESISTOR": "8", "a_MFG_ENABLE_FILTEROPAMP": "1",
            "a_MFG_GMCREF_SEL": "2",
        }
        for name, div, sig, mhz in zip(("CLKOS", "CLKOS2", "CLKOS3"), self.secondary_divs,
                                       secondaries, self.secondary_mhz):
            params.update({f"p_{name}_ENABLE": "ENABLED", f"p_{name}_DIV": div,
                           f"p_{name}_CPHASE": cphase, f"p_{name}_FPHASE": 0,
                           f"o_{name}": sig, f"a_FREQUENCY_PIN_{name}": f"{mhz:.4f}"})
        if lock is not None:
            params["o_LOCK"] = lock
        return Instance("EHXPLLL", **params)


def ecp5_pll(fin_mhz, fout_mhz, secondary_mhz=()):
    """Return the `PLLConfig` whose CLKOP is nearest `fout_mhz` (ties: the higher VCO), with
    secondary dividers rounded to the nearest."""
    if len(secondary_mhz) > 3:
        raise ValueError("an EHXPLLL has three secondary outputs")
    best = None
    for ref in range(1, 129):
        pfd = fin_mhz / ref
        if not PFD_MIN <= pfd <= PFD_MAX:
            continue
        for fb in range(1, 81):
            fout = pfd * fb
            for op in range(1, 129):
                vco = fout * op
                if not VCO_MIN <= vco <= VCO_MAX:
                    continue
                key = (abs(fout - fout_mhz), -vco)
                if best is None or key < best[0]:
                    best = (key, ref, fb, op)
    if best is None:
        raise ValueError(f"no EHXPLLL setting gives {fout_mhz} MHz from {fin_mhz} MHz")
    _, ref, fb, op = best
    vco = fin_mhz * fb / ref * op
    divs = []
    for f in secondary_mhz:
        d = max(1, min(128, round(vco / f)))
        divs.append(d)
    return PLLConfig(fin_mhz, ref, fb, op, tuple(divs))
