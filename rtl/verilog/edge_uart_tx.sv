// UART transmitter, 8N1, LSB first, with a ready/valid byte input: a byte is taken when the line is idle.
module edge_uart_tx #(
    parameter int CLKS_PER_BIT = 217
) (
    input  logic       clk,
    input  logic       rst_n,
    input  logic       in_valid,
    output logic       in_ready,
    input  logic [7:0] in_data,
    output logic       tx
);
    localparam int CW = $clog2(CLKS_PER_BIT + 1);
    logic [CW-1:0] ticks;
    logic [3:0] bits_left;  // start + 8 data + stop = 10 bits per byte
    logic [9:0] frame;

    assign in_ready = bits_left == 0;
    assign tx = frame[0] | !rst_n;  // idle high from configuration on, also while reset is held

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            bits_left <= '0;
            ticks <= '0;
            frame <= 10'h3ff;
        end else if (bits_left == 0) begin
            if (in_valid) begin
                frame <= {1'b1, in_data, 1'b0};
                bits_left <= 4'd10;
                ticks <= CW'(CLKS_PER_BIT - 1);
            end
        end else if (ticks != 0) begin
            ticks <= ticks - 1'b1;
        end else begin
            frame <= {1'b1, frame[9:1]};
            bits_left <= bits_left - 1'b1;
            ticks <= CW'(CLKS_PER_BIT - 1);
        end
    end
endmodule
