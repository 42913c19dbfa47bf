"""RTL backend: hand-written, parameterised SystemVerilog kernels (verilog/), their ROM files and parameters from the
dataflow IR, and Verilator simulation with ready/valid back-pressure."""
