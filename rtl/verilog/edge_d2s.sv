// DepthToSpace (PixelShuffle): each input pixel's C*R*R channels become an R x R patch of output pixels with C
// channels. CRD (PyTorch) takes output channel c of patch (i, j) from input channel c*R*R + i*R + j, DCR
// (TensorFlow) from (i*R + j)*C + c. PE elements per word on both sides. Two element-addressed row buffers in turn
// (edge_rowpp): one fills with the next input row while the R output rows of the other leave, one word per cycle.
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
    logic wr, wr_bank, rd, rd_bank;
    logic [$clog2(WIN+1)-1:0] wr_idx;
    // output position: patch row i, input pixel x, patch column j, word cw of the output pixel
    logic [$clog2(R+1)-1:0] i, j;
    logic [$clog2(W+1)-1:0] x;
    logic [$clog2(CF+1)-1:0] cw;
    edge_rowpp #(.WIN(WIN), .RY(R), .W(W), .RX(R), .CF(CF)) u_ctrl (
        .clk(clk), .rst_n(rst_n), .in_valid(in_valid), .in_ready(in_ready), .wr(wr), .wr_bank(wr_bank),
        .wr_idx(wr_idx), .out_valid(out_valid), .out_ready(out_ready), .rd(rd), .rd_bank(rd_bank), .ry(i), .px(x),
        .rx(j), .cf(cw));

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
    end
endmodule
