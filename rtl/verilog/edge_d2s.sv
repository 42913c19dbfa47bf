// DepthToSpace (PixelShuffle): each input pixel's C*R*R channels become an R x R patch of output pixels with C
// channels. CRD (PyTorch) takes output channel c of patch (i, j) from input channel c*R*R + i*R + j, DCR
// (TensorFlow) from (i*R + j)*C + c. PE elements per word on both sides. Two row buffers (element-addressed) in
// turn: one fills with the next input row while the R output rows of the other leave, one word per cycle.
module edge_d2s #(
    parameter int W = 4,             // input pixels per row
    parameter int C = 1,             // output channels
    parameter int R = 2,             // block size
    parameter int PE = 1,
    parameter int B = 4,             // bits of an element
    parameter bit CRD = 1,
    localparam int CIN = C * R * R,
    localparam int ROW = W * CIN,    // elements of an input row
    localparam int WIN = ROW / PE,   // input words per row
    localparam int CF = C / PE       // output words per output pixel
) (
    input  logic              clk,
    input  logic              rst_n,
    input  logic              in_valid,
    output logic              in_ready,
    input  logic [PE*B-1:0]   in_data,
    output logic              out_valid,
    input  logic              out_ready,
    output logic [PE*B-1:0]   out_data
);
    logic [B-1:0] mem [0:2*ROW-1];
    logic [1:0] full;
    logic wr_bank, rd_bank;
    logic [$clog2(WIN+1)-1:0] wr_idx;
    // output position: patch row i, input pixel x, patch column j, word cw of the output pixel
    logic [$clog2(R+1)-1:0] i, j;
    logic [$clog2(W+1)-1:0] x;
    logic [$clog2(CF+1)-1:0] cw;

    assign in_ready = !full[wr_bank];
    wire wr = in_valid && in_ready;
    wire room = !out_valid || out_ready;
    wire rd = full[rd_bank] && room;
    wire last_word = cw == CF - 1, last_j = j == R - 1, last_x = x == W - 1, last_i = i == R - 1;

    logic [PE*B-1:0] gathered;
    int c, src;
    always_comb begin
        for (int p = 0; p < PE; p++) begin
            c = int'(cw) * PE + p;
            src = CRD ? c * R * R + int'(i) * R + int'(j) : (int'(i) * R + int'(j)) * C + c;
            gathered[p*B +: B] = mem[int'(rd_bank) * ROW + int'(x) * CIN + src];
        end
    end

    always_ff @(posedge clk) begin
        if (wr) begin
            for (int p = 0; p < PE; p++) mem[int'(wr_bank) * ROW + int'(wr_idx) * PE + p] <= in_data[p*B +: B];
        end
        if (rd) out_data <= gathered;
        if (!rst_n) begin
            full <= '0;
            wr_bank <= 1'b0;
            rd_bank <= 1'b0;
            wr_idx <= '0;
            {i, x, j, cw} <= '0;
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
                cw <= last_word ? '0 : cw + 1'b1;
                if (last_word) begin
                    j <= last_j ? '0 : j + 1'b1;
                    if (last_j) begin
                        x <= last_x ? '0 : x + 1'b1;
                        if (last_x) begin
                            i <= last_i ? '0 : i + 1'b1;
                            if (last_i) begin
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
