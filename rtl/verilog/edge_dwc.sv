// Stream width converter (FINN's StreamingDataWidthConverter): words of IN elements in, words of OUT elements out,
// element order kept (element 0 in the least significant bits). The buffer accepts a word whenever it has room for
// it and emits whenever it holds OUT elements. IN + OUT elements keep either side at one word per cycle when one
// width divides the other; otherwise (6 -> 4) IN + 2*OUT - 1 do. The fill level only ever moves by IN or OUT, so it
// is a multiple of G = gcd(IN, OUT): the buffer is handled in chunks of G elements (64 -> 288 takes 2 input chunks
// at one of 11 positions, not 64 elements at one of 352).
module edge_dwc #(
    parameter int IN = 1,
    parameter int OUT = 1,
    parameter int B = 8,             // element bits
    localparam int CAP = (IN % OUT == 0 || OUT % IN == 0) ? IN + OUT : IN + 2*OUT - 1
) (
    input  logic              clk,
    input  logic              rst_n,
    input  logic              in_valid,
    output logic              in_ready,
    input  logic [IN*B-1:0]   in_data,
    output logic              out_valid,
    input  logic              out_ready,
    output logic [OUT*B-1:0]  out_data
);
    function automatic int gcd_of(input int a, input int b);
        gcd_of = 1;
        for (int k = 1; k <= a; k++)
            if (a % k == 0 && b % k == 0) gcd_of = k;
    endfunction
    localparam int G = gcd_of(IN, OUT);

    logic [CAP*B-1:0] buffer;
    logic [$clog2(CAP+1)-1:0] count;

    assign out_valid = count >= OUT;
    assign out_data = buffer[OUT*B-1:0];
    assign in_ready = count + IN <= CAP;
    wire pop = out_valid && out_ready;
    wire push = in_valid && in_ready;
    wire [$clog2(CAP+1)-1:0] kept = pop ? count - OUT : count;

    logic [CAP*B-1:0] shifted, next;
    always_comb begin
        shifted = pop ? buffer >> (OUT*B) : buffer;
        next = shifted;
        // chunk j of the input word lands at chunk kept/G + j (constant part-selects only: a variable index times B
        // would be a multiplier, which synthesis maps to a DSP block)
        if (push)
            for (int e = 0; e < CAP / G; e++)
                for (int j = 0; j < IN / G && j <= e; j++)
                    if (32'(kept) == (e - j) * G) next[e*G*B +: G*B] = in_data[j*G*B +: G*B];
    end

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            count <= '0;
        end else begin
            count <= kept + (push ? IN : 0);
            buffer <= next;
        end
    end
endmodule
