// Global accumulation pool (FINN's GlobalAccPool): per channel, the sum over all N pixels of a frame (the average's
// 1/N folds into the next thresholds). Pixels arrive in order, PE channels per word (CF = C/PE words per pixel);
// CF words of PE sums are kept, and on the last pixel each word leaves with its sums. One word per cycle.
module edge_gap #(
    parameter int N = 4,             // pixels per frame
    parameter int C = 4,
    parameter int PE = 1,
    parameter int IB = 4,
    parameter bit IN_SIGNED = 0,
    parameter int OB = 8,            // output (sum) bits, two's complement
    localparam int CF = C / PE
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
    logic [PE*OB-1:0] sums [0:CF-1];
    logic [$clog2(N+1)-1:0] n;
    logic [$clog2(CF+1)-1:0] cf;

    wire last = (n == N - 1);
    wire room = !last || !out_valid || out_ready;
    wire fire = in_valid && room;
    assign in_ready = room;

    logic [PE*OB-1:0] next;
    logic signed [OB:0] x, s;
    always_comb begin
        for (int p = 0; p < PE; p++) begin
            x = IN_SIGNED ? $signed(in_data[p*IB +: IB]) : $signed({1'b0, in_data[p*IB +: IB]});
            s = (n == 0) ? '0 : $signed(sums[cf][p*OB +: OB]);
            s = s + x;
            next[p*OB +: OB] = s[OB-1:0];
        end
    end

    always_ff @(posedge clk) begin
        if (fire) sums[cf] <= next;
        if (!rst_n) begin
            n <= '0;
            cf <= '0;
            out_valid <= 1'b0;
        end else begin
            if (out_valid && out_ready) out_valid <= 1'b0;
            if (fire) begin
                if (last) begin
                    out_data <= next;
                    out_valid <= 1'b1;
                end
                if (cf == CF - 1) begin
                    cf <= '0;
                    n <= last ? '0 : n + 1'b1;
                end else begin
                    cf <= cf + 1'b1;
                end
            end
        end
    end
endmodule
