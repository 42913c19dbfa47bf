// Thresholds by binary search (FINN+'s binary-search thresholding, the HLS kernels' `threshold` from 16 levels):
// the count #{l : x >= T[l]} of a channel's LEVELS thresholds in S = clog2(LEVELS + 1) pipelined stages, one
// comparator per lane and stage, instead of LEVELS comparators at once. Channels are visited in NF = C/PE folds, PE
// lanes per word. Per lane the thresholds are sorted ascending and padded to 2^S - 1 with a value no input reaches;
// stage k compares against T[(2 j + 1) 2^(S-1-k) - 1], j the k bits decided so far, read from its own ROM of NF * 2^k
// words (file {SEARCH}_s<k>_p<lane, 3 digits>.mem, word nf * 2^k + j). A descending channel (x <= T) is searched as
// -x >= -T: its flag in DESC (one word of PE bits per fold) negates the input. Inputs and thresholds are TB bits
// (signed; the thresholds are clipped to the input range plus one). Every ROM read is registered and enabled with the
// pipeline, so a deep stage can sit in block RAM (bit k of BLOCK); the pipeline stalls as a whole when the output is
// not taken. Output element: BASE + STEP * count, or the count's bit when bipolar.
module edge_thrsearch #(
    parameter int C = 4,
    parameter int PE = 1,
    parameter int IB = 16,           // input element bits
    parameter bit IN_SIGNED = 1,
    parameter int TB = 18,           // bits of inputs and thresholds inside the search (signed)
    parameter int LEVELS = 255,
    parameter int OB = 8,
    parameter bit OUT_BIPOLAR = 0,
    parameter int BASE = 0,
    parameter int STEP = 1,
    parameter SEARCH = "search",
    parameter DESC = "desc.mem",
    parameter int BLOCK = 0,
    localparam int NF = C / PE,
    localparam int S = $clog2(LEVELS + 1),
    localparam int FB = NF > 1 ? $clog2(NF) : 1
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
    logic [PE-1:0] desc_rom [0:NF-1];
    initial $readmemh(DESC, desc_rom);

    wire adv = !out_valid || out_ready;
    assign in_ready = adv;

    // stage k, lane p: input x, the bits decided before it (j, right-aligned) and the threshold its ROM returned
    localparam int XK = PE * TB, JK = PE * S;
    logic [FB-1:0] nf_in;
    logic [S-1:0] vld;
    logic [S*FB-1:0] fold;
    logic [S*XK-1:0] x, t;
    logic [S*JK-1:0] j;

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            nf_in <= '0;
            vld <= '0;
            out_valid <= 1'b0;
        end else if (adv) begin
            if (in_valid) nf_in <= nf_in == FB'(NF - 1) ? '0 : nf_in + 1'b1;
            vld <= {vld[S-2:0], in_valid};
            out_valid <= vld[S-1];
        end
    end

    always_ff @(posedge clk)
        if (adv) fold <= {fold[(S-1)*FB-1:0], nf_in};

    for (genvar p = 0; p < PE; p++) begin : g_lane
        wire signed [TB-1:0] x_in = IN_SIGNED ? TB'($signed(in_data[p*IB +: IB])) : TB'(in_data[p*IB +: IB]);
        for (genvar k = 0; k < S; k++) begin : g_stage
            localparam FILE = {SEARCH, "_s", 8'(48 + k), "_p", 8'(48 + p / 100), 8'(48 + (p / 10) % 10),
                               8'(48 + p % 10), ".mem"};
            localparam int DEPTH = NF << k;
            localparam int KP = k > 0 ? k - 1 : 0;  // the previous stage
            wire signed [TB-1:0] x_prev = x[KP*XK + p*TB +: TB];
            wire signed [TB-1:0] t_prev = t[KP*XK + p*TB +: TB];
            wire [S-1:0] j_prev = j[KP*JK + p*S +: S];
            // the previous stage's decision extends j; stage 0 starts from the input
            wire [S-1:0] j_here = k == 0 ? '0 : {j_prev[S-2:0], x_prev >= t_prev};
            wire [FB-1:0] fold_here = k == 0 ? nf_in : fold[KP*FB +: FB];
            wire [FB+S-1:0] addr = ((FB+S)'(fold_here) << k) + (FB+S)'(j_here);
            if (BLOCK[k]) begin : g_block
                (* rom_style = "block" *) logic [TB-1:0] rom [0:DEPTH-1];
                initial $readmemh(FILE, rom);
                always_ff @(posedge clk) if (adv) t[k*XK + p*TB +: TB] <= rom[addr];
            end else begin : g_logic
                (* rom_style = "logic" *) logic [TB-1:0] rom [0:DEPTH-1];
                initial $readmemh(FILE, rom);
                always_ff @(posedge clk) if (adv) t[k*XK + p*TB +: TB] <= rom[addr];
            end
            always_ff @(posedge clk)
                if (adv) begin
                    j[k*JK + p*S +: S] <= j_here;
                    x[k*XK + p*TB +: TB] <= k == 0 ? (desc_rom[nf_in][p] ? -x_in : x_in) : x_prev;
                end
        end
        // the last decision completes the count
        wire signed [TB-1:0] x_last = x[(S-1)*XK + p*TB +: TB];
        wire signed [TB-1:0] t_last = t[(S-1)*XK + p*TB +: TB];
        wire [S-1:0] j_last = j[(S-1)*JK + p*S +: S];
        wire [S-1:0] count = {j_last[S-2:0], x_last >= t_last};
        wire signed [31:0] value = BASE + STEP * $signed({1'b0, count});
        always_ff @(posedge clk)
            if (adv) out_data[p*OB +: OB] <= OUT_BIPOLAR ? OB'(count) : value[OB-1:0];
    end
endmodule
