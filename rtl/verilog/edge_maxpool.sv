// Max pooling over non-overlapping KH x KW windows (stride = kernel; rows and columns past the last whole window
// are read and dropped), PE channels per word, pixels in row-major order. A row buffer holds the running maximum of
// each output column's window; the word that completes a window leaves with the maximum. One input word per cycle.
module edge_maxpool #(
    parameter int H = 4,
    parameter int W = 4,
    parameter int C = 1,
    parameter int PE = 1,
    parameter int B = 8,
    parameter bit SIGNED = 0,
    parameter bit BIPOLAR = 0,       // one bit per element, 1 = +1: the maximum is the OR
    parameter int KH = 2,
    parameter int KW = 2,
    localparam int OH = H / KH,
    localparam int OW = W / KW,
    localparam int CF = C / PE
) (
    input  logic             clk,
    input  logic             rst_n,
    input  logic             in_valid,
    output logic             in_ready,
    input  logic [PE*B-1:0]  in_data,
    output logic             out_valid,
    input  logic             out_ready,
    output logic [PE*B-1:0]  out_data
);
    logic [PE*B-1:0] best [0:OW*CF-1];
    logic [$clog2(H+1)-1:0] y;
    logic [$clog2(W+1)-1:0] x;
    logic [$clog2(KH+1)-1:0] ky;
    logic [$clog2(KW+1)-1:0] kx;
    logic [$clog2(OW+1)-1:0] ox;
    logic [$clog2(CF+1)-1:0] cf;

    wire used = (y < OH * KH) && (x < OW * KW);
    wire first = (ky == 0) && (kx == 0);
    wire completes = used && (ky == KH - 1) && (kx == KW - 1);
    wire room = !completes || !out_valid || out_ready;
    wire fire = in_valid && room;
    assign in_ready = room;

    wire [$clog2(OW*CF+1)-1:0] slot = ox * CF + cf;
    logic [PE*B-1:0] merged;
    logic [B-1:0] a, b;
    always_comb begin
        for (int p = 0; p < PE; p++) begin
            a = in_data[p*B +: B];
            b = best[slot][p*B +: B];
            if (first) merged[p*B +: B] = a;
            else if (BIPOLAR) merged[p*B +: B] = a | b;
            else if (SIGNED) merged[p*B +: B] = ($signed(a) > $signed(b)) ? a : b;
            else merged[p*B +: B] = (a > b) ? a : b;
        end
    end

    always_ff @(posedge clk) begin
        if (fire && used) best[slot] <= merged;
        if (!rst_n) begin
            y <= '0;
            x <= '0;
            ky <= '0;
            kx <= '0;
            ox <= '0;
            cf <= '0;
            out_valid <= 1'b0;
        end else begin
            if (out_valid && out_ready) out_valid <= 1'b0;
            if (fire) begin
                if (completes) begin
                    out_data <= merged;
                    out_valid <= 1'b1;
                end
                if (cf != CF - 1) cf <= cf + 1'b1;
                else begin
                    cf <= '0;
                    if (x == W - 1) begin
                        x <= '0;
                        kx <= '0;
                        ox <= '0;
                        y <= (y == H - 1) ? '0 : y + 1'b1;
                        ky <= (y == H - 1 || ky == KH - 1) ? '0 : ky + 1'b1;
                    end else begin
                        x <= x + 1'b1;
                        if (kx == KW - 1) begin
                            kx <= '0;
                            ox <= ox + 1'b1;
                        end else begin
                            kx <= kx + 1'b1;
                        end
                    end
                end
            end
        end
    end
endmodule
