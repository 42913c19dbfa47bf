// Thresholding: requantises a stream channel by channel (FINN's Thresholding), PE channels per word.
// Channels are visited in NF = C/PE folds, one word per cycle; the threshold ROM word of fold nf holds, per PE p,
// LEVELS thresholds of TB bits at [(p*LEVELS + l)*TB +: TB] and the descending flag at bit PE*LEVELS*TB + p.
// out = BASE + STEP * #{l : x >= T} (x <= T for a descending channel); bipolar outputs are the count's bit.
// The ROM stage (edge_foldrom) reads synchronously (a registered read port, block RAM when large).
module edge_thresholding #(
    parameter int C = 4,
    parameter int PE = 1,
    parameter int IB = 8,            // input element bits
    parameter bit IN_SIGNED = 1,
    parameter int TB = 9,            // threshold bits (signed): the input range +-1
    parameter int LEVELS = 1,
    parameter int OB = 4,
    parameter bit OUT_BIPOLAR = 0,
    parameter int BASE = 0,
    parameter int STEP = 1,
    parameter STYLE = "block",        // rom_style of the table (edge_foldrom)
    parameter THRESHOLDS = "thresholds.mem",
    localparam int NF = C / PE,
    localparam int TW = PE * LEVELS * TB + PE
) (
    input  logic               clk,
    input  logic               rst_n,
    input  logic               in_valid,
    output logic               in_ready,
    input  logic [PE*IB-1:0]   in_data,
    output logic               out_valid,
    input  logic               out_ready,
    output logic [PE*OB-1:0]   out_data
);
    logic fire;
    logic [TW-1:0] tword;
    edge_foldrom #(.NF(NF), .TW(TW), .ROM(THRESHOLDS), .STYLE(STYLE)) u_rom (
        .clk(clk), .rst_n(rst_n), .in_valid(in_valid), .in_ready(in_ready), .out_valid(out_valid),
        .out_ready(out_ready), .fire(fire), .row(tword));

    function automatic signed [TB:0] x_value(input [IB-1:0] b);
        if (IN_SIGNED) x_value = $signed(b);
        else x_value = {1'b0, b};
    endfunction

    localparam int LVL_TB = TB;
    `include "edge_levels.svh"

    logic [PE*OB-1:0] result;
    always_comb
        for (int p = 0; p < PE; p++) result[p*OB +: OB] = level_of(64'(x_value(in_data[p*IB +: IB])), tword, p);

    always_ff @(posedge clk)
        if (fire) out_data <= result;
endmodule
