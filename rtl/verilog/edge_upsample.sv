// Nearest-neighbour upsampling by integer factors (FH, FW): every pixel repeated FW times along a row and every row
// FH times. Words are opaque (PE channels each, CF = C/PE words per pixel). Two row buffers in turn: one fills
// with the next input row while the other's FH output rows leave, so the output runs at one word per cycle.
module edge_upsample #(
    parameter int W = 4,             // input pixels per row
    parameter int C = 4,
    parameter int PE = 1,
    parameter int WB = 4,            // bits of a word (PE elements)
    parameter int FH = 2,
    parameter int FW = 2,
    localparam int CF = C / PE,
    localparam int ROW = W * CF      // words of an input row
) (
    input  logic            clk,
    input  logic            rst_n,
    input  logic            in_valid,
    output logic            in_ready,
    input  logic [WB-1:0]   in_data,
    output logic            out_valid,
    input  logic            out_ready,
    output logic [WB-1:0]   out_data
);
    logic [WB-1:0] mem [0:2*ROW-1];
    logic [1:0] full;
    logic wr_bank, rd_bank;
    logic [$clog2(ROW+1)-1:0] wr_idx;
    // output position: row repeat, pixel, pixel repeat, word of the pixel
    logic [$clog2(FH+1)-1:0] ry;
    logic [$clog2(W+1)-1:0] px;
    logic [$clog2(FW+1)-1:0] rx;
    logic [$clog2(CF+1)-1:0] cf;

    assign in_ready = !full[wr_bank];
    wire wr = in_valid && in_ready;
    wire room = !out_valid || out_ready;
    wire rd = full[rd_bank] && room;
    wire last_word = cf == CF - 1, last_rep = rx == FW - 1, last_px = px == W - 1, last_row = ry == FH - 1;

    always_ff @(posedge clk) begin
        if (wr) mem[wr_bank * ROW + wr_idx] <= in_data;
        if (rd) out_data <= mem[rd_bank * ROW + px * CF + cf];
        if (!rst_n) begin
            full <= '0;
            wr_bank <= 1'b0;
            rd_bank <= 1'b0;
            wr_idx <= '0;
            {ry, px, rx, cf} <= '0;
            out_valid <= 1'b0;
        end else begin
            if (out_valid && out_ready) out_valid <= 1'b0;
            if (wr) begin
                if (wr_idx == ROW - 1) begin
                    wr_idx <= '0;
                    full[wr_bank] <= 1'b1;
                    wr_bank <= !wr_bank;
                end else wr_idx <= wr_idx + 1'b1;
            end
            if (rd) begin
                out_valid <= 1'b1;
                cf <= last_word ? '0 : cf + 1'b1;
                if (last_word) begin
                    rx <= last_rep ? '0 : rx + 1'b1;
                    if (last_rep) begin
                        px <= last_px ? '0 : px + 1'b1;
                        if (last_px) begin
                            ry <= last_row ? '0 : ry + 1'b1;
                            if (last_row) begin
                                full[rd_bank] <= 1'b0;
                                rd_bank <= !rd_bank;
                            end
                        end
                    end
                end
            end
        end
    end
endmodule
