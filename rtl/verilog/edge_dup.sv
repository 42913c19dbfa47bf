// DuplicateStreams: one stream copied to N consumers (the fork before a residual branch). A word leaves on each
// output independently and is taken from the input once every output has passed it on. One word per cycle.
module edge_dup #(
    parameter int N = 2,
    parameter int W = 8              // word bits
) (
    input  logic             clk,
    input  logic             rst_n,
    input  logic             in_valid,
    output logic             in_ready,
    input  logic [W-1:0]     in_data,
    output logic [N-1:0]     out_valid,
    input  logic [N-1:0]     out_ready,
    output logic [W-1:0]     out_data
);
    logic [N-1:0] taken;             // outputs that already passed on the current word
    assign out_data = in_data;
    assign out_valid = {N{in_valid}} & ~taken;
    assign in_ready = &(taken | out_ready);

    always_ff @(posedge clk) begin
        if (!rst_n) taken <= '0;
        else if (in_valid && in_ready) taken <= '0;
        else taken <= taken | (out_valid & out_ready);
    end
endmodule
