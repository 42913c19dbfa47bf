// Serial-line testbench of an open-FPGA build's board top (edge_board: clk, uart_rx, uart_tx): the host's side of the
// UART is modelled bit by bit at CLKS_PER_BIT clocks per bit (8N1, LSB first), so the shell's receiver, word packing,
// input FIFO, the accelerator and the transmitter all run as on the board.
// usage: Vboard IN.bin OUT.bin N_OUT_BYTES CLKS_PER_BIT IN_FRAME_BYTES OUT_FRAME_BYTES [MAX_CYCLES]
//   sends the bytes of IN.bin as the driver does (at most two frames ahead of the frames received back), writes the
//   first N_OUT_BYTES bytes the design transmits to OUT.bin, prints "cycles N".
#include "Vboard.h"
#include "verilated.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <vector>

int main(int argc, char** argv) {
    if (argc < 7 || argc > 8) {
        std::fprintf(stderr, "usage: %s IN.bin OUT.bin N_OUT_BYTES CLKS_PER_BIT IN_FRAME_BYTES OUT_FRAME_BYTES "
                             "[MAX_CYCLES]\n", argv[0]);
        return 2;
    }
    std::ifstream in_file(argv[1], std::ios::binary);
    std::vector<uint8_t> input((std::istreambuf_iterator<char>(in_file)), std::istreambuf_iterator<char>());
    const size_t n_out = std::strtoull(argv[3], nullptr, 10);
    const uint64_t cpb = std::strtoull(argv[4], nullptr, 10);
    const size_t in_frame = std::strtoull(argv[5], nullptr, 10);
    const size_t out_frame = std::strtoull(argv[6], nullptr, 10);
    const uint64_t max_cycles = argc > 7 ? std::strtoull(argv[7], nullptr, 10)
                                         : 1000000 + 40 * cpb * (input.size() + n_out + 16);

    auto* ctx = new VerilatedContext;
    auto* top = new Vboard{ctx};
    top->clk = 0;
    top->uart_rx = 1;

    // host -> FPGA: the current frame of 10 bits and where in it the line is
    size_t next_byte = 0;
    int tx_bit = -1;  // -1: idle
    uint64_t tx_ticks = 0;
    uint16_t tx_frame = 0;
    // FPGA -> host: a receiver sampling mid-bit
    std::vector<uint8_t> output;
    int rx_bit = -1;
    uint64_t rx_ticks = 0;
    uint8_t rx_byte = 0;

    uint64_t cycle = 0;
    for (; cycle < max_cycles && output.size() < n_out; ++cycle) {
        // drive the line for this clock
        const size_t frames_back = out_frame ? output.size() / out_frame : 0;
        const bool window_open = in_frame == 0 || next_byte < (frames_back + 2) * in_frame;
        if (tx_bit < 0 && next_byte < input.size() && cycle > 64 && window_open) {
            tx_frame = static_cast<uint16_t>((1u << 9) | (input[next_byte++] << 1));  // stop, data, start
            tx_bit = 0;
            tx_ticks = 0;
        }
        if (tx_bit >= 0) {
            top->uart_rx = (tx_frame >> tx_bit) & 1;
            if (++tx_ticks == cpb) {
                tx_ticks = 0;
                if (++tx_bit == 10) tx_bit = -1;
            }
        } else {
            top->uart_rx = 1;
        }
        top->clk = 1;
        top->eval();
        top->clk = 0;
        top->eval();
        // sample the design's line
        const int line = top->uart_tx & 1;
        if (rx_bit < 0) {
            if (!line) {
                rx_bit = 0;
                rx_ticks = cpb / 2;  // to the middle of the start bit
            }
        } else if (rx_ticks > 0) {
            --rx_ticks;
        } else {
            if (rx_bit >= 1 && rx_bit <= 8) rx_byte = static_cast<uint8_t>((rx_byte >> 1) | (line << 7));
            if (rx_bit == 9) {
                if (!line) {
                    std::fprintf(stderr, "framing error on uart_tx at cycle %llu\n",
                                 static_cast<unsigned long long>(cycle));
                    return 1;
                }
                output.push_back(rx_byte);
                rx_bit = -1;
                continue;
            }
            ++rx_bit;
            rx_ticks = cpb - 1;
        }
    }
    std::ofstream out_file(argv[2], std::ios::binary);
    out_file.write(reinterpret_cast<const char*>(output.data()), static_cast<std::streamsize>(output.size()));
    if (output.size() < n_out) {
        std::fprintf(stderr, "%zu of %zu bytes after %llu cycles (%zu of %zu input bytes sent)\n", output.size(), n_out,
                     static_cast<unsigned long long>(cycle), next_byte, input.size());
        return 1;
    }
    std::printf("cycles %llu\n", static_cast<unsigned long long>(cycle));
    top->final();
    delete top;
    delete ctx;
    return 0;
}
