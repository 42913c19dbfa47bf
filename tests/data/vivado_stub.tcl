# Stand-ins for the Vivado commands rtl/templates/vivado_synth.tcl uses, for tests on machines without Vivado
# (tests/test_rtl.py puts a `vivado` on PATH that runs tclsh with these first). They check what real Vivado would
# need: every source and every file it includes or reads with $readmemh in the working directory, the top, the part
# and out-of-context mode. The report has Vivado's layout and counts that the test can predict: 10 LUTs and 20
# registers per source read, 1.5 block RAM tiles, no DSPs.
set ::sources {}
proc read_verilog {args} {
    set f [lindex $args end]
    if {[lindex $args 0] ne "-sv"} { error "read_verilog without -sv: $args" }
    if {![file exists $f]} { error "read_verilog: no file $f" }
    set text [read [open $f]]
    foreach {_ inc} [regexp -all -inline {`include\s+"([^"]+)"} $text] {
        if {![file exists $inc]} { error "$f includes $inc, which is not in [pwd]" }
    }
    lappend ::sources $f
}
proc synth_design {args} {
    array set opt $args
    foreach key {-top -part -mode -include_dirs} {
        if {![info exists opt($key)]} { error "synth_design without $key" }
    }
    if {$opt(-mode) ne "out_of_context"} { error "synth_design -mode $opt(-mode)" }
    if {$opt(-part) ne $::env(EDGE_TEST_VIVADO_PART)} { error "synth_design -part $opt(-part)" }
    if {$opt(-top) ni [lmap f $::sources {file rootname $f}]} { error "synth_design: top $opt(-top) not read" }
    foreach mem [glob -nocomplain *.mem] { incr ::mems }
    if {![info exists ::mems]} { error "no ROM files beside the sources" }
}
proc report_utilization {args} {
    set file [lindex $args [expr {[lsearch $args -file] + 1}]]
    set out [open $file w]
    set n [llength $::sources]
    puts $out "1. Slice Logic\n--------------\n"
    puts $out "+----------------------------+------+-------+-----------+-------+"
    puts $out "|          Site Type         | Used | Fixed | Available | Util% |"
    puts $out "+----------------------------+------+-------+-----------+-------+"
    puts $out [format "| Slice LUTs*                | %4d |     0 |     53200 |  0.00 |" [expr {10 * $n}]]
    puts $out [format "|   LUT as Logic             | %4d |     0 |     53200 |  0.00 |" [expr {10 * $n}]]
    puts $out [format "| Slice Registers            | %4d |     0 |    106400 |  0.00 |" [expr {20 * $n}]]
    puts $out "+----------------------------+------+-------+-----------+-------+\n\n3. Memory\n---------\n"
    puts $out "| Block RAM Tile    |  1.5 |     0 |       140 |  1.07 |"
    puts $out "|   RAMB36/FIFO*    |    1 |     0 |       140 |  0.71 |"
    puts $out "\n4. DSP\n------\n"
    puts $out "| DSPs           |    0 |     0 |       220 |  0.00 |"
    close $out
}
