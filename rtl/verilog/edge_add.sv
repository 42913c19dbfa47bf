// AddStreams: element-wise sum of two streams of the same scale (a residual join), PE elements per word. A word
// leaves when both inputs have one; the sum is registered. One word per cycle.
module edge_add #(
    parameter int PE = 1,
    parameter int AB = 4,            // bits of an element of input 0
    parameter bit A_SIGNED = 0,
    parameter int BB = 4,            // of input 1
    parameter bit B_SIGNED = 0,
    parameter int OB = 5             // of the output (two's complement low bits of the sum)
) (
    input  logic               clk,
    input  logic               rst_n,
    input  logic               in0_valid,
    output logic               in0_ready,
    input  logic [PE*AB-1:0]   in0_data,
    input  logic               in1_valid,
    output logic               in1_ready,
    input  logic [PE*BB-1:0]   in1_data,
    output logic               out_valid,
    input  logic               out_ready,
    output logic [PE*OB-1:0]   out_data
);
    wire room = !out_valid || out_ready;
    wire fire = in0_valid && in1_valid && room;
    assign in0_ready = in1_valid && room;
    assign in1_ready = in0_valid && room;

    logic [PE*OB-1:0] sum;
    logic signed [31:0] a, b, s;
    always_comb begin
        for (int p = 0; p < PE; p++) begin
            a = A_SIGNED ? $signed(in0_data[p*AB +: AB]) : $signed({1'b0, in0_data[p*AB +: AB]});
            b = B_SIGNED ? $signed(in1_data[p*BB +: BB]) : $signed({1'b0, in1_data[p*BB +: BB]});
            s = a + b;
            sum[p*OB +: OB] = s[OB-1:0];
        end
    end

    always_ff @(posedge clk) begin
        if (!rst_n) out_valid <= 1'b0;
        else begin
            if (out_valid && out_ready) out_valid <= 1'b0;
            if (fire) begin
                out_data <= sum;
                out_valid <= 1'b1;
            end
        end
    end
endmodule
