// The board shell of an open-FPGA build: the accelerator (edge_top) behind a UART. The host sends a frame as its
// input words, each IN_BYTES bytes little-endian (element 0 in the least significant bits), and reads back the
// output words the same way, OUT_BYTES bytes each. A UART has no flow control, so the input words of one frame
// wait in a block-RAM FIFO (IN_DEPTH words: the driver keeps at most two frames in flight) while the accelerator is busy; outputs wait for the transmitter
// (back-pressure through m_axis_tready). Reset is held for 16 clocks after configuration (flip-flops start at 0).
module edge_uart_shell #(
    parameter int CLKS_PER_BIT = 217,
    parameter int IN_WIDTH = 8,
    parameter int OUT_WIDTH = 8,
    parameter int IN_DEPTH = 16
) (
    input  logic clk,
    input  logic uart_rx,
    output logic uart_tx
);
    localparam int IN_BYTES = (IN_WIDTH + 7) / 8;
    localparam int OUT_BYTES = (OUT_WIDTH + 7) / 8;

    logic [4:0] por = 5'd0;
    wire rst_n = por[4];
    always_ff @(posedge clk) if (!por[4]) por <= por + 1'b1;

    // bytes in -> input words
    logic rx_valid;
    logic [7:0] rx_data;
    edge_uart_rx #(.CLKS_PER_BIT(CLKS_PER_BIT)) u_rx (
        .clk(clk), .rst_n(rst_n), .rx(uart_rx), .valid(rx_valid), .data(rx_data));

    logic [IN_BYTES*8-1:0] in_word;
    logic [$clog2(IN_BYTES+1)-1:0] in_count;
    logic in_word_valid;
    always_ff @(posedge clk) begin
        in_word_valid <= 1'b0;
        if (!rst_n) begin
            in_count <= '0;
        end else if (rx_valid) begin
            in_word[in_count*8 +: 8] <= rx_data;
            if (in_count == IN_BYTES - 1) begin
                in_count <= '0;
                in_word_valid <= 1'b1;
            end else begin
                in_count <= in_count + 1'b1;
            end
        end
    end

    logic s_valid, s_ready;
    logic [IN_WIDTH-1:0] s_data;
    logic unused_ready;
    edge_fifo_bram #(.W(IN_WIDTH), .DEPTH(IN_DEPTH)) u_in_fifo (
        .clk(clk), .rst_n(rst_n),
        .in_valid(in_word_valid), .in_ready(unused_ready), .in_data(in_word[IN_WIDTH-1:0]),
        .out_valid(s_valid), .out_ready(s_ready), .out_data(s_data));

    // the accelerator
    logic m_valid, m_ready;
    logic [OUT_WIDTH-1:0] m_data;
    edge_top u_top (
        .clk(clk), .rst_n(rst_n),
        .s_axis_tvalid(s_valid), .s_axis_tready(s_ready), .s_axis_tdata(s_data),
        .m_axis_tvalid(m_valid), .m_axis_tready(m_ready), .m_axis_tdata(m_data));

    // output words -> bytes out
    logic [OUT_BYTES*8-1:0] out_word;
    logic [$clog2(OUT_BYTES+1)-1:0] out_left;
    logic tx_ready;
    assign m_ready = out_left == 0;
    always_ff @(posedge clk) begin
        if (!rst_n) begin
            out_left <= '0;
        end else if (out_left == 0) begin
            if (m_valid) begin
                out_word <= (OUT_BYTES*8)'(m_data);
                out_left <= ($clog2(OUT_BYTES+1))'(OUT_BYTES);
            end
        end else if (tx_ready) begin
            out_word <= out_word >> 8;
            out_left <= out_left - 1'b1;
        end
    end
    edge_uart_tx #(.CLKS_PER_BIT(CLKS_PER_BIT)) u_tx (
        .clk(clk), .rst_n(rst_n), .in_valid(out_left != 0), .in_ready(tx_ready), .in_data(out_word[7:0]),
        .tx(uart_tx));
endmodule
