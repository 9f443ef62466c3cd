# Block design for the PYNQ-Z2 (xc7z020clg400-1): Zynq PS, AXI DMA in simple mode, the obscura
# IP on its two streams and on an AXI4-Lite port; bitstream and hardware handoff out.
#
#   vivado -mode batch -source block_design.tcl -tclargs IP_DIR OUT_DIR [FCLK_MHZ]
#
# Writes OUT_DIR/obscura.bit and OUT_DIR/obscura.hwh (PYNQ needs both, same base name).
# UNTESTED: written from the Vivado Tcl reference (UG835, UG994) and the AXI DMA product guide
# (PG021) without a Vivado installation to run it on. See README.md.
#
# Names and addresses the host side relies on (host/pynq_backend.py, sim/fake_pynq.py):
#   cell `obscura` at 0x43C00000 (64 KiB), cell `axi_dma` at 0x40400000 (64 KiB).

if {$argc < 2} {
    error "usage: vivado -mode batch -source block_design.tcl -tclargs IP_DIR OUT_DIR \[FCLK_MHZ\]"
}
set ip_dir [file normalize [lindex $argv 0]]
set out_dir [file normalize [lindex $argv 1]]
set fclk_mhz [expr {$argc > 2 ? [lindex $argv 2] : 100}]
set part xc7z020clg400-1

create_project -force obscura_pynq_z2 [file join $out_dir project] -part $part
# The PYNQ-Z2 board files (TUL) give the PS its DDR and MIO presets; without them the PS7
# defaults are used, which do not match the board's DDR3: install them (README.md).
set board [lindex [get_board_parts -quiet *pynq-z2*] end]
if {$board ne ""} {
    set_property board_part $board [current_project]
} else {
    puts "WARNING: PYNQ-Z2 board files not found; the PS7 presets will not match the board"
}
set_property ip_repo_paths $ip_dir [current_project]
update_ip_catalog

create_bd_design obscura

# Processing system: GP0 master for the registers, HP0 slave for the DMA, FCLK0 for the fabric.
set ps [create_bd_cell -type ip -vlnv xilinx.com:ip:processing_system7:5.5 processing_system7_0]
if {$board ne ""} {
    apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \
        -config {make_external "FIXED_IO, DDR" apply_board_preset "1" Master "Disable" Slave "Disable"} $ps
} else {
    apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \
        -config {make_external "FIXED_IO, DDR" apply_board_preset "0" Master "Disable" Slave "Disable"} $ps
}
set_property -dict [list \
    CONFIG.PCW_USE_M_AXI_GP0 {1} \
    CONFIG.PCW_USE_S_AXI_HP0 {1} \
    CONFIG.PCW_S_AXI_HP0_DATA_WIDTH {64} \
    CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ $fclk_mhz \
] $ps

# AXI DMA, simple (register direct) mode, 32-bit streams. The buffer length register must hold
# a whole frame of 32-bit words: 1920 x 1080 x 4 = 8,294,400 bytes needs >= 23 bits (the
# default 14 bits holds 16 KiB); 26 is the maximum (64 MiB - 1).
set dma [create_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma:7.1 axi_dma]
set_property -dict [list \
    CONFIG.c_include_sg {0} \
    CONFIG.c_sg_length_width {26} \
    CONFIG.c_sg_include_stscntrl_strm {0} \
    CONFIG.c_include_mm2s {1} \
    CONFIG.c_include_s2mm {1} \
    CONFIG.c_m_axi_mm2s_data_width {32} \
    CONFIG.c_m_axis_mm2s_tdata_width {32} \
    CONFIG.c_m_axi_s2mm_data_width {32} \
    CONFIG.c_s_axis_s2mm_tdata_width {32} \
    CONFIG.c_mm2s_burst_size {64} \
    CONFIG.c_s2mm_burst_size {64} \
] $dma

# The obscura IP (package_ip.tcl).
set ob [create_bd_cell -type ip -vlnv obscura.dev:obscura:obscura_pynq:1.0 obscura]

# One clock and reset for the fabric: FCLK0 and a processor system reset.
set rst [create_bd_cell -type ip -vlnv xilinx.com:ip:proc_sys_reset:5.0 rst_fclk0]
connect_bd_net [get_bd_pins processing_system7_0/FCLK_CLK0] [get_bd_pins rst_fclk0/slowest_sync_clk]
connect_bd_net [get_bd_pins processing_system7_0/FCLK_RESET0_N] [get_bd_pins rst_fclk0/ext_reset_in]
connect_bd_net [get_bd_pins processing_system7_0/FCLK_CLK0] [get_bd_pins obscura/clk]
# obscura's reset is active high (package_ip.tcl): the peripheral_reset output, not _aresetn.
connect_bd_net [get_bd_pins rst_fclk0/peripheral_reset] [get_bd_pins obscura/rst]

# Streams: MM2S -> obscura -> S2MM.
connect_bd_intf_net [get_bd_intf_pins axi_dma/M_AXIS_MM2S] [get_bd_intf_pins obscura/s_axis]
connect_bd_intf_net [get_bd_intf_pins obscura/m_axis] [get_bd_intf_pins axi_dma/S_AXIS_S2MM]

# Register ports on GP0, the DMA's memory masters on HP0 (the automation adds the
# interconnects and clocks them from FCLK0).
set clk_src "/processing_system7_0/FCLK_CLK0 ($fclk_mhz MHz)"
apply_bd_automation -rule xilinx.com:bd_rule:axi4 \
    -config [list Master /processing_system7_0/M_AXI_GP0 Clk_master $clk_src Clk_slave $clk_src Clk_xbar $clk_src] \
    [get_bd_intf_pins axi_dma/S_AXI_LITE]
apply_bd_automation -rule xilinx.com:bd_rule:axi4 \
    -config [list Master /processing_system7_0/M_AXI_GP0 Clk_master $clk_src Clk_slave $clk_src Clk_xbar $clk_src] \
    [get_bd_intf_pins obscura/s_axil]
apply_bd_automation -rule xilinx.com:bd_rule:axi4 \
    -config [list Slave /processing_system7_0/S_AXI_HP0 Clk_master $clk_src Clk_slave $clk_src Clk_xbar $clk_src] \
    [get_bd_intf_pins axi_dma/M_AXI_MM2S]
apply_bd_automation -rule xilinx.com:bd_rule:axi4 \
    -config [list Slave /processing_system7_0/S_AXI_HP0 Clk_master $clk_src Clk_slave $clk_src Clk_xbar $clk_src] \
    [get_bd_intf_pins axi_dma/M_AXI_S2MM]

# Addresses (PYNQ reads them from the .hwh; fixed here so they match the simulated board).
assign_bd_address
set_property offset 0x43C00000 [get_bd_addr_segs -of_objects [get_bd_addr_spaces processing_system7_0/Data] -filter {NAME =~ *obscura*}]
set_property range 64K [get_bd_addr_segs -of_objects [get_bd_addr_spaces processing_system7_0/Data] -filter {NAME =~ *obscura*}]
set_property offset 0x40400000 [get_bd_addr_segs -of_objects [get_bd_addr_spaces processing_system7_0/Data] -filter {NAME =~ *axi_dma*}]
set_property range 64K [get_bd_addr_segs -of_objects [get_bd_addr_spaces processing_system7_0/Data] -filter {NAME =~ *axi_dma*}]

validate_bd_design
save_bd_design

set bd_file [get_files obscura.bd]
generate_target all $bd_file
set wrapper [make_wrapper -files $bd_file -top]
add_files -norecurse $wrapper
set_property top obscura_wrapper [current_fileset]
update_compile_order -fileset sources_1

launch_runs impl_1 -to_step write_bitstream -jobs 4
wait_on_run impl_1
if {[get_property PROGRESS [get_runs impl_1]] ne "100%"} {
    error "implementation failed: see [get_property DIRECTORY [get_runs impl_1]]/runme.log"
}
open_run impl_1
set wns [get_property SLACK [get_timing_paths -max_paths 1 -nworst 1 -setup]]
puts "obscura: worst setup slack at $fclk_mhz MHz: $wns ns"
if {$wns < 0} {
    error "timing not met at $fclk_mhz MHz (WNS $wns ns): the bitstream would not work. Rebuild \
with a lower fabric clock (third argument, e.g. 50) and note it in README.md"
}

set run_dir [get_property DIRECTORY [get_runs impl_1]]
file copy -force [file join $run_dir obscura_wrapper.bit] [file join $out_dir obscura.bit]
set hwh [lindex [glob -nocomplain \
    [file join $out_dir project obscura_pynq_z2.gen sources_1 bd obscura hw_handoff obscura.hwh] \
    [file join $out_dir project obscura_pynq_z2.srcs sources_1 bd obscura hw_handoff obscura.hwh]] 0]
if {$hwh eq ""} {
    error "obscura.hwh not found under [file join $out_dir project]"
}
file copy -force $hwh [file join $out_dir obscura.hwh]
report_utilization -file [file join $out_dir utilization.txt]
report_timing_summary -file [file join $out_dir timing.txt]
puts "obscura: wrote [file join $out_dir obscura.bit] and obscura.hwh"
