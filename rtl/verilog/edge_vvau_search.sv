// VVAU with thresholds searched (16 levels and more): edge_vvau without thresholds (its accumulators, VB bits)
// into edge_thrsearch. The VVAU's parameters pass through; the search's carry an S_ prefix (see edge_thrsearch).
module edge_vvau_search #(
    parameter int C = 4,
    parameter int K = 9,
    parameter int PE = 1,
    parameter int SIMD = 1,
    parameter int IB = 4,
    parameter int WB = 4,
    parameter int AB = 16,
    parameter int OB = 16,           // the VVAU's output: its accumulator (VB = OB)
    parameter int LEVELS = 0,
    parameter bit IN_SIGNED = 0,
    parameter bit IN_BIPOLAR = 0,
    parameter bit W_BIPOLAR = 0,
    parameter bit USE_DSP = 0,
    parameter WEIGHTS = "weights.mem",
    parameter WSTYLE = "block",
    `include "edge_search_params.svh"
) (
    input  logic                    clk,
    input  logic                    rst_n,
    input  logic                    in_valid,
    output logic                    in_ready,
    input  logic [SIMD*PE*IB-1:0]   in_data,
    output logic                    out_valid,
    input  logic                    out_ready,
    output logic [PE*S_OB-1:0]      out_data
);
    logic v_valid, v_ready;
    logic [PE*VB-1:0] v_data;
    edge_vvau #(.C(C), .K(K), .PE(PE), .SIMD(SIMD), .IB(IB), .WB(WB), .AB(AB), .OB(VB), .LEVELS(0),
                .IN_SIGNED(IN_SIGNED), .IN_BIPOLAR(IN_BIPOLAR), .W_BIPOLAR(W_BIPOLAR), .USE_DSP(USE_DSP),
                .WEIGHTS(WEIGHTS), .WSTYLE(WSTYLE)) u_vvau (
        .clk(clk), .rst_n(rst_n), .in_valid(in_valid), .in_ready(in_ready), .in_data(in_data),
        .out_valid(v_valid), .out_ready(v_ready), .out_data(v_data));
    localparam int SEARCH_C = C;
    `include "edge_search_stage.svh"
endmodule
