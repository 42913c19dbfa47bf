// ConcatConstant: constant vectors inserted into a stream along its vector (token) axis, as a ViT's class token goes
// in front of its patch tokens. Each frame is VECTORS + COUNT output vectors of C channels (PE per word); vectors
// AT .. AT + COUNT - 1 come from the table ROM (COUNT * C/PE words, PE signed TB-bit entries each, entry p at
// [p*TB +: TB]), the others are the input's vectors in order, their elements widened or kept as OB bits.
// One output word per cycle; the input is read only while a stream vector is due.
module edge_concatconst #(
    parameter int C = 4,
    parameter int PE = 1,
    parameter int VECTORS = 2,
    parameter int AT = 0,            // 0: before the stream's vectors; VECTORS: after them
    parameter int COUNT = 1,
    parameter int IB = 4,            // input element bits
    parameter bit IN_SIGNED = 0,
    parameter int TB = 4,            // table entry bits (two's complement)
    parameter int OB = 5,            // output element bits (two's complement low bits)
    parameter TABLE = "table.mem",
    localparam int CF = C / PE,
    localparam int TW = PE * TB,
    localparam int OUT_VECTORS = VECTORS + COUNT
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
    logic [TW-1:0] rom [0:COUNT*CF-1];
    initial $readmemh(TABLE, rom);

    logic [$clog2(CF+1)-1:0] cf;
    logic [$clog2(OUT_VECTORS+1)-1:0] v;
    wire constant = (v >= AT) && (v < AT + COUNT);
    wire room = !out_valid || out_ready;
    assign in_ready = !constant && room;
    wire fire = room && (constant || in_valid);
    wire [TW-1:0] row = rom[(v - AT) * CF + cf];

    logic [PE*OB-1:0] result;
    logic signed [31:0] e;
    always_comb begin
        for (int p = 0; p < PE; p++) begin
            if (constant) e = $signed(row[p*TB +: TB]);
            else e = IN_SIGNED ? $signed(in_data[p*IB +: IB]) : $signed({1'b0, in_data[p*IB +: IB]});
            result[p*OB +: OB] = e[OB-1:0];
        end
    end

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            cf <= '0;
            v <= '0;
            out_valid <= 1'b0;
        end else begin
            if (out_valid && out_ready) out_valid <= 1'b0;
            if (fire) begin
                out_data <= result;
                out_valid <= 1'b1;
                if (cf == CF - 1) begin
                    cf <= '0;
                    v <= (v == OUT_VECTORS - 1) ? '0 : v + 1'b1;
                end else begin
                    cf <= cf + 1'b1;
                end
            end
        end
    end
endmodule
