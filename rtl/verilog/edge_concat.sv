// StreamingConcat: channel concatenation of two streams. Per vector, CA / PE words of input 0, then CB / PE words of
// input 1, each element re-packed (sign- or zero-extended) to the output width. The output is registered; one word
// per cycle, and an input is only read in its own turn (the other waits, back-pressured).
module edge_concat #(
    parameter int PE = 1,
    parameter int CA = 1,            // channels of input 0
    parameter int CB = 1,            // channels of input 1
    parameter int AB = 4,            // bits of an element of input 0
    parameter bit A_SIGNED = 0,
    parameter int BB = 4,            // of input 1
    parameter bit B_SIGNED = 0,
    parameter int OB = 4             // of the output
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
    localparam int WA = CA / PE;
    localparam int WORDS = (CA + CB) / PE;

    logic [$clog2(WORDS + 1)-1:0] word;  // position within the vector
    wire first = word < WA;
    wire room = !out_valid || out_ready;
    assign in0_ready = first && room;
    assign in1_ready = !first && room;
    wire fire = room && (first ? in0_valid : in1_valid);

    logic [PE*OB-1:0] packed_word;
    logic signed [OB:0] a, b;
    always_comb begin
        for (int p = 0; p < PE; p++) begin
            a = A_SIGNED ? (OB+1)'($signed(in0_data[p*AB +: AB])) : (OB+1)'({1'b0, in0_data[p*AB +: AB]});
            b = B_SIGNED ? (OB+1)'($signed(in1_data[p*BB +: BB])) : (OB+1)'({1'b0, in1_data[p*BB +: BB]});
            packed_word[p*OB +: OB] = first ? a[OB-1:0] : b[OB-1:0];
        end
    end

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            out_valid <= 1'b0;
            word <= '0;
        end else begin
            if (out_valid && out_ready) out_valid <= 1'b0;
            if (fire) begin
                out_data <= packed_word;
                out_valid <= 1'b1;
                word <= (word == WORDS - 1) ? '0 : word + 1'b1;
            end
        end
    end
endmodule
