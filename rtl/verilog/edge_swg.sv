// Sliding window generator (FINN's ConvolutionInputGenerator): a H x W map of C channels in, pixels in row-major
// order; out, for each of the OH x OW output pixels, its KH x KW window in (ky, kx, channel) order. SIMD <= C: SIMD
// channels per word on both sides. SIMD > C (a parallel window for few channels): one pixel per input word, and
// P = SIMD/C neighbouring kx taps per output word (KW a multiple of P). Input rows go to a circular buffer of NR = KH + max(SH, KH) rows (read asynchronously, so it maps to LUT
// RAM): the reader fills rows while the writer emits the windows of an output row from the KH rows below it; after
// each output row SH rows are released (after the frame's last, every row left of the frame, read first). The
// buffer holds the next frame's first KH rows while the last output row of a frame leaves, so input and output
// overlap within a frame and across frames. A dilated window (DH, DW > 1) takes every DH-th row and DW-th column of
// an extent of (K - 1) * D + 1: the buffer holds the extent's rows, and a word's P taps are DW columns apart.
module edge_swg #(
    parameter int H = 4,
    parameter int W = 4,
    parameter int C = 1,
    parameter int SIMD = 1,
    parameter int B = 8,
    parameter int KH = 3,
    parameter int KW = 3,
    parameter int SH = 1,
    parameter int SW = 1,
    parameter int DH = 1,
    parameter int DW = 1,
    localparam int EKH = (KH - 1) * DH + 1,      // rows and columns a window spans
    localparam int EKW = (KW - 1) * DW + 1,
    localparam int OH = (H - EKH) / SH + 1,
    localparam int OW = (W - EKW) / SW + 1,
    localparam int IS = (SIMD < C) ? SIMD : C,     // elements per input word (and per buffer word)
    localparam int P = (SIMD > C) ? SIMD / C : 1,  // kx taps per output word
    localparam int CF = C / IS,
    localparam int NR = EKH + ((SH > EKH) ? SH : EKH),
    localparam int ROW = W * CF,                  // words per row
    localparam int DEPTH = NR * ROW,
    localparam int TAIL = H - (OH - 1) * SH,      // rows released after the frame's last output row
    localparam int AW = $clog2(DEPTH + 1)
) (
    input  logic               clk,
    input  logic               rst_n,
    input  logic               in_valid,
    output logic               in_ready,
    input  logic [IS*B-1:0]    in_data,
    output logic               out_valid,
    input  logic               out_ready,
    output logic [SIMD*B-1:0]  out_data
);
    logic [IS*B-1:0] mem [0:DEPTH-1];

    // reader: the next word's address (circular over the buffer) and its position in the row
    logic [AW-1:0] waddr;
    logic [$clog2(ROW+1)-1:0] wpos;
    logic [$clog2(NR+1)-1:0] filled;               // complete rows the writer may use, from its base row
    // writer: base row slot, output pixel, window position, channel fold
    logic [$clog2(NR+1)-1:0] base;
    logic [$clog2(OH+1)-1:0] oy;
    logic [$clog2(OW+1)-1:0] ox;
    logic [$clog2(KH+1)-1:0] ky;
    logic [$clog2(KW+1)-1:0] kx;
    logic [$clog2(CF+1)-1:0] cf;
    logic draining;                                 // row done, waiting for `release` rows to have been read

    assign in_ready = filled < NR;
    wire push = in_valid && in_ready;
    wire row_read = push && (wpos == ROW - 1);

    logic [$clog2(2*NR+1)-1:0] slot_sum;
    logic [$clog2(NR+1)-1:0] slot;
    always_comb begin
        slot_sum = base + ky * DH;
        slot = (slot_sum >= NR) ? slot_sum - NR : slot_sum;
    end
    wire [AW+8:0] raddr = (slot * W + ox * SW + kx * DW) * CF + cf;
    assign out_valid = !draining && (filled >= EKH);
    always_comb
        for (int j = 0; j < P; j++) out_data[j*IS*B +: IS*B] = mem[raddr[AW-1:0] + j * DW * CF];
    wire pop = out_valid && out_ready;
    wire last_word = (cf == CF - 1) && (kx == KW - P) && (ky == KH - 1);
    wire row_done = pop && last_word && (ox == OW - 1);
    wire last_row = (oy == OH - 1);
    wire [$clog2(NR+1)-1:0] release_rows = last_row ? TAIL : SH;
    // release when the row's windows are out and the rows to drop have been read
    wire releasing = (row_done || draining) && (filled >= release_rows);

    logic [$clog2(2*NR+1)-1:0] base_sum;
    always_comb base_sum = base + release_rows;

    always_ff @(posedge clk) begin
        if (push) mem[waddr] <= in_data;
        if (!rst_n) begin
            waddr <= '0;
            wpos <= '0;
            filled <= '0;
            base <= '0;
            oy <= '0;
            ox <= '0;
            ky <= '0;
            kx <= '0;
            cf <= '0;
            draining <= 1'b0;
        end else begin
            if (push) begin
                waddr <= (waddr == DEPTH - 1) ? '0 : waddr + 1'b1;
                wpos <= (wpos == ROW - 1) ? '0 : wpos + 1'b1;
            end
            filled <= filled + (row_read ? 1 : 0) - (releasing ? release_rows : 0);
            if (releasing) begin
                base <= (base_sum >= NR) ? base_sum - NR : base_sum;
                oy <= last_row ? '0 : oy + 1'b1;
                draining <= 1'b0;
            end else if (row_done) begin
                draining <= 1'b1;
            end
            if (pop) begin
                if (cf != CF - 1) cf <= cf + 1'b1;
                else begin
                    cf <= '0;
                    if (kx != KW - P) kx <= kx + P;
                    else begin
                        kx <= '0;
                        if (ky != KH - 1) ky <= ky + 1'b1;
                        else begin
                            ky <= '0;
                            ox <= (ox == OW - 1) ? '0 : ox + 1'b1;
                        end
                    end
                end
            end
        end
    end
endmodule
