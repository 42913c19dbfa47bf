// LayerNorm: the integer LayerNorm over each vector of C elements, its affine part and quantiser as per-channel
// thresholds on z (the IR's LayerNorm), PE elements per word. Pass 0 reads the vector into a buffer and sums x and
// x^2; pass 1 writes, per element, thresholds(z) with d = C*x - S, Q = C*sum(x^2) - S^2 and
// z = sign(d) * isqrt(d^2 * 2^(2F+8) / max(Q*2^8 + EPS, 1)) (floors, as the IR). C/PE cycles per pass.
// Threshold ROM word of fold cf: per PE p, LEVELS thresholds of TB bits at [(p*LEVELS + l)*TB +: TB] and the
// descending flag at bit PE*LEVELS*TB + p (as edge_thresholding). EPS is a one-word ROM file (it can pass 32 bits).
// |z| <= sqrt(C) * 2^F, and the thresholds (TB bits) are clipped to that range plus one, so z is needed only below
// 2^TB: the division finds at most 2*TB quotient bits (restoring, one compare-subtract each; a larger quotient is
// clamped, which passes every threshold alike) and the square root is the digit-by-digit one (subtractions only).
module edge_layernorm #(
    parameter int C = 4,
    parameter int PE = 1,
    parameter int IB = 8,            // input element bits
    parameter bit IN_SIGNED = 1,
    parameter int F = 16,            // fractional bits of z
    parameter int TB = 24,           // threshold bits (signed)
    parameter int LEVELS = 1,
    parameter int OB = 8,
    parameter bit OUT_BIPOLAR = 0,
    parameter int BASE = 0,
    parameter int STEP = 1,
    parameter THRESHOLDS = "thresholds.mem",
    parameter EPS = "eps.mem",
    localparam int CF = C / PE,
    localparam int TW = PE * LEVELS * TB + PE,
    localparam int SB = IB + 2 + $clog2(C + 1),      // bits of S and d = C*x - S (signed): |d| <= 2 C 2^IB
    localparam int QW = 2 * SB + 1                    // bits of Q = C*sum(x^2) - S^2 (signed)
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
    logic [TW-1:0] trom [0:CF-1];
    logic [63:0] eps_rom [0:0];
    initial begin
        $readmemh(THRESHOLDS, trom);
        $readmemh(EPS, eps_rom);
    end

    logic signed [IB:0] buffer [0:C-1];
    logic signed [SB-1:0] sum;
    logic signed [2*SB-1:0] sumsq;
    logic pass;
    int cf;

    wire room = !out_valid || out_ready;
    assign in_ready = !pass;
    wire step = pass ? room : in_valid;

    function automatic signed [IB:0] x_elem(input [PE*IB-1:0] w, input int p);
        x_elem = IN_SIGNED ? $signed(w[p*IB +: IB]) : $signed({1'b0, w[p*IB +: IB]});
    endfunction
    localparam int QB = 2 * TB;  // quotient bits that matter
    localparam int DIV_W = 128;
    `include "edge_divide.svh"
    // floor(sqrt(v)) digit by digit: one compare-subtract per result bit, no multiplier
    function automatic [TB-1:0] isqrt(input [QB-1:0] v);
        logic [QB+1:0] op, res, one, trial;
        op = (QB+2)'(v);
        res = '0;
        one = (QB+2)'(1) << (QB - 2);
        for (int i = 0; i < TB; i++) begin
            trial = res + one;
            if (op >= trial) begin
                op = op - trial;
                res = (res >> 1) + one;
            end else res = res >> 1;
            one = one >> 2;
        end
        isqrt = res[TB-1:0];
    endfunction

    localparam int LVL_TB = TB;
    `include "edge_levels.svh"

    // every product at the width its operands need (a 64- or 128-bit multiplier would be mostly constant zeros)
    logic signed [SB-1:0] sum_next, d;
    logic signed [2*SB-1:0] sumsq_next;
    logic signed [QW-1:0] q;
    logic [SB-1:0] mag;
    logic [2*SB-1:0] square;
    logic [127:0] den, num;
    logic signed [63:0] z;
    logic [PE*OB-1:0] levels;
    always_comb begin
        sum_next = cf == 0 ? '0 : sum;
        sumsq_next = cf == 0 ? '0 : sumsq;
        for (int p = 0; p < PE; p++) begin
            sum_next = sum_next + x_elem(in_data, p);
            sumsq_next = sumsq_next + x_elem(in_data, p) * x_elem(in_data, p);
        end
        q = C * sumsq - sum * sum;
        den = (128'($unsigned(q)) << 8) + 128'(eps_rom[0]);
        if (den == 0) den = 1;
        for (int p = 0; p < PE; p++) begin
            d = C * buffer[cf * PE + p] - sum;
            mag = d < 0 ? -d : d;
            square = mag * mag;
            num = 128'(square) << (2 * F + 8);
            z = $signed(64'(isqrt(bounded_quotient(num, den))));
            if (d < 0) z = -z;
            levels[p*OB +: OB] = level_of(z, trom[cf], p);
        end
    end

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            pass <= 1'b0;
            cf <= 0;
            out_valid <= 1'b0;
        end else begin
            if (out_valid && out_ready) out_valid <= 1'b0;
            if (step) begin
                if (!pass) begin
                    for (int p = 0; p < PE; p++) buffer[cf * PE + p] <= x_elem(in_data, p);
                    sum <= sum_next;
                    sumsq <= sumsq_next;
                end else begin
                    out_data <= levels;
                    out_valid <= 1'b1;
                end
                if (cf == CF - 1) begin
                    cf <= 0;
                    pass <= !pass;
                end else cf <= cf + 1;
            end
        end
    end
endmodule
