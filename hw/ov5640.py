"""OV5640 register table for 1280x720 at 30 fps, RGB565 over 8-bit DVP (device address 0x3C).

Sources (register meanings, not code): the OmniVision OV5640 datasheet (system control 0x30xx,
timing control 0x38xx, format control 0x4300 / 0x501F, DVP control 0x47xx), and the register
values the Linux driver `drivers/media/i2c/ov5640.c` uses for its initial setting and its
1280x720 mode (analog crop top 250, height 1456; output window 1280x720 at offset 16, 4;
HTS 1892, VTS 740). HTS is 1890 here, two pixels shorter: with the board's clocks (XCLK and
the pixel clock from one crystal) a camera line is then exactly 3348 display pixel clocks, so
the display can be locked to the camera line for line (bitstreams/ulx3s-85f/top.py).
The table is written here by hand in the order the sensor needs: software
reset, sensor core settings, PLL, window and timing, output format, DVP polarity, wake up.

Not verified on hardware (no board in CI): the PLL values are meant to give the Linux driver's
720p30 pixel rate, 42 Mpixel/s (HTS x VTS x 30, PCLK 84 MHz with two bytes per pixel) from a
24 MHz XCLK; the datasheet's clock tree leaves room for doubt (PCLK dividers 0x3108, 0x3824),
so this must be measured on a board. The ISP's colour tuning (AWB, gamma, lens shading) is
left at its reset values. The board's
`underrun` / `overflow` LEDs show when the camera's line rate and the display's disagree.
"""

from .sccb import DELAY

__all__ = ["OV5640_ADDRESS", "OV5640_720P30_RGB565", "OV5640_CHIP_ID", "OV5640_HTS",
           "OV5640_VTS", "OV5640_PIXEL_HZ_AT_24MHZ"]

OV5640_ADDRESS = 0x3C
#: Chip ID registers 0x300A/0x300B read 0x56, 0x40.
OV5640_CHIP_ID = 0x5640

#: Line and frame totals the table sets (camera pixel clocks, lines).
OV5640_HTS, OV5640_VTS = 1890, 740
#: The pixel rate the table aims at with a 24 MHz XCLK (scales with XCLK).
OV5640_PIXEL_HZ_AT_24MHZ = 42e6
_HTS, _VTS = OV5640_HTS, OV5640_VTS
_W, _H = 1280, 720


def _u16(reg, value):
    return [(reg, value >> 8), (reg + 1, value & 0xFF)]


OV5640_720P30_RGB565 = [
    # Power up: SCCB access 20 ms after RESETB goes high (datasheet power-up sequence).
    (DELAY, 20),
    # System: clock from the pad, software reset, wait, then power down while configuring.
    (0x3103, 0x11), (0x3008, 0x82), (DELAY, 5), (0x3008, 0x42), (0x3103, 0x03),
    # Pads: VSYNC, HREF, PCLK and D[9:0] as outputs.
    (0x3017, 0xFF), (0x3018, 0xFF),
    # Sensor core (analog) settings of the initial setting.
    (0x3630, 0x36), (0x3631, 0x0E), (0x3632, 0xE2), (0x3633, 0x12), (0x3621, 0xE0),
    (0x3704, 0xA0), (0x3703, 0x5A), (0x3715, 0x78), (0x3717, 0x01), (0x370B, 0x60),
    (0x3705, 0x1A), (0x3905, 0x02), (0x3906, 0x10), (0x3901, 0x0A), (0x3731, 0x12),
    (0x3600, 0x08), (0x3601, 0x33), (0x302D, 0x60), (0x3620, 0x52), (0x371B, 0x20),
    (0x471C, 0x50), (0x3A13, 0x43), (0x3A18, 0x00), (0x3A19, 0xF8), (0x3635, 0x13),
    (0x3636, 0x03), (0x3634, 0x40), (0x3622, 0x01),
    # PLL (24 MHz XCLK): pre-divider 3, multiplier 105, system divider 2, root divider 2;
    # 8-bit DVP mode.
    (0x3034, 0x18), (0x3035, 0x21), (0x3036, 0x69), (0x3037, 0x13), (0x3108, 0x01),
    # Window: 2x subsampling of the analog crop, output 1280x720.
    (0x3814, 0x31), (0x3815, 0x31), (0x3820, 0x41), (0x3821, 0x07),
    *_u16(0x3800, 0), *_u16(0x3802, 250), *_u16(0x3804, 2623), *_u16(0x3806, 1705),
    *_u16(0x3808, _W), *_u16(0x380A, _H), *_u16(0x380C, _HTS), *_u16(0x380E, _VTS),
    *_u16(0x3810, 16), *_u16(0x3812, 4),
    # Timing and exposure-band settings of the 1280x720 mode.
    (0x3618, 0x00), (0x3612, 0x29), (0x3708, 0x64), (0x3709, 0x52), (0x370C, 0x03),
    (0x3A02, 0x02), (0x3A03, 0xE4), (0x3A08, 0x01), (0x3A09, 0xBC), (0x3A0A, 0x01),
    (0x3A0B, 0x72), (0x3A0E, 0x01), (0x3A0D, 0x02), (0x3A14, 0x02), (0x3A15, 0xE4),
    (0x4001, 0x02), (0x4004, 0x02), (0x4407, 0x04), (0x460B, 0x37), (0x460C, 0x20),
    (0x3824, 0x04), (0x5000, 0xA7), (0x5001, 0x83),
    # Output format: RGB565, first byte R[4:0] G[5:3], second G[2:0] B[4:0]; ISP outputs RGB.
    (0x4300, 0x61), (0x501F, 0x01),
    # DVP polarity: PCLK active high (data valid at its rising edge), HREF active high,
    # VSYNC active high.
    (0x4740, 0x23),
    # Wake up and let the exposure settle.
    (0x3008, 0x02), (DELAY, 300),
]
