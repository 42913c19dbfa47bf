// TokenSelect: keeps vectors FIRST .. FIRST + COUNT - 1 of each frame of VECTORS vectors (C channels, PE per word)
// and drops the rest (the class token a pooler reads). Every word is accepted; a kept word goes out registered,
// a dropped one only advances the counters. One word per cycle.
module edge_tokenselect #(
    parameter int C = 4,
    parameter int PE = 1,
    parameter int VECTORS = 2,
    parameter int FIRST = 0,
    parameter int COUNT = 1,
    parameter int B = 4,             // element bits
    localparam int CF = C / PE
) (
    input  logic               clk,
    input  logic               rst_n,
    input  logic               in_valid,
    output logic               in_ready,
    input  logic [PE*B-1:0]    in_data,
    output logic               out_valid,
    input  logic               out_ready,
    output logic [PE*B-1:0]    out_data
);
    logic [$clog2(CF+1)-1:0] cf;
    logic [$clog2(VECTORS+1)-1:0] v;
    wire kept = (v >= FIRST) && (v < FIRST + COUNT);
    assign in_ready = !kept || !out_valid || out_ready;
    wire fire = in_valid && in_ready;

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            cf <= '0;
            v <= '0;
            out_valid <= 1'b0;
        end else begin
            if (out_valid && out_ready) out_valid <= 1'b0;
            if (fire) begin
                if (kept) begin
                    out_data <= in_data;
                    out_valid <= 1'b1;
                end
                if (cf == CF - 1) begin
                    cf <= '0;
                    v <= (v == VECTORS - 1) ? '0 : v + 1'b1;
                end else begin
                    cf <= cf + 1'b1;
                end
            end
        end
    end
endmodule
