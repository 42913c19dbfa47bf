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
    parameter int LEVELS = 1,        // 0: out_data is z (OB bits), for edge_layernorm_search
    parameter int OB = 8,
    parameter bit OUT_BIPOLAR = 0,
    parameter int BASE = 0,
    parameter int STEP = 1,
    parameter THRESHOLDS = "thresholds.mem",
    parameter EPS = "eps.mem",
    parameter int EPB = 64,          // bits of the EPS word
    parameter int DS = 4,            // division or square-root steps between two pipeline registers
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

    function automatic signed [IB:0] x_elem(input [PE*IB-1:0] w, input int p);
        x_elem = IN_SIGNED ? $signed(w[p*IB +: IB]) : $signed({1'b0, w[p*IB +: IB]});
    endfunction
    localparam int QB = 2 * TB;                                   // quotient bits that matter
    localparam int DEN_W = (QW + 8 > EPB ? QW + 8 : EPB) + 1;       // Q * 2^8 + EPS
    localparam int NUM_W = 2 * SB + 2 * F + 8;                      // d^2 * 2^(2F+8)
    localparam int NDIV = (QB + DS - 1) / DS;                       // division stages
    localparam int NSQ = (TB + DS - 1) / DS;                        // square-root stages
    localparam int NST = NDIV + NSQ + 2;                            // pipeline registers before out_data
    localparam int CFB = CF > 1 ? $clog2(CF) : 1;
    localparam int RW = QB + 2;                                     // square-root operand and result bits

    localparam int LVL_TB = TB;
    `include "edge_levels.svh"

    // pass 1 is a pipeline that advances whenever out_data is free or being taken: stage 0 holds d's magnitude and
    // sign, the first partial remainder and den (carried: the next vector's pass 0 changes the statistics); then
    // NDIV stages of DS restoring division steps and NSQ stages of DS square-root digits, every step a compare-subtract
    // one register away from the next DS, so the logic between registers stays shallow
    logic [NST-1:0] vld;
    logic [CFB-1:0] fold [0:NST-1];
    logic [PE-1:0] neg [0:NST-1];
    logic [PE-1:0] sat [0:NDIV];
    logic [DEN_W-1:0] dens [0:NDIV];
    logic [DEN_W:0] rem [0:(NDIV+1)*PE-1];
    logic [QB-1:0] nlo [0:(NDIV+1)*PE-1];      // numerator bits still to bring down, next one at the top
    logic [QB-1:0] quo [0:(NDIV+1)*PE-1];
    logic [RW-1:0] op [0:(NSQ+1)*PE-1];
    logic [RW-1:0] res [0:(NSQ+1)*PE-1];

    wire adv = !out_valid || out_ready;
    assign in_ready = !pass;
    wire step = pass ? adv : in_valid;

    // entry: the statistics of this vector and one word's elements
    logic signed [SB-1:0] sum_next, d;
    logic signed [2*SB-1:0] sumsq_next;
    logic signed [QW-1:0] q;
    logic [SB-1:0] mag;
    logic [DEN_W-1:0] den;
    logic [NUM_W+QB-1:0] num;
    logic [PE-1:0] e_neg, e_sat;
    logic [DEN_W:0] e_rem [0:PE-1];
    logic [QB-1:0] e_nlo [0:PE-1];
    always_comb begin
        sum_next = cf == 0 ? '0 : sum;
        sumsq_next = cf == 0 ? '0 : sumsq;
        for (int p = 0; p < PE; p++) begin
            sum_next = sum_next + x_elem(in_data, p);
            sumsq_next = sumsq_next + x_elem(in_data, p) * x_elem(in_data, p);
        end
        q = C * sumsq - sum * sum;
        den = (DEN_W'($unsigned(q)) << 8) + DEN_W'(eps_rom[0][EPB-1:0]);
        if (den == 0) den = 1;
        for (int p = 0; p < PE; p++) begin
            d = C * buffer[cf * PE + p] - sum;
            mag = d < 0 ? -d : d;
            num = (NUM_W+QB)'(mag * mag) << (2 * F + 8);
            e_neg[p] = d < 0;
            e_sat[p] = (num >> QB) >= (NUM_W+QB)'(den);   // quotient of 2^QB or more: clamped
            e_rem[p] = e_sat[p] ? '0 : (DEN_W+1)'(num >> QB);
            e_nlo[p] = num[QB-1:0];
        end
    end

    // DS restoring division steps (j*DS .. j*DS + DS - 1) on one lane: {remainder, numerator bits left, quotient}
    function automatic [DEN_W+2*QB:0] div_stage(input [DEN_W:0] r_in, input [QB-1:0] nl_in, input [QB-1:0] q_in,
                                                input [DEN_W-1:0] dv, input int j);
        logic [DEN_W:0] r;
        logic [QB-1:0] nl, qq;
        r = r_in;
        nl = nl_in;
        qq = q_in;
        for (int i = 0; i < DS; i++)
            if (j * DS + i < QB) begin
                r = {r[DEN_W-1:0], nl[QB-1]};
                nl = nl << 1;
                qq = qq << 1;
                if (r >= {1'b0, dv}) begin
                    r = r - {1'b0, dv};
                    qq[0] = 1'b1;
                end
            end
        div_stage = {r, nl, qq};
    endfunction
    // DS digits (j*DS .. j*DS + DS - 1) of floor(sqrt) on one lane: {operand left, result}
    function automatic [2*RW-1:0] sqrt_stage(input [RW-1:0] o_in, input [RW-1:0] r_in, input int j);
        logic [RW-1:0] o, r, one, trial;
        o = o_in;
        r = r_in;
        for (int i = 0; i < DS; i++)
            if (j * DS + i < TB) begin
                one = RW'(1) << (QB - 2 - 2 * (j * DS + i));
                trial = r + one;
                if (o >= trial) begin
                    o = o - trial;
                    r = (r >> 1) + one;
                end else r = r >> 1;
            end
        sqrt_stage = {o, r};
    endfunction
    // the level of lane p from the last stage
    function automatic [OB-1:0] lane_level(input [RW-1:0] r, input bit negative, input [TW-1:0] tword, input int p);
        logic signed [63:0] z;
        z = $signed(64'(r[TB-1:0]));
        if (negative) z = -z;
        lane_level = LEVELS > 0 ? level_of(z, tword, p) : z[OB-1:0];  // LEVELS = 0: z itself (searched after)
    endfunction
    logic [PE*OB-1:0] levels;
    always_comb
        for (int p = 0; p < PE; p++)
            levels[p*OB +: OB] = lane_level(res[NSQ*PE + p], neg[NST-1][p], trom[fold[NST-1]], p);

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            pass <= 1'b0;
            cf <= 0;
            out_valid <= 1'b0;
            vld <= '0;
        end else begin
            if (step) begin
                if (!pass) begin
                    for (int p = 0; p < PE; p++) buffer[cf * PE + p] <= x_elem(in_data, p);
                    sum <= sum_next;
                    sumsq <= sumsq_next;
                end
                if (cf == CF - 1) begin
                    cf <= 0;
                    pass <= !pass;
                end else cf <= cf + 1;
            end
            if (adv) begin
                out_valid <= vld[NST-1];
                out_data <= levels;
                vld <= {vld[NST-2:0], pass};
                fold[0] <= CFB'(cf);
                for (int s = 1; s < NST; s++) begin
                    fold[s] <= fold[s-1];
                    neg[s] <= neg[s-1];
                end
                neg[0] <= e_neg;
                sat[0] <= e_sat;
                dens[0] <= den;
                for (int p = 0; p < PE; p++) begin
                    rem[p] <= e_rem[p];
                    nlo[p] <= e_nlo[p];
                    quo[p] <= '0;
                end
                // division: stage j + 1 takes stage j's remainder through steps j*DS .. j*DS + DS - 1
                for (int j = 0; j < NDIV; j++) begin
                    sat[j+1] <= sat[j];
                    dens[j+1] <= dens[j];
                    for (int p = 0; p < PE; p++)
                        {rem[(j+1)*PE + p], nlo[(j+1)*PE + p], quo[(j+1)*PE + p]} <=
                            div_stage(rem[j*PE + p], nlo[j*PE + p], quo[j*PE + p], dens[j], j);
                end
                // square root of the quotient, digit by digit: stage j + 1 takes digits j*DS .. j*DS + DS - 1
                for (int p = 0; p < PE; p++) begin
                    op[p] <= sat[NDIV][p] ? RW'({QB{1'b1}}) : RW'(quo[NDIV*PE + p]);
                    res[p] <= '0;
                end
                for (int j = 0; j < NSQ; j++)
                    for (int p = 0; p < PE; p++)
                        {op[(j+1)*PE + p], res[(j+1)*PE + p]} <= sqrt_stage(op[j*PE + p], res[j*PE + p], j);
            end
        end
    end
endmodule
