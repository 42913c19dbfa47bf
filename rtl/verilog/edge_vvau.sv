// VVAU: vector-vector-activation unit for depthwise convolution (FINN vocabulary). Each output pixel's window
// arrives as K taps of C channels in (tap, channel) order, PE channels per word (CF = C/PE words per tap) or, with
// SIMD > 1 (only when PE = C), SIMD taps of all channels per word (element t*PE + p: tap t, channel p); channel c
// accumulates sum_k W[c, k] * x[k, c] in its own accumulator (CF words of PE accumulators), and on the last step
// the PE sums leave, thresholded or as accumulators. One word per cycle (II=1), K/SIMD words per channel fold.
// Weights: ROM word (ks*CF + cf) holds SIMD*PE weights, tap t of PE p at [(t*PE + p)*WB +: WB]. Thresholds: ROM
// word cf as in edge_mvau.
// Both ROMs are read through a registered port, loaded with the next step's word when a step fires.
module edge_vvau #(
    parameter int C = 4,
    parameter int K = 9,
    parameter int PE = 1,
    parameter int SIMD = 1,
    parameter int IB = 4,
    parameter int WB = 4,
    parameter int AB = 16,
    parameter int OB = 4,
    parameter int LEVELS = 0,
    parameter bit IN_SIGNED = 0,
    parameter bit IN_BIPOLAR = 0,
    parameter bit W_BIPOLAR = 0,
    parameter bit USE_DSP = 0,
    parameter bit OUT_BIPOLAR = 0,
    parameter int BASE = 0,
    parameter int STEP = 1,
    parameter WEIGHTS = "weights.mem",
    parameter THRESHOLDS = "thresholds.mem",
    parameter WSTYLE = "block",       // rom_style of the weight ROM: "block" (block RAM) or "logic" (LUTs)
    parameter TSTYLE = "block",       // rom_style of the threshold ROM
    localparam int CF = C / PE,
    localparam int KS = K / SIMD,
    localparam int TW = PE * LEVELS * AB + PE
) (
    input  logic               clk,
    input  logic               rst_n,
    input  logic               in_valid,
    output logic               in_ready,
    input  logic [SIMD*PE*IB-1:0] in_data,
    output logic               out_valid,
    input  logic               out_ready,
    output logic [PE*OB-1:0]   out_data
);
    (* rom_style = WSTYLE *) logic [SIMD*PE*WB-1:0] wrom [0:KS*CF-1];
    (* rom_style = TSTYLE *) logic [TW-1:0] trom [0:CF-1];
    initial begin
        $readmemh(WEIGHTS, wrom);
        if (LEVELS > 0) $readmemh(THRESHOLDS, trom);
    end

    logic primed;
    logic [$clog2(KS+1)-1:0] k;
    logic [$clog2(CF+1)-1:0] cf;
    logic [$clog2(KS*CF+1)-1:0] waddr;
    logic [SIMD*PE*WB-1:0] wword;
    logic [TW-1:0] tword;
    logic [PE*AB-1:0] accs [0:CF-1];

    wire last_k = (k == KS - 1);
    wire room = !last_k || !out_valid || out_ready;
    wire fire = primed && in_valid && room;
    assign in_ready = primed && room;
    wire [$clog2(KS*CF+1)-1:0] waddr_next = (waddr == KS*CF - 1) ? '0 : waddr + 1'b1;
    wire [$clog2(CF+1)-1:0] cf_next = (cf == CF - 1) ? '0 : cf + 1'b1;

    always_ff @(posedge clk) begin
        if (!primed || fire) wword <= wrom[primed ? waddr_next : '0];
        if (LEVELS > 0 && (!primed || fire)) tword <= trom[primed ? cf_next : '0];
    end

    `include "edge_dot.svh"

    logic [PE*AB-1:0] acc_next;
    logic [PE*OB-1:0] result;
    logic signed [AB-1:0] sum;
    always_comb begin
        for (int p = 0; p < PE; p++) begin
            sum = (k == 0) ? '0 : $signed(accs[cf][p*AB +: AB]);
            for (int t = 0; t < SIMD; t++)
                sum = sum + product(in_data[(t*PE + p)*IB +: IB], wword[(t*PE + p)*WB +: WB]);
            acc_next[p*AB +: AB] = sum;
            result[p*OB +: OB] = activate(sum, tword, p);
        end
    end

    always_ff @(posedge clk) begin
        if (fire) accs[cf] <= acc_next;
        if (!rst_n) begin
            k <= '0;
            cf <= '0;
            waddr <= '0;
            primed <= 1'b0;
            out_valid <= 1'b0;
        end else begin
            primed <= 1'b1;
            if (out_valid && out_ready) out_valid <= 1'b0;
            if (fire) begin
                waddr <= waddr_next;
                cf <= cf_next;
                if (cf == CF - 1) k <= last_k ? '0 : k + 1'b1;
                if (last_k) begin
                    out_data <= result;
                    out_valid <= 1'b1;
                end
            end
        end
    end
endmodule
