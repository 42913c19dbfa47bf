# Stubbed Vivado block-design commands for plain tclsh: runs a generated block_design.tcl without Vivado and
# checks what it builds. Each IP the shell uses is modelled by the interfaces and pins its catalog entry has
# (the PS ports only when the CONFIG property that enables them is set), and validate_bd_design checks what
# Vivado's validation and the driver rely on: every connection between an existing master and slave of the
# same kind, one driver per net, every clock and reset input driven from one clock, the DMA's stream width
# equal to the accelerator's, the PL clock at the build's frequency, every address inside its master's
# aperture, reachable through the interconnect, aligned and not overlapping.
#
# Usage: tclsh vivado_stub.tcl block_design.tcl STREAM_BITS CLOCK_MHZ
# Prints the design (cells, connections, nets, address map) and "PASS" or "FAIL: ..." lines; exit 1 on FAIL.

set script [lindex $argv 0]
set want_bits [lindex $argv 1]
set want_mhz [lindex $argv 2]

array set cells {}       ;# name -> vlnv
array set cfg {}         ;# cell,PROP -> value
set intf_nets {}         ;# {a b}
set nets {}              ;# {pin pin ...}
set addresses {}         ;# {space segment offset range}
set problems {}
set validated 0

proc problem {msg} { lappend ::problems $msg }

# --- the IP catalog: interfaces {name mode kind [enabling CONFIG]} and pins {name dir kind [enabling CONFIG]} ---
proc catalog {vlnv cell} {
    switch -glob -- $vlnv {
        xilinx.com:ip:processing_system7:* {
            return [list \
                intf [list {M_AXI_GP0 master aximm PCW_USE_M_AXI_GP0} {S_AXI_HP0 slave aximm PCW_USE_S_AXI_HP0} \
                           {DDR external ddr} {FIXED_IO external fixed_io}] \
                pins [list {FCLK_CLK0 out clk PCW_EN_CLK0_PORT} {FCLK_RESET0_N out rst PCW_EN_RST0_PORT} \
                           {M_AXI_GP0_ACLK in clk PCW_USE_M_AXI_GP0} {S_AXI_HP0_ACLK in clk PCW_USE_S_AXI_HP0}] \
                spaces [list {Data M_AXI_GP0 0x40000000 0x7FFFFFFF}] \
                segments [list {S_AXI_HP0/HP0_DDR_LOWOCM S_AXI_HP0}] \
                clocks [list {FCLK_CLK0 PCW_FPGA0_PERIPHERAL_FREQMHZ}] \
                widths [list {S_AXI_HP0 PCW_S_AXI_HP0_DATA_WIDTH}]]
        }
        xilinx.com:ip:zynq_ultra_ps_e:* {
            return [list \
                intf [list {M_AXI_HPM0_FPD master aximm PSU__USE__M_AXI_GP0} \
                           {S_AXI_HP0_FPD slave aximm PSU__USE__S_AXI_GP2}] \
                pins [list {pl_clk0 out clk PSU__FPGA_PL0_ENABLE} {pl_resetn0 out rst PSU__FPGA_PL0_ENABLE} \
                           {maxihpm0_fpd_aclk in clk PSU__USE__M_AXI_GP0} \
                           {saxihp0_fpd_aclk in clk PSU__USE__S_AXI_GP2}] \
                spaces [list {Data M_AXI_HPM0_FPD 0xA0000000 0xAFFFFFFF}] \
                segments [list {SAXIGP2/HP0_DDR_LOW S_AXI_HP0_FPD}] \
                clocks [list {pl_clk0 PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ}] \
                widths [list {S_AXI_HP0_FPD PSU__SAXIGP2__DATA_WIDTH}]]
        }
        xilinx.com:ip:axi_dma:* {
            return [list \
                intf [list {S_AXI_LITE slave aximm} {M_AXI_MM2S master aximm} {M_AXI_S2MM master aximm} \
                           {M_AXIS_MM2S master axis} {S_AXIS_S2MM slave axis}] \
                pins [list {s_axi_lite_aclk in clk} {m_axi_mm2s_aclk in clk} {m_axi_s2mm_aclk in clk} \
                           {axi_resetn in rst} {mm2s_introut out irq optional} {s2mm_introut out irq optional}] \
                spaces [list {Data_MM2S M_AXI_MM2S 0x00000000 0xFFFFFFFF} {Data_S2MM M_AXI_S2MM 0x00000000 0xFFFFFFFF}] \
                segments [list {S_AXI_LITE/Reg S_AXI_LITE}] clocks {} widths {}]
        }
        xilinx.com:ip:smartconnect:* {
            set intf {}
            for {set i 0} {$i < [getcfg $cell NUM_SI 1]} {incr i} { lappend intf [list [format S%02d_AXI $i] slave aximm] }
            for {set i 0} {$i < [getcfg $cell NUM_MI 1]} {incr i} { lappend intf [list [format M%02d_AXI $i] master aximm] }
            return [list intf $intf pins [list {aclk in clk} {aresetn in rst}] spaces {} segments {} clocks {} \
                        widths {} crossbar 1]
        }
        xilinx.com:ip:proc_sys_reset:* {
            return [list intf {} \
                pins [list {slowest_sync_clk in clk} {ext_reset_in in rst} {peripheral_aresetn out rst optional} \
                           {interconnect_aresetn out rst optional} {peripheral_reset out rst optional}] \
                spaces {} segments {} clocks {} widths {}]
        }
        xilinx.com:hls:edge_top:* {
            # the port names Vitis HLS gives edge_top(in_stream, out_stream, frames) with an s_axilite control
            return [list \
                intf [list {in_stream slave axis} {out_stream master axis} {s_axi_control slave aximm}] \
                pins [list {ap_clk in clk} {ap_rst_n in rst} {interrupt out irq optional}] \
                spaces {} segments [list {s_axi_control/Reg s_axi_control}] clocks {} widths {}]
        }
    }
    return {}
}

proc getcfg {cell prop {default ""}} {
    if {[info exists ::cfg($cell,$prop)]} { return $::cfg($cell,$prop) }
    return $default
}

proc enabled {cell entry} {
    # an entry's 4th field names the CONFIG property that must be 1 for the port to exist
    if {[llength $entry] < 4 || [lindex $entry 3] eq "optional"} { return 1 }
    return [expr {[getcfg $cell [lindex $entry 3] 0] eq "1"}]
}

proc info_of {cell key} {
    set c [catalog $::cells($cell) $cell]
    if {[dict exists $c $key]} { return [dict get $c $key] }
    return {}
}

proc find_entry {cell key name} {
    foreach e [info_of $cell $key] { if {[lindex $e 0] eq $name} { return $e } }
    return {}
}

# --- project and catalog commands (recorded or no-ops) ---
proc create_project {args} { puts "project $args" }
proc current_project {args} { return project }
proc get_board_parts {args} { return [lindex $args end] }
proc update_ip_catalog {args} {}
proc create_bd_design {name} { puts "bd_design $name" }
proc save_bd_design {args} {}
proc get_bd_cells {name} {
    if {![info exists ::cells($name)]} { problem "get_bd_cells: no cell $name" }
    return [list cell $name]
}
proc create_bd_cell {args} {
    set vlnv [lindex $args [expr {[lsearch $args -vlnv] + 1}]]
    set name [lindex $args end]
    if {[info exists ::cells($name)]} { problem "create_bd_cell: $name exists" }
    set ::cells($name) $vlnv
    if {[catalog $vlnv $name] eq {}} { problem "create_bd_cell: $vlnv is not in the IP catalog" }
    return [list cell $name]
}
proc set_property {args} {
    if {[lindex $args 0] eq "-dict"} {
        set pairs [lindex $args 1]
        set obj [lindex $args 2]
    } else {
        set pairs [list [lindex $args 0] [lindex $args 1]]
        set obj [lindex $args 2]
    }
    if {[lindex $obj 0] ne "cell"} { return }
    foreach {k v} $pairs {
        if {![string match CONFIG.* $k]} { problem "set_property: $k is not a CONFIG property"; continue }
        set ::cfg([lindex $obj 1],[string range $k 7 end]) $v
    }
}
proc apply_bd_automation {args} {
    set rule [lindex $args [expr {[lsearch $args -rule] + 1}]]
    set obj [lindex $args end]
    set cell [lindex $obj 1]
    if {![string match "*[lindex [split $::cells($cell) :] 2]" $rule]} {
        problem "apply_bd_automation: rule $rule does not apply to $::cells($cell)"
    }
    puts "automation $rule on $cell"
}
proc get_bd_intf_pins {path} {
    lassign [split $path /] cell pin
    if {![info exists ::cells($cell)]} { problem "get_bd_intf_pins: no cell $cell"; return [list intf $path {} {}] }
    set e [find_entry $cell intf $pin]
    if {$e eq {}} { problem "get_bd_intf_pins: $::cells($cell) has no interface $pin"; return [list intf $path {} {}] }
    if {![enabled $cell $e]} { problem "get_bd_intf_pins: $path is not enabled (CONFIG.[lindex $e 3] != 1)" }
    return [list intf $path [lindex $e 1] [lindex $e 2]]
}
proc get_bd_pins {path} {
    lassign [split $path /] cell pin
    if {![info exists ::cells($cell)]} { problem "get_bd_pins: no cell $cell"; return [list pin $path {} {}] }
    set e [find_entry $cell pins $pin]
    if {$e eq {}} { problem "get_bd_pins: $::cells($cell) has no pin $pin"; return [list pin $path {} {}] }
    if {![enabled $cell $e]} { problem "get_bd_pins: $path is not enabled (CONFIG.[lindex $e 3] != 1)" }
    return [list pin $path [lindex $e 1] [lindex $e 2]]
}
proc connect_bd_intf_net {a b} {
    lassign $a _ pa ma ka
    lassign $b _ pb mb kb
    if {$ka ne $kb} { problem "connect_bd_intf_net: $pa ($ka) and $pb ($kb) are different kinds" }
    if {[lsort [list $ma $mb]] ne {master slave}} { problem "connect_bd_intf_net: $pa ($ma) to $pb ($mb)" }
    foreach p [list $pa $pb] {
        foreach n $::intf_nets { if {[lsearch $n $p] >= 0} { problem "connect_bd_intf_net: $p connected twice" } }
    }
    if {$ma eq "master"} { lappend ::intf_nets [list $pa $pb $ka] } else { lappend ::intf_nets [list $pb $pa $ka] }
}
proc connect_bd_net {args} {
    set drivers {}
    set pins {}
    set kinds {}
    foreach p $args {
        lassign $p _ path dir kind
        lappend pins $path
        lappend kinds $kind
        if {$dir eq "out"} { lappend drivers $path }
    }
    if {[llength $drivers] != 1} { problem "connect_bd_net: [llength $drivers] drivers on a net of $pins" }
    if {[llength [lsort -unique $kinds]] != 1} { problem "connect_bd_net: mixed pin kinds ($kinds) on $pins" }
    foreach p $pins { foreach n $::nets { if {[lsearch $n $p] >= 0} { problem "connect_bd_net: $p on two nets" } } }
    lappend ::nets [concat $drivers [lsearch -all -inline -not -exact $pins [lindex $drivers 0]]]
}
proc get_bd_addr_spaces {path} { return [list space $path] }
proc get_bd_addr_segs {path} { return [list seg $path] }
proc parse_range {r} {
    if {[regexp {^([0-9]+)([KMG])$} $r _ n u]} { return [expr {$n * ($u eq "K" ? 1024 : ($u eq "M" ? 1048576 : 1073741824))}] }
    return [expr {$r}]
}
proc assign_bd_address {args} {
    set space [lindex [lindex $args [expr {[lsearch $args -target_address_space] + 1}]] 1]
    set offset [lindex $args [expr {[lsearch $args -offset] + 1}]]
    set range [lindex $args [expr {[lsearch $args -range] + 1}]]
    set seg [lindex [lindex $args end] 1]
    lappend ::addresses [list $space $seg $offset $range]
}

# --- checks ---
proc slave_intf_of_segment {seg} {
    set parts [split $seg /]
    set cell [lindex $parts 0]
    set name [join [lrange $parts 1 end] /]
    foreach e [info_of $cell segments] { if {[lindex $e 0] eq $name} { return "$cell/[lindex $e 1]" } }
    problem "address segment $seg does not exist"
    return {}
}
proc reachable {master target} {
    # follow intf nets from a master port; a crossbar (SmartConnect) passes any slave port to all its masters
    set frontier [list $master]
    set seen {}
    while {[llength $frontier]} {
        set m [lindex $frontier 0]
        set frontier [lrange $frontier 1 end]
        if {[lsearch $seen $m] >= 0} { continue }
        lappend seen $m
        foreach n $::intf_nets {
            if {[lindex $n 0] ne $m} { continue }
            set s [lindex $n 1]
            if {$s eq $target} { return 1 }
            set cell [lindex [split $s /] 0]
            if {[dict exists [catalog $::cells($cell) $cell] crossbar]} {
                foreach e [info_of $cell intf] { if {[lindex $e 1] eq "master"} { lappend frontier "$cell/[lindex $e 0]" } }
            }
        }
    }
    return 0
}
proc validate_bd_design {} {
    set ::validated 1
    # every interface and input pin of every cell connected
    foreach cell [lsort [array names ::cells]] {
        foreach e [info_of $cell intf] {
            if {[lindex $e 1] eq "external" || ![enabled $cell $e]} { continue }
            set p "$cell/[lindex $e 0]"
            set found 0
            foreach n $::intf_nets { if {[lsearch -exact [lrange $n 0 1] $p] >= 0} { set found 1 } }
            if {!$found} { problem "interface $p is not connected" }
        }
        foreach e [info_of $cell pins] {
            if {[lindex $e 1] ne "in" || ![enabled $cell $e]} { continue }
            set p "$cell/[lindex $e 0]"
            set found 0
            foreach n $::nets { if {[lsearch -exact $n $p] >= 0} { set found 1 } }
            if {!$found} { problem "input pin $p ([lindex $e 2]) is not driven" }
        }
    }
    # one clock: every clock input on the same net
    set clock_nets {}
    foreach n $::nets {
        lassign [get_bd_pins [lindex $n 0]] _ _ _ kind
        if {$kind eq "clk"} { lappend clock_nets $n }
    }
    if {[llength $clock_nets] != 1} { problem "[llength $clock_nets] clock nets, expected one" }
    foreach n $clock_nets {
        lassign [split [lindex $n 0] /] cell pin
        foreach e [info_of $cell clocks] {
            if {[lindex $e 0] ne $pin} { continue }
            set mhz [getcfg $cell [lindex $e 1] {}]
            puts "clock [lindex $n 0] $mhz MHz drives [expr {[llength $n] - 1}] pins"
            if {$mhz eq "" || abs($mhz - $::want_mhz) > 1e-6} { problem "clock [lindex $n 0] is '$mhz' MHz, the build's is $::want_mhz" }
        }
    }
    # stream and memory widths
    foreach cell [array names ::cells] {
        if {![string match xilinx.com:ip:axi_dma:* $::cells($cell)]} { continue }
        foreach prop {c_m_axis_mm2s_tdata_width c_s_axis_s2mm_tdata_width c_m_axi_mm2s_data_width c_m_axi_s2mm_data_width} {
            if {[getcfg $cell $prop] ne $::want_bits} { problem "$cell CONFIG.$prop is '[getcfg $cell $prop]', the accelerator streams $::want_bits bits" }
        }
        if {[getcfg $cell c_include_sg 1] ne "0"} { problem "$cell: scatter-gather enabled; the driver uses simple mode" }
    }
    foreach cell [array names ::cells] {
        foreach e [info_of $cell widths] {
            set w [getcfg $cell [lindex $e 1] {}]
            if {$w ne $::want_bits} { problem "$cell/[lindex $e 0] data width '$w', the DMA's is $::want_bits" }
        }
    }
    # address map
    set assigned {}
    foreach a $::addresses {
        lassign $a space seg offset range
        lassign [split $space /] cell sp
        set entry {}
        foreach e [info_of $cell spaces] { if {[lindex $e 0] eq $sp} { set entry $e } }
        if {$entry eq {}} { problem "address space $space does not exist"; continue }
        lassign $entry _ master lo hi
        set slave [slave_intf_of_segment $seg]
        if {$slave eq {}} { continue }
        set size [parse_range $range]
        if {$offset < $lo || $offset + $size - 1 > $hi} { problem "$seg at $offset +$range lies outside $space ($lo..$hi)" }
        if {$offset % $size} { problem "$seg at $offset is not aligned to its range $range" }
        if {![reachable "$cell/$master" $slave]} { problem "$seg is not reachable from $space ($cell/$master)" }
        foreach b $assigned {
            lassign $b s2 seg2 o2 z2
            if {$s2 eq $space && $offset < $o2 + $z2 && $o2 < $offset + $size} { problem "$seg overlaps $seg2 in $space" }
        }
        lappend assigned [list $space $seg $offset $size]
        puts [format "address %-28s %-34s %s %s" $space $seg $offset $range]
    }
    # every control slave reachable from a PS address space has an address
    foreach cell [array names ::cells] {
        foreach e [info_of $cell segments] {
            set seg "$cell/[lindex $e 0]"
            set slave "$cell/[lindex $e 1]"
            foreach other [array names ::cells] {
                foreach s [info_of $other spaces] {
                    set space "$other/[lindex $s 0]"
                    if {[reachable "$other/[lindex $s 1]" $slave]} {
                        set ok 0
                        foreach b $assigned { if {[lindex $b 0] eq $space && [lindex $b 1] eq $seg} { set ok 1 } }
                        if {!$ok} { problem "$seg is reachable from $space but has no address" }
                    }
                }
            }
        }
    }
}

if {[catch {source $script} err]} {
    problem "error in [file tail $script]: $err"
}
if {!$validated} { problem "the script never calls validate_bd_design" }
foreach cell [lsort [array names cells]] { puts [format "cell    %-20s %s" $cell $cells($cell)] }
foreach n $intf_nets { puts [format "connect %-34s -> %-34s (%s)" [lindex $n 0] [lindex $n 1] [lindex $n 2]] }
foreach n $nets { puts "net     [lindex $n 0] -> [lrange $n 1 end]" }
if {[llength $problems]} {
    foreach p $problems { puts "FAIL: $p" }
    exit 1
}
puts "PASS: [array size cells] cells, [llength $intf_nets] interface connections, [llength $nets] nets, [llength $addresses] address segments"
exit 0
