// Stream FIFO (FINN's StreamingFIFO) of DEPTH words of W bits between two kernels. Its ready depends on its own
// fill level only, which cuts the combinational ready chain between kernels. The memory is read asynchronously
// (synthesis folds the read pointer into a block RAM's address register when it puts it there); STYLE is its
// ram_style: "distributed" (LUT RAM) or "block" as the resource model places it, "auto" for synthesis to choose.
// In Verilator the FIFO reports the most words it ever held ("peak"), which
// sizes the FIFOs of a build.
module edge_fifo #(
    parameter int W = 8,
    parameter int DEPTH = 2,
    parameter STYLE = "auto"
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
    (* ram_style = STYLE *) logic [W-1:0] mem [0:DEPTH-1];
    logic [$clog2(DEPTH+1)-1:0] count;
    logic [$clog2(DEPTH+1)-1:0] rd, wr;

    assign in_ready = count < DEPTH;
    assign out_valid = count != 0;
    assign out_data = mem[rd];
    wire push = in_valid && in_ready;
    wire pop = out_valid && out_ready;

`ifdef VERILATOR
    int peak = 0;
    always_ff @(posedge clk) if (count > peak) peak <= count;
    final $display("peak %m %0d", peak);
`endif

    always_ff @(posedge clk) begin
        if (push) mem[wr] <= in_data;
        if (!rst_n) begin
            count <= '0;
            rd <= '0;
            wr <= '0;
        end else begin
            if (push) wr <= (wr == DEPTH - 1) ? '0 : wr + 1'b1;
            if (pop) rd <= (rd == DEPTH - 1) ? '0 : rd + 1'b1;
            count <= count + (push ? 1 : 0) - (pop ? 1 : 0);
        end
    end
endmodule
