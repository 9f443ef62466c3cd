# Package obscura_pynq.v (bitstreams/pynq-z2/export.py) as a Vivado IP for the block design.
#
#   vivado -mode batch -source package_ip.tcl -tclargs obscura_pynq.v ip
#
# UNTESTED: written from the Vivado Tcl reference (UG835) and the IP packager guide (UG1118)
# without a Vivado installation to run it on. See README.md.
#
# The interfaces are declared explicitly (not left to inference):
#   s_axis  AXI4-Stream slave  (from the DMA's M_AXIS_MM2S): tdata[31:0] tkeep tlast tvalid tready
#   m_axis  AXI4-Stream master (to the DMA's S_AXIS_S2MM):   tdata[31:0] tkeep tlast tvalid tready
#   s_axil  AXI4-Lite slave, 16-bit addresses, one 64 KiB register block
#   clk     the one clock of every interface; rst its reset, ACTIVE HIGH (Amaranth's sync domain)

if {$argc != 2} {
    error "usage: vivado -mode batch -source package_ip.tcl -tclargs obscura_pynq.v IP_DIR"
}
set verilog [file normalize [lindex $argv 0]]
set ip_dir [file normalize [lindex $argv 1]]
set part xc7z020clg400-1

create_project -force obscura_ip_pkg [file join $ip_dir .pkg] -part $part
add_files -norecurse $verilog
set_property top obscura_pynq [current_fileset]
update_compile_order -fileset sources_1

ipx::package_project -root_dir $ip_dir -vendor obscura.dev -library obscura \
    -taxonomy /UserIP -import_files -set_current true
set core [ipx::current_core]
set_property name obscura_pynq $core
set_property version 1.0 $core
set_property display_name "obscura video anonymizer (AXI DMA streams)" $core
set_property description "Face-masking pixel pipeline; one frame per DMA transfer, 32-bit BGR0 words" $core
set_property supported_families {zynq Production} $core

# Drop whatever the packager inferred, then declare every interface.
foreach bif [ipx::get_bus_interfaces -of_objects $core] {
    ipx::remove_bus_interface [get_property name $bif] $core
}
foreach mm [ipx::get_memory_maps -of_objects $core] {
    ipx::remove_memory_map [get_property name $mm] $core
}

proc add_axis {core name mode} {
    set bif [ipx::add_bus_interface $name $core]
    set_property abstraction_type_vlnv xilinx.com:interface:axis_rtl:1.0 $bif
    set_property bus_type_vlnv xilinx.com:interface:axis:1.0 $bif
    set_property interface_mode $mode $bif
    foreach {logical physical} {TDATA tdata TKEEP tkeep TLAST tlast TVALID tvalid TREADY tready} {
        set_property physical_name ${name}_${physical} [ipx::add_port_map $logical $bif]
    }
}
add_axis $core s_axis slave
add_axis $core m_axis master

set bif [ipx::add_bus_interface s_axil $core]
set_property abstraction_type_vlnv xilinx.com:interface:aximm_rtl:1.0 $bif
set_property bus_type_vlnv xilinx.com:interface:aximm:1.0 $bif
set_property interface_mode slave $bif
foreach port {awaddr awvalid awready wdata wstrb wvalid wready bresp bvalid bready
              araddr arvalid arready rdata rresp rvalid rready} {
    set_property physical_name s_axil_${port} [ipx::add_port_map [string toupper $port] $bif]
}
set mm [ipx::add_memory_map s_axil $core]
set_property slave_memory_map_ref s_axil $bif
set block [ipx::add_address_block reg0 $mm]
set_property range 65536 $block
set_property width 32 $block
set_property usage register $block

set rst [ipx::add_bus_interface rst $core]
set_property abstraction_type_vlnv xilinx.com:signal:reset_rtl:1.0 $rst
set_property bus_type_vlnv xilinx.com:signal:reset:1.0 $rst
set_property interface_mode slave $rst
set_property physical_name rst [ipx::add_port_map RST $rst]
set_property value ACTIVE_HIGH [ipx::add_bus_parameter POLARITY $rst]

set clk [ipx::add_bus_interface clk $core]
set_property abstraction_type_vlnv xilinx.com:signal:clock_rtl:1.0 $clk
set_property bus_type_vlnv xilinx.com:signal:clock:1.0 $clk
set_property interface_mode slave $clk
set_property physical_name clk [ipx::add_port_map CLK $clk]
set_property value s_axis:m_axis:s_axil [ipx::add_bus_parameter ASSOCIATED_BUSIF $clk]
set_property value rst [ipx::add_bus_parameter ASSOCIATED_RESET $clk]

ipx::create_xgui_files $core
ipx::update_checksums $core
ipx::check_integrity $core
ipx::save_core $core
close_project
puts "obscura: IP packaged in $ip_dir (obscura.dev:obscura:obscura_pynq:1.0)"
