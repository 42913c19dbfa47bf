// Padding: a H x W feature map of C channels (SIMD channels per word, pixels in row-major order) framed by
// T/L/B/R pixels of the constant VALUE in every channel. Output words are visited in the padded map's order; a word
// inside the original map passes the next input word, one outside is the constant. One word per cycle.
module edge_pad #(
    parameter int H = 4,
    parameter int W = 4,
    parameter int C = 1,
    parameter int SIMD = 1,
    parameter int B = 8,             // element bits
    parameter int T = 1,
    parameter int L = 1,
    parameter int BOT = 1,
    parameter int R = 1,
    parameter int VALUE = 0,         // the pad value, as B-bit two's complement (bipolar: 1 = +1)
    parameter bit IN_BIPOLAR = 0,    // one-bit bipolar input elements (1 = +1) widened to B-bit -1/+1
    localparam int IB = IN_BIPOLAR ? 1 : B,
    localparam int OH = H + T + BOT,
    localparam int OW = W + L + R,
    localparam int CF = C / SIMD
) (
    input  logic               clk,
    input  logic               rst_n,
    input  logic               in_valid,
    output logic               in_ready,
    input  logic [SIMD*IB-1:0] in_data,
    output logic               out_valid,
    input  logic               out_ready,
    output logic [SIMD*B-1:0]  out_data
);
    logic [$clog2(OH+1)-1:0] y;
    logic [$clog2(OW+1)-1:0] x;
    logic [$clog2(CF+1)-1:0] cf;

    wire interior = (y >= T) && (y < T + H) && (x >= L) && (x < L + W);
    wire room = !out_valid || out_ready;
    wire fire = room && (!interior || in_valid);
    assign in_ready = room && interior;

    logic [SIMD*B-1:0] constant, widened;
    logic [31:0] value;
    always_comb begin
        value = VALUE;
        for (int s = 0; s < SIMD; s++) begin
            constant[s*B +: B] = value[B-1:0];
            if (IN_BIPOLAR) widened[s*B +: B] = in_data[s*IB] ? B'(1) : {B{1'b1}};
            else widened[s*B +: B] = in_data[s*IB +: IB];
        end
    end

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            y <= '0;
            x <= '0;
            cf <= '0;
            out_valid <= 1'b0;
        end else begin
            if (out_valid && out_ready) out_valid <= 1'b0;
            if (fire) begin
                out_data <= interior ? widened : constant;
                out_valid <= 1'b1;
                if (cf == CF - 1) begin
                    cf <= '0;
                    if (x == OW - 1) begin
                        x <= '0;
                        y <= (y == OH - 1) ? '0 : y + 1'b1;
                    end else begin
                        x <= x + 1'b1;
                    end
                end else begin
                    cf <= cf + 1'b1;
                end
            end
        end
    end
endmodule
