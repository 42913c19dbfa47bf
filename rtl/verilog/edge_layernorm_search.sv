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
    parameter int VB = 24,
    parameter int S_TB = 26,
    parameter int S_LEVELS = 255,
    parameter int S_OB = 8,
    parameter bit S_OUT_BIPOLAR = 0,
    parameter int S_BASE = 0,
    parameter int S_STEP = 1,
    parameter int S_BLOCK = 0,
    parameter SEARCH = "search",
    parameter DESC = "desc.mem"
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
    logic z_valid, z_ready;
    logic [PE*VB-1:0] z_data;
    edge_layernorm #(.C(C), .PE(PE), .IB(IB), .IN_SIGNED(IN_SIGNED), .F(F), .TB(TB), .LEVELS(0), .OB(VB),
                     .THRESHOLDS(THRESHOLDS), .EPS(EPS), .EPB(EPB), .DS(DS)) u_layernorm (
        .clk(clk), .rst_n(rst_n), .in_valid(in_valid), .in_ready(in_ready), .in_data(in_data),
        .out_valid(z_valid), .out_ready(z_ready), .out_data(z_data));
    edge_thrsearch #(.C(C), .PE(PE), .IB(VB), .IN_SIGNED(1), .TB(S_TB), .LEVELS(S_LEVELS), .OB(S_OB),
                     .OUT_BIPOLAR(S_OUT_BIPOLAR), .BASE(S_BASE), .STEP(S_STEP), .SEARCH(SEARCH), .DESC(DESC),
                     .BLOCK(S_BLOCK)) u_search (
        .clk(clk), .rst_n(rst_n), .in_valid(z_valid), .in_ready(z_ready), .in_data(z_data),
        .out_valid(out_valid), .out_ready(out_ready), .out_data(out_data));
endmodule
