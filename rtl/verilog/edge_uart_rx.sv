// UART receiver, 8 data bits, no parity, one stop bit (8N1), LSB first. The line is synchronised into the clock
// domain, a start bit is confirmed at its middle and every data bit is sampled at its middle. A byte whose stop bit
// reads low (a framing error, e.g. a break) is dropped.
module edge_uart_rx #(
    parameter int CLKS_PER_BIT = 217
) (
    input  logic       clk,
    input  logic       rst_n,
    input  logic       rx,
    output logic       valid,  // one cycle per received byte
    output logic [7:0] data
);
    localparam int CW = $clog2(CLKS_PER_BIT + 1);
    logic [2:0] sync;
    logic [CW-1:0] ticks;
    logic [3:0] bit_index;  // 0: start bit, 1..8: data, 9: stop
    logic busy;
    logic [7:0] shift;
    wire line = sync[2];

    always_ff @(posedge clk) begin
        sync <= {sync[1:0], rx};
        valid <= 1'b0;
        if (!rst_n) begin
            sync <= 3'b111;
            busy <= 1'b0;
            ticks <= '0;
            bit_index <= '0;
        end else if (!busy) begin
            if (!line) begin  // falling edge: wait half a bit, then check the start bit
                busy <= 1'b1;
                ticks <= CW'(CLKS_PER_BIT / 2);
                bit_index <= '0;
            end
        end else if (ticks != 0) begin
            ticks <= ticks - 1'b1;
        end else begin
            ticks <= CW'(CLKS_PER_BIT - 1);
            bit_index <= bit_index + 1'b1;
            if (bit_index == 0) begin
                if (line) busy <= 1'b0;  // a glitch, not a start bit
            end else if (bit_index <= 8) begin
                shift <= {line, shift[7:1]};
            end else begin
                busy <= 1'b0;
                if (line) begin
                    valid <= 1'b1;
                    data <= shift;
                end
            end
        end
    end
endmodule
