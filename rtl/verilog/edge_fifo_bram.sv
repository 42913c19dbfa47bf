// Stream FIFO of DEPTH words of W bits in block RAM: the memory is written and read synchronously (one read port
// with an enable), so synthesis maps it to BRAM/EBR. The read register is the output: a word is fetched when the
// output is empty or being taken, so out_data holds still while out_valid waits for out_ready.
module edge_fifo_bram #(
    parameter int W = 8,
    parameter int DEPTH = 512
) (
    input  logic          clk,
    input  logic          rst_n,
    input  logic          in_valid,
    output logic          in_ready,
    input  logic [W-1:0]  in_data,
    output logic          out_valid,
    input  logic          out_ready,
    output logic [W-1:0]  out_data
);
    localparam int AW = DEPTH > 1 ? $clog2(DEPTH) : 1;
    logic [W-1:0] mem [0:DEPTH-1];
    logic [AW-1:0] rd, wr;
    logic [$clog2(DEPTH+1)-1:0] stored;  // words in the memory, not counting the one in the output register

    assign in_ready = stored < DEPTH;
    wire push = in_valid && in_ready;
    wire fetch = stored != 0 && (!out_valid || out_ready);

`ifdef VERILATOR
    int peak = 0;
    always_ff @(posedge clk) if (stored + out_valid > peak) peak <= stored + out_valid;
    final $display("peak %m %0d", peak);
`endif

    always_ff @(posedge clk) begin
        if (push) mem[wr] <= in_data;
        if (fetch) out_data <= mem[rd];
    end

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            rd <= '0;
            wr <= '0;
            stored <= '0;
            out_valid <= 1'b0;
        end else begin
            if (push) wr <= (wr == AW'(DEPTH - 1)) ? '0 : wr + 1'b1;
            if (fetch) rd <= (rd == AW'(DEPTH - 1)) ? '0 : rd + 1'b1;
            stored <= stored + (push ? 1 : 0) - (fetch ? 1 : 0);
            if (fetch) out_valid <= 1'b1;
            else if (out_ready) out_valid <= 1'b0;
        end
    end
endmodule
