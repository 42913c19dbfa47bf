// AddConstant: a stream plus a constant table of the same scale (a learned position embedding, BERT's position and
// token-type rows), PE elements per word. The table ROM holds one word per input word of a frame (VECTORS * C/PE
// words, PE signed TB-bit entries each, entry p at [p*TB +: TB]), read in stream order by edge_foldrom.
// One word per cycle.
module edge_addconst #(
    parameter int C = 4,
    parameter int PE = 1,
    parameter int VECTORS = 1,
    parameter int IB = 4,            // input element bits
    parameter bit IN_SIGNED = 0,
    parameter int TB = 4,            // table entry bits (two's complement)
    parameter int OB = 5,            // output element bits (two's complement low bits of the sum)
    parameter STYLE = "block",        // rom_style of the table (edge_foldrom)
    parameter TABLE = "table.mem",
    localparam int NF = VECTORS * (C / PE),
    localparam int TW = PE * TB
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
    logic [TW-1:0] row;
    edge_foldrom #(.NF(NF), .TW(TW), .ROM(TABLE), .STYLE(STYLE)) u_rom (
        .clk(clk), .rst_n(rst_n), .in_valid(in_valid), .in_ready(in_ready), .out_valid(out_valid),
        .out_ready(out_ready), .fire(fire), .row(row));

    logic [PE*OB-1:0] result;
    logic signed [31:0] a, t, s;
    always_comb begin
        for (int p = 0; p < PE; p++) begin
            a = IN_SIGNED ? $signed(in_data[p*IB +: IB]) : $signed({1'b0, in_data[p*IB +: IB]});
            t = $signed(row[p*TB +: TB]);
            s = a + t;
            result[p*OB +: OB] = s[OB-1:0];
        end
    end

    always_ff @(posedge clk)
        if (fire) out_data <= result;
endmodule
