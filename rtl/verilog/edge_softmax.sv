// Softmax: the integer softmax over each vector of C elements and the unsigned quantiser after it, PE elements per
// word (the IR's Softmax). Pass 0 reads the vector into a buffer and finds its maximum; pass 1 sums
// e = EXP[min(max - x, TABLE_N - 1)]; pass 2 writes min(OMAX, (2 * e * RECIP + den) / (2 * den)), den = sum << RB
// (round half up). C/PE cycles per pass. EXP (TABLE_N entries of EB bits) and RECIP (one 64-bit word) are ROM files.
// The quotient is needed only up to OMAX, so the division is a restoring one of QB = clog2(OMAX + 1) compare-subtract
// steps (a quotient of 2^QB or more is clamped before them), not a full divider; numerator and divisor are sized to their operands.
module edge_softmax #(
    parameter int C = 4,
    parameter int PE = 1,
    parameter int IB = 8,            // input element bits
    parameter bit IN_SIGNED = 1,
    parameter int OB = 8,            // output element bits (unsigned)
    parameter int OMAX = 255,
    parameter int TABLE_N = 256,
    parameter int EB = 17,           // bits of an EXP entry
    parameter int RB = 24,           // RECIP_BITS
    parameter EXP = "exp.mem",
    parameter RECIP = "recip.mem",
    parameter int RCB = 64,          // bits of the RECIP word
    localparam int CF = C / PE,
    localparam int QB = $clog2(OMAX + 1)
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
    logic [EB-1:0] exp_rom [0:TABLE_N-1];
    logic [63:0] recip_rom [0:0];
    initial begin
        $readmemh(EXP, exp_rom);
        $readmemh(RECIP, recip_rom);
    end

    logic signed [IB:0] buffer [0:C-1];
    logic signed [IB:0] mx;
    logic [63:0] total;
    int pass, cf;

    wire room = !out_valid || out_ready;
    assign in_ready = pass == 0;
    wire step = pass == 0 ? in_valid : (pass == 1 || room);

    function automatic signed [IB:0] x_elem(input [PE*IB-1:0] w, input int p);
        x_elem = IN_SIGNED ? $signed(w[p*IB +: IB]) : $signed({1'b0, w[p*IB +: IB]});
    endfunction
    function automatic [EB-1:0] expo(input signed [IB:0] x, input signed [IB:0] top);
        logic [IB+1:0] d;
        d = top - x;
        expo = exp_rom[d > TABLE_N - 1 ? TABLE_N - 1 : d];
    endfunction

    localparam int TOT_W = EB + $clog2(C + 1);                      // bits of the sum of C entries
    localparam int DEN_W = TOT_W + RB + 1;                            // 2 * (sum << RB)
    localparam int NUM_W = (EB + RCB + 1 > TOT_W + RB ? EB + RCB + 1 : TOT_W + RB) + 1;  // 2 e RECIP + den
    `include "edge_divide.svh"

    logic signed [IB:0] mx_next;
    logic [63:0] total_next;
    logic [PE*OB-1:0] levels;
    logic [NUM_W-1:0] num;
    logic [DEN_W-1:0] den;
    logic [QB-1:0] quotient;
    always_comb begin
        mx_next = mx;
        for (int p = 0; p < PE; p++)
            if ((cf == 0 && p == 0) || x_elem(in_data, p) > mx_next) mx_next = x_elem(in_data, p);
        total_next = cf == 0 ? '0 : total;
        for (int p = 0; p < PE; p++) total_next = total_next + expo(buffer[cf * PE + p], mx);
        den = DEN_W'(total[TOT_W-1:0]) << RB;
        for (int p = 0; p < PE; p++) begin
            num = 2 * NUM_W'(expo(buffer[cf * PE + p], mx)) * NUM_W'(recip_rom[0][RCB-1:0]) + NUM_W'(den);
            quotient = bounded_quotient(num, 2 * den);  // saturates at 2^QB - 1 >= OMAX
            levels[p*OB +: OB] = 32'(quotient) > OMAX ? OB'(OMAX) : OB'(quotient);
        end
    end

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            pass <= 0;
            cf <= 0;
            out_valid <= 1'b0;
        end else begin
            if (out_valid && out_ready) out_valid <= 1'b0;
            if (step) begin
                if (pass == 0) begin
                    for (int p = 0; p < PE; p++) buffer[cf * PE + p] <= x_elem(in_data, p);
                    mx <= mx_next;
                end else if (pass == 1) begin
                    total <= total_next;
                end else begin
                    out_data <= levels;
                    out_valid <= 1'b1;
                end
                if (cf == CF - 1) begin
                    cf <= 0;
                    pass <= pass == 2 ? 0 : pass + 1;
                end else cf <= cf + 1;
            end
        end
    end
endmodule
