// A per-channel-fold ROM stage shared by the table kernels (Thresholding, Lookup): NF words of TW bits, one per
// channel fold, read synchronously (a registered read port, block RAM when large). Primed after reset with word 0,
// then loaded with the next fold's word whenever a word passes. It owns the handshakes: the kernel computes its
// output from `row` and the input word, and registers it when `fire`.
module edge_foldrom #(
    parameter int NF = 1,
    parameter int TW = 1,
    parameter ROM = "rom.mem",
    parameter STYLE = "block"      // rom_style: "block" (block RAM) or "logic" (LUTs)
) (
    input  logic            clk,
    input  logic            rst_n,
    input  logic            in_valid,
    output logic            in_ready,
    output logic            out_valid,
    input  logic            out_ready,
    output logic            fire,
    output logic [TW-1:0]   row
);
    (* rom_style = STYLE *) logic [TW-1:0] rom [0:NF-1];
    initial $readmemh(ROM, rom);

    logic primed;
    logic [$clog2(NF+1)-1:0] nf;
    wire [$clog2(NF+1)-1:0] nf_next = (nf == NF - 1) ? '0 : nf + 1'b1;
    assign in_ready = primed && (!out_valid || out_ready);
    assign fire = in_valid && in_ready;

    always_ff @(posedge clk)
        if (!primed || fire) row <= rom[primed ? nf_next : '0];

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            nf <= '0;
            primed <= 1'b0;
            out_valid <= 1'b0;
        end else begin
            primed <= 1'b1;
            if (out_valid && out_ready) out_valid <= 1'b0;
            if (fire) begin
                out_valid <= 1'b1;
                nf <= nf_next;
            end
        end
    end
endmodule
