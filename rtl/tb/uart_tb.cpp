// Serial-line testbench of an open-FPGA build's board top (edge_board: clk, uart_rx, uart_tx): the host's side of the
// UART is modelled bit by bit at CLKS_PER_BIT clocks per bit (8N1, LSB first), so the shell's receiver, word packing,
// input FIFO, the accelerator and the transmitter all run as on the board.
// usage: Vboard IN.bin OUT.bin N_OUT_BYTES CLKS_PER_BIT IN_FRAME_BYTES OUT_FRAME_BYTES [MAX_CYCLES]
//   sends the bytes of IN.bin as the driver does (at most two frames ahead of the frames received back), writes the
//   first N_OUT_BYTES bytes the design transmits to OUT.bin, prints "cycles N".
// usage: Vboard --pty PATH_FILE CLKS_PER_BIT
//   the host side is a pseudo-terminal: its slave's path goes to PATH_FILE, bytes a program (the deploy's driver,
//   through pyserial) writes there go onto uart_rx, bytes on uart_tx come back to it. Runs until killed.
#include "Vboard.h"
#include "verilated.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

// one clock of the board with the host's line: drive uart_rx from `frame` (10 bits, -1: idle), sample uart_tx
struct Host {
    uint64_t cpb;
    int tx_bit = -1;
    uint64_t tx_ticks = 0;
    uint16_t tx_frame = 0;
    int rx_bit = -1;
    uint64_t rx_ticks = 0;
    uint8_t rx_byte = 0;

    bool idle() const { return tx_bit < 0; }
    void send(uint8_t byte) {
        tx_frame = static_cast<uint16_t>((1u << 9) | (byte << 1));  // stop, data, start
        tx_bit = 0;
        tx_ticks = 0;
    }
    // returns 1 with `out` set when a byte completed, -1 on a framing error, else 0
    int clock(Vboard* top, uint8_t& out) {
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
        const int line = top->uart_tx & 1;
        if (rx_bit < 0) {
            if (!line) {
                rx_bit = 0;
                rx_ticks = cpb / 2;
            }
            return 0;
        }
        if (rx_ticks > 0) {
            --rx_ticks;
            return 0;
        }
        if (rx_bit >= 1 && rx_bit <= 8) rx_byte = static_cast<uint8_t>((rx_byte >> 1) | (line << 7));
        if (rx_bit == 9) {
            rx_bit = -1;
            if (!line) return -1;
            out = rx_byte;
            return 1;
        }
        ++rx_bit;
        rx_ticks = cpb - 1;
        return 0;
    }
};

static int run_pty(const char* path_file, uint64_t cpb) {
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
        std::perror("posix_openpt");
        return 1;
    }
    const char* name = ptsname(master);
    int slave = open(name, O_RDWR | O_NOCTTY);  // held open: the master never reads EOF between two clients
    termios t{};
    tcgetattr(slave, &t);
    cfmakeraw(&t);
    tcsetattr(slave, TCSANOW, &t);
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    {
        std::ofstream f(path_file);
        f << name << "\n";
    }
    auto* ctx = new VerilatedContext;
    auto* top = new Vboard{ctx};
    Host host{cpb};
    std::vector<uint8_t> pending;
    size_t next = 0;
    uint64_t quiet = 0;
    for (uint64_t cycle = 0;; ++cycle) {
        if (cycle % 64 == 0) {
            uint8_t buf[4096];
            ssize_t n = read(master, buf, sizeof buf);
            if (n > 0) {
                if (next == pending.size()) {
                    pending.clear();
                    next = 0;
                }
                pending.insert(pending.end(), buf, buf + n);
                quiet = 0;
            }
        }
        if (host.idle() && next < pending.size() && cycle > 64) host.send(pending[next++]);
        uint8_t out = 0;
        int got = host.clock(top, out);
        if (got == 1) {
            ssize_t w = write(master, &out, 1);
            (void)w;
            quiet = 0;
        } else if (got < 0) {
            std::fprintf(stderr, "framing error on uart_tx at cycle %llu\n", static_cast<unsigned long long>(cycle));
        }
        // nothing on either line for a long while: wait for the host instead of spinning
        if (++quiet > 1000000 && host.idle() && next == pending.size() && host.rx_bit < 0) {
            pollfd p{master, POLLIN, 0};
            poll(&p, 1, 5);
        }
    }
}

int main(int argc, char** argv) {
    if (argc == 4 && std::string(argv[1]) == "--pty") return run_pty(argv[2], std::strtoull(argv[3], nullptr, 10));
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
    Host host{cpb};
    size_t next_byte = 0;
    std::vector<uint8_t> output;
    uint64_t cycle = 0;
    for (; cycle < max_cycles && output.size() < n_out; ++cycle) {
        const size_t frames_back = out_frame ? output.size() / out_frame : 0;
        const bool window_open = in_frame == 0 || next_byte < (frames_back + 2) * in_frame;
        if (host.idle() && next_byte < input.size() && cycle > 64 && window_open) host.send(input[next_byte++]);
        uint8_t out = 0;
        const int got = host.clock(top, out);
        if (got < 0) {
            std::fprintf(stderr, "framing error on uart_tx at cycle %llu\n", static_cast<unsigned long long>(cycle));
            return 1;
        }
        if (got == 1) output.push_back(out);
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
