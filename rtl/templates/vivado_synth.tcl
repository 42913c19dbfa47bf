# Out-of-context synthesis of the generated RTL top, run by `edge build --backend rtl --synth` when vivado is on
# PATH: vivado -mode batch -source vivado_synth.tcl -tclargs PART TOP. The sources, headers and ROM files sit in
# the working directory (the kernels read their ROMs with $readmemh relative to it).
lassign $argv part top
foreach source [lsort [glob -nocomplain *.sv]] {
    read_verilog -sv $source
}
synth_design -top $top -part $part -mode out_of_context -include_dirs [list [pwd]]
report_utilization -file utilization.rpt
report_utilization -hierarchical -file utilization_hierarchical.rpt
