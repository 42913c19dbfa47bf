// Nearest-neighbour upsampling by integer factors (FH, FW): every pixel repeated FW times along a row and every row
// FH times. Words are opaque (PE channels each, CF = C/PE words per pixel). Two row buffers in turn (edge_rowpp):
// one fills with the next input row while the other's FH output rows leave, one word per cycle.
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
    logic wr, wr_bank, rd, rd_bank;
    logic [$clog2(ROW+1)-1:0] wr_idx;
    logic [$clog2(FH+1)-1:0] ry;
    logic [$clog2(W+1)-1:0] px;
    logic [$clog2(FW+1)-1:0] rx;
    logic [$clog2(CF+1)-1:0] cf;
    edge_rowpp #(.WIN(ROW), .RY(FH), .W(W), .RX(FW), .CF(CF)) u_ctrl (
        .clk(clk), .rst_n(rst_n), .in_valid(in_valid), .in_ready(in_ready), .wr(wr), .wr_bank(wr_bank),
        .wr_idx(wr_idx), .out_valid(out_valid), .out_ready(out_ready), .rd(rd), .rd_bank(rd_bank), .ry(ry), .px(px),
        .rx(rx), .cf(cf));

    always_ff @(posedge clk) begin
        if (wr) mem[int'(wr_bank) * ROW + int'(wr_idx)] <= in_data;
        if (rd) out_data <= mem[int'(rd_bank) * ROW + int'(px) * CF + int'(cf)];
    end
endmodule
