// LabelSelect: the indices of the K largest of a frame's L values, largest first, the lower index first among equal
// values (FINN's LabelSelect). PE values per input word are inserted into a sorted list of K (value, index) pairs,
// one word per cycle; after the frame's last word the list moves to an output stage that sends one index per word
// while the next frame is already being sorted.
module edge_labelselect #(
    parameter int L = 10,
    parameter int K = 1,
    parameter int PE = 1,
    parameter int IB = 8,
    parameter bit IN_SIGNED = 1,
    parameter int OB = 4,            // index bits
    localparam int NW = L / PE
) (
    input  logic             clk,
    input  logic             rst_n,
    input  logic             in_valid,
    output logic             in_ready,
    input  logic [PE*IB-1:0] in_data,
    output logic             out_valid,
    input  logic             out_ready,
    output logic [OB-1:0]    out_data
);
    logic signed [IB:0] val [0:K-1];
    logic [OB-1:0] idx [0:K-1];
    logic [OB-1:0] pending [0:K-1];  // the previous frame's indices, being sent
    logic [$clog2(K+1)-1:0] left;    // indices of `pending` still to send
    logic [$clog2(K+1)-1:0] sent;
    logic [$clog2(NW+1)-1:0] w;

    wire last = (w == NW - 1);
    // the last word of a frame needs the output stage free (or freeing in this cycle)
    wire stage_free = (left == 0) || (left == 1 && out_ready);
    assign in_ready = !last || stage_free;
    wire fire = in_valid && in_ready;
    assign out_valid = left != 0;
    assign out_data = pending[sent];

    // insertion of this word's PE values, in index order, into the list (entries before w*PE start empty)
    logic signed [IB:0] nv [0:K-1];
    logic [OB-1:0] ni [0:K-1];
    logic [K:0] filled;
    logic signed [IB:0] x;
    logic [31:0] at;
    always_comb begin
        for (int j = 0; j < K; j++) begin
            nv[j] = val[j];
            ni[j] = idx[j];
        end
        for (int p = 0; p < PE; p++) begin
            x = IN_SIGNED ? $signed(in_data[p*IB +: IB]) : $signed({1'b0, in_data[p*IB +: IB]});
            // entries held so far: min(K, index of this value)
            at = K;
            for (int j = K - 1; j >= 0; j--)
                if ((w * PE + p <= j) || (x > nv[j])) at = j;
            for (int j = K - 1; j > 0; j--)
                if (j > at) begin
                    nv[j] = nv[j-1];
                    ni[j] = ni[j-1];
                end
            if (at < K) begin
                nv[at] = x;
                ni[at] = w * PE + p;
            end
        end
    end

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            w <= '0;
            left <= '0;
            sent <= '0;
        end else begin
            if (out_valid && out_ready) begin
                left <= left - 1'b1;
                sent <= sent + 1'b1;
            end
            if (fire) begin
                for (int j = 0; j < K; j++) begin
                    val[j] <= nv[j];
                    idx[j] <= ni[j];
                end
                if (last) begin
                    for (int j = 0; j < K; j++) pending[j] <= ni[j];
                    left <= K;
                    sent <= '0;
                    w <= '0;
                end else begin
                    w <= w + 1'b1;
                end
            end
        end
    end
endmodule
