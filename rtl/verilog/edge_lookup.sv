// Lookup: an element-wise function of a low-bit stream as a table (GELU, SiLU, tanh, ... between two quantisers),
// PE channels per word, channels visited in NF = C/PE folds. The table ROM word of fold nf holds, per PE p, the
// LEVELS outputs (OB bits each) for input levels IN_MIN .. IN_MIN + LEVELS - 1 at [(p*LEVELS + l)*OB +: OB].
// The ROM stage is edge_foldrom (a registered read port). One word per cycle.
module edge_lookup #(
    parameter int C = 4,
    parameter int PE = 1,
    parameter int IB = 4,            // input element bits
    parameter bit IN_SIGNED = 0,
    parameter int IN_MIN = 0,        // the input level of table entry 0
    parameter int LEVELS = 16,
    parameter int OB = 4,            // output element bits (two's complement low bits of the table's value)
    parameter STYLE = "block",        // rom_style of the table (edge_foldrom)
    parameter TABLE = "table.mem",
    localparam int NF = C / PE,
    localparam int TW = PE * LEVELS * OB
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
    int level;
    always_comb begin
        for (int p = 0; p < PE; p++) begin
            level = (IN_SIGNED ? int'($signed(in_data[p*IB +: IB])) : int'(in_data[p*IB +: IB])) - IN_MIN;
            result[p*OB +: OB] = row[(p*LEVELS + level)*OB +: OB];
        end
    end

    always_ff @(posedge clk)
        if (fire) out_data <= result;
endmodule
