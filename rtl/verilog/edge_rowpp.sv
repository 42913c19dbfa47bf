// Row ping-pong control shared by the row-rearranging kernels (Upsample, DepthToSpace): two row buffers in turn,
// one filling with the next input row (WIN words) while the other is read RY times over, each of its W pixels
// giving RX output pixels of CF words. It owns the handshakes and the position; the kernel owns the memory, writes
// at (wr_bank, wr_idx) when `wr`, and registers its output word at (rd_bank, ry, px, rx, cf) when `rd`.
module edge_rowpp #(
    parameter int WIN = 4,           // input words per row
    parameter int RY = 2,            // output rows per input row
    parameter int W = 4,             // pixels per input row
    parameter int RX = 2,            // output pixels per input pixel
    parameter int CF = 1             // words per output pixel
) (
    input  logic                        clk,
    input  logic                        rst_n,
    input  logic                        in_valid,
    output logic                        in_ready,
    output logic                        wr,
    output logic                        wr_bank,
    output logic [$clog2(WIN+1)-1:0]    wr_idx,
    output logic                        out_valid,
    input  logic                        out_ready,
    output logic                        rd,
    output logic                        rd_bank,
    output logic [$clog2(RY+1)-1:0]     ry,
    output logic [$clog2(W+1)-1:0]      px,
    output logic [$clog2(RX+1)-1:0]     rx,
    output logic [$clog2(CF+1)-1:0]     cf
);
    logic [1:0] full;
    assign in_ready = !full[wr_bank];
    assign wr = in_valid && in_ready;
    assign rd = full[rd_bank] && (!out_valid || out_ready);
    wire last_word = cf == CF - 1, last_rx = rx == RX - 1, last_px = px == W - 1, last_ry = ry == RY - 1;

    always_ff @(posedge clk) begin
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
                if (wr_idx == WIN - 1) begin
                    wr_idx <= '0;
                    full[wr_bank] <= 1'b1;
                    wr_bank <= !wr_bank;
                end else wr_idx <= wr_idx + 1'b1;
            end
            if (rd) begin
                out_valid <= 1'b1;
                cf <= last_word ? '0 : cf + 1'b1;
                if (last_word) begin
                    rx <= last_rx ? '0 : rx + 1'b1;
                    if (last_rx) begin
                        px <= last_px ? '0 : px + 1'b1;
                        if (last_px) begin
                            ry <= last_ry ? '0 : ry + 1'b1;
                            if (last_ry) begin
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
