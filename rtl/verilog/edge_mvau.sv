// MVAU: matrix-vector-activation unit (FINN vocabulary), folded by PE (output channels) and SIMD (inputs per cycle).
// One input vector of MW elements arrives as SF = MW/SIMD words into one of two vector buffers (ping-pong) and is
// replayed from it for the NF = MH/PE neuron folds; the next vector is taken into the other buffer meanwhile, so
// the input side runs at the producer's pace. A word is used in the cycle it arrives when the compute waits for it. Each output word carries PE channels. AXI-Stream-style
// ready/valid on both sides; one MAC step per cycle (II=1) when neither side stalls.
// Weight and threshold ROMs are read synchronously (one registered read port, which Yosys maps to block RAM): the
// register holds the word of the current step and is loaded with the next one when the step fires, primed once
// after reset.
// Element e of a word sits at bits [e*B +: B], two's complement when signed; bipolar elements are one bit (1 = +1).
// Weights: ROM word (nf*SF + sf) holds PE*SIMD weights, weight (p, s) at [(p*SIMD + s)*WB +: WB].
// Thresholds (LEVELS > 0): ROM word nf holds, per PE p, LEVELS thresholds of AB bits at [(p*LEVELS + l)*AB +: AB]
// and the channel's descending flag at bit PE*LEVELS*AB + p; out = BASE + STEP * #{l : acc >= T} (<= if descending).
module edge_mvau #(
    parameter int MW = 4,
    parameter int MH = 4,
    parameter int PE = 1,
    parameter int SIMD = 1,
    parameter int IB = 4,            // input element bits
    parameter int WB = 4,            // weight bits
    parameter int AB = 16,           // accumulator bits (signed), also threshold bits
    parameter int OB = 4,            // output element bits (thresholded, or the accumulator's low OB bits)
    parameter int LEVELS = 0,        // thresholds per channel; 0: output the accumulator
    parameter bit IN_SIGNED = 0,
    parameter bit IN_BIPOLAR = 0,
    parameter bit W_BIPOLAR = 0,
    parameter bit XNOR = 0,          // bipolar x bipolar: accumulate popcount of matching bits
    parameter bit USE_DSP = 0,       // products as multipliers (DSP blocks) or as shift-and-add in LUTs
    parameter bit OUT_BIPOLAR = 0,
    parameter int BASE = 0,
    parameter int STEP = 1,
    parameter WEIGHTS = "weights.mem",
    parameter THRESHOLDS = "thresholds.mem",
    parameter WSTYLE = "block",       // rom_style of the weight ROM: "block" (block RAM) or "logic" (LUTs)
    parameter TSTYLE = "block",       // rom_style of the threshold ROM
    localparam int SF = MW / SIMD,
    localparam int NF = MH / PE,
    localparam int OW = OB,
    localparam int TW = PE * LEVELS * AB + PE
) (
    input  logic                 clk,
    input  logic                 rst_n,
    input  logic                 in_valid,
    output logic                 in_ready,
    input  logic [SIMD*IB-1:0]   in_data,
    output logic                 out_valid,
    input  logic                 out_ready,
    output logic [PE*OW-1:0]     out_data
);
    (* rom_style = WSTYLE *) logic [PE*SIMD*WB-1:0] wrom [0:NF*SF-1];
    (* rom_style = TSTYLE *) logic [TW-1:0] trom [0:NF-1];
    initial begin
        $readmemh(WEIGHTS, wrom);
        if (LEVELS > 0) $readmemh(THRESHOLDS, trom);
    end

    logic [SIMD*IB-1:0] buffer [0:2*SF-1];
    logic [$clog2(SF+1)-1:0] have [0:1];   // words written into each buffer (SF: complete, until replayed)
    logic wb, cb;                          // the buffer being written, the one being computed on
    logic [$clog2(SF+1)-1:0] sf;
    logic [$clog2(NF+1)-1:0] nf;
    logic signed [AB-1:0] acc [0:PE-1];
    logic signed [AB-1:0] acc_next [0:PE-1];
    logic [PE*OW-1:0] result;

    logic primed;
    wire last_sf = (sf == SF - 1);
    wire last_nf = (nf == NF - 1);
    wire room = !last_sf || !out_valid || out_ready;
    assign in_ready = primed && (have[wb] < SF);
    wire push = in_valid && in_ready;
    wire stored = have[cb] > sf;
    wire bypass = push && (wb == cb) && (have[cb] == sf);
    wire fire = primed && (stored || bypass) && room;
    wire done_vector = fire && last_sf && last_nf;

    wire [SIMD*IB-1:0] word = stored ? buffer[cb * SF + sf] : in_data;

    // registered ROM reads: the word of the step after this one, or of step 0 while priming
    logic [$clog2(NF*SF+1)-1:0] waddr;
    logic [PE*SIMD*WB-1:0] wword;
    logic [TW-1:0] tword;
    wire [$clog2(NF*SF+1)-1:0] waddr_next = (waddr == NF*SF - 1) ? '0 : waddr + 1'b1;
    wire [$clog2(NF+1)-1:0] nf_next = last_nf ? '0 : nf + 1'b1;
    always_ff @(posedge clk) begin
        if (!primed || fire) wword <= wrom[primed ? waddr_next : '0];
        if (LEVELS > 0 && (!primed || (fire && last_sf))) tword <= trom[primed ? nf_next : '0];
    end

    `include "edge_dot.svh"

    // one MAC step: PE sums of SIMD products (or matching bits), added to the running accumulators
    logic signed [AB-1:0] sum [0:PE-1];
    logic signed [AB-1:0] prod;
    always_comb begin
        for (int p = 0; p < PE; p++) begin
            sum[p] = (sf == 0) ? '0 : acc[p];
            for (int s = 0; s < SIMD; s++) begin
                if (XNOR) prod = {{(AB-1){1'b0}}, ~(word[s*IB] ^ wword[(p*SIMD + s)*WB])};
                else prod = product(word[s*IB +: IB], wword[(p*SIMD + s)*WB +: WB]);
                sum[p] = sum[p] + prod;
            end
            acc_next[p] = sum[p];
        end
    end

    // activation: count the thresholds each accumulator passes (or pass the accumulator through)
    always_comb
        for (int p = 0; p < PE; p++) result[p*OW +: OW] = activate(acc_next[p], tword, p);

    always_ff @(posedge clk) begin
        if (push) buffer[wb * SF + have[wb]] <= in_data;
        if (!rst_n) begin
            sf <= '0;
            nf <= '0;
            waddr <= '0;
            primed <= 1'b0;
            out_valid <= 1'b0;
            have[0] <= '0;
            have[1] <= '0;
            wb <= 1'b0;
            cb <= 1'b0;
        end else begin
            primed <= 1'b1;
            // the writer fills its buffer, then moves to the other one (which it may write once replayed)
            if (push) begin
                have[wb] <= have[wb] + 1'b1;
                if (have[wb] == SF - 1) wb <= !wb;
            end
            if (done_vector) begin
                have[cb] <= '0;
                cb <= !cb;
            end
            if (out_valid && out_ready) out_valid <= 1'b0;
            if (fire) begin
                waddr <= waddr_next;
                for (int p = 0; p < PE; p++) acc[p] <= acc_next[p];
                if (last_sf) begin
                    out_data <= result;
                    out_valid <= 1'b1;
                    sf <= '0;
                    nf <= nf_next;
                end else begin
                    sf <= sf + 1'b1;
                end
            end
        end
    end
endmodule
