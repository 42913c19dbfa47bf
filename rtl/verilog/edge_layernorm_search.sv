// LayerNorm with thresholds searched (16 levels and more): edge_layernorm without thresholds (z, VB bits) into
// edge_thrsearch. The LayerNorm's parameters pass through; the search's carry an S_ prefix (see edge_thrsearch).
module edge_layernorm_search #(
    parameter int C = 4,
    parameter int PE = 1,
    parameter int IB = 8,
    parameter bit IN_SIGNED = 1,
    parameter int F = 16,
    parameter int TB = 24,
    parameter int LEVELS = 0,
    parameter int OB = 24,           // the LayerNorm's output: z (VB = OB = TB)
    parameter bit OUT_BIPOLAR = 0,
    parameter int BASE = 0,
    parameter int STEP = 1,
    parameter THRESHOLDS = "thresholds.mem",
    parameter EPS = "eps.mem",
    parameter int EPB = 64,
    parameter int DS = 4,
    `include "edge_search_params.svh"
) (
    input  logic               clk,
    input  logic               rst_n,
    input  logic               in_valid,
    output logic               in_ready,
    input  logic [PE*IB-1:0]   in_data,
    output logic               out_valid,
    input  logic               out_ready,
    output logic [PE*S_OB-1:0] out_data
);
    logic v_valid, v_ready;
    logic [PE*VB-1:0] v_data;
    edge_layernorm #(.C(C), .PE(PE), .IB(IB), .IN_SIGNED(IN_SIGNED), .F(F), .TB(TB), .LEVELS(0), .OB(VB),
                     .THRESHOLDS(THRESHOLDS), .EPS(EPS), .EPB(EPB), .DS(DS)) u_layernorm (
        .clk(clk), .rst_n(rst_n), .in_valid(in_valid), .in_ready(in_ready), .in_data(in_data),
        .out_valid(v_valid), .out_ready(v_ready), .out_data(v_data));
    localparam int SEARCH_C = C;
    `include "edge_search_stage.svh"
endmodule
