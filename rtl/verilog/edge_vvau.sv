// VVAU: vector-vector-activation unit for depthwise convolution (FINN vocabulary). Each output pixel's window
// arrives as K taps of C channels in (tap, channel) order, PE channels per word (CF = C/PE words per tap); channel c
// accumulates sum_k W[c, k] * x[k, c] in its own accumulator (CF words of PE accumulators), and on the last tap the
// PE sums leave, thresholded or as accumulators. One word per cycle (II=1).
// Weights: ROM word (k*CF + cf) holds PE weights, weight p at [p*WB +: WB]. Thresholds: ROM word cf as in edge_mvau.
// Both ROMs are read through a registered port, loaded with the next step's word when a step fires.
module edge_vvau #(
    parameter int C = 4,
    parameter int K = 9,
    parameter int PE = 1,
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
    localparam int CF = C / PE,
    localparam int TW = PE * LEVELS * AB + PE
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
    logic [PE*WB-1:0] wrom [0:K*CF-1];
    logic [TW-1:0] trom [0:CF-1];
    initial begin
        $readmemh(WEIGHTS, wrom);
        if (LEVELS > 0) $readmemh(THRESHOLDS, trom);
    end

    logic primed;
    logic [$clog2(K+1)-1:0] k;
    logic [$clog2(CF+1)-1:0] cf;
    logic [$clog2(K*CF+1)-1:0] waddr;
    logic [PE*WB-1:0] wword;
    logic [TW-1:0] tword;
    logic [PE*AB-1:0] accs [0:CF-1];

    wire last_k = (k == K - 1);
    wire room = !last_k || !out_valid || out_ready;
    wire fire = primed && in_valid && room;
    assign in_ready = primed && room;
    wire [$clog2(K*CF+1)-1:0] waddr_next = (waddr == K*CF - 1) ? '0 : waddr + 1'b1;
    wire [$clog2(CF+1)-1:0] cf_next = (cf == CF - 1) ? '0 : cf + 1'b1;

    always_ff @(posedge clk) begin
        if (!primed || fire) wword <= wrom[primed ? waddr_next : '0];
        if (LEVELS > 0 && (!primed || fire)) tword <= trom[primed ? cf_next : '0];
    end

    function automatic signed [AB-1:0] in_value(input [IB-1:0] b);
        if (IN_BIPOLAR) in_value = b[0] ? 1 : -1;
        else if (IN_SIGNED) in_value = $signed(b);
        else in_value = {1'b0, b};
    endfunction

    function automatic signed [AB-1:0] w_value(input [WB-1:0] b);
        if (W_BIPOLAR) w_value = b[0] ? 1 : -1;
        else w_value = $signed(b);
    endfunction

    function automatic signed [AB-1:0] lut_mul(input signed [AB-1:0] x, input [WB-1:0] w);
        lut_mul = '0;
        if (W_BIPOLAR) lut_mul = w[0] ? x : -x;
        else
            for (int b = 0; b < WB; b++)
                if (w[b]) lut_mul = (b == WB - 1) ? lut_mul - (x <<< b) : lut_mul + (x <<< b);
    endfunction

    logic [PE*AB-1:0] acc_next;
    logic [PE*OB-1:0] result;
    logic signed [AB-1:0] sum, prod, thr;
    logic [31:0] count;
    logic signed [31:0] value;
    always_comb begin
        for (int p = 0; p < PE; p++) begin
            sum = (k == 0) ? '0 : $signed(accs[cf][p*AB +: AB]);
            if (USE_DSP) prod = in_value(in_data[p*IB +: IB]) * w_value(wword[p*WB +: WB]);
            else prod = lut_mul(in_value(in_data[p*IB +: IB]), wword[p*WB +: WB]);
            sum = sum + prod;
            acc_next[p*AB +: AB] = sum;
            count = 0;
            if (LEVELS > 0) begin
                for (int l = 0; l < LEVELS; l++) begin
                    thr = tword[(p*LEVELS + l)*AB +: AB];
                    if (tword[PE*LEVELS*AB + p] ? (sum <= thr) : (sum >= thr)) count = count + 1;
                end
                value = BASE + STEP * $signed(count);
                result[p*OB +: OB] = OUT_BIPOLAR ? count[OB-1:0] : value[OB-1:0];
            end else begin
                value = sum;
                result[p*OB +: OB] = value[OB-1:0];
            end
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
