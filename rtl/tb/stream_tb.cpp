// Stream testbench for one kernel or a whole top: feeds words from a file on in_*, collects words from out_*, with
// random stalls on both sides (ready/valid back-pressure). Words are hex, one per line, most significant digit first.
// usage: Vkernel IN.hex OUT.hex N_OUT SEED STALL_PERCENT   -> prints "cycles N" on success
#include "Vkernel.h"
#include "verilated.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

using Chunks = std::vector<uint32_t>;

static Chunks parse_hex(const std::string& s) {
    Chunks c;
    for (int end = static_cast<int>(s.size()); end > 0; end -= 8) {
        int start = end > 8 ? end - 8 : 0;
        c.push_back(static_cast<uint32_t>(std::stoul(s.substr(start, end - start), nullptr, 16)));
    }
    return c;
}

static std::string format_hex(const Chunks& c) {
    std::string s;
    char buf[9];
    for (int i = static_cast<int>(c.size()) - 1; i >= 0; --i) {
        std::snprintf(buf, sizeof buf, "%08x", c[i]);
        s += buf;
    }
    return s;
}

template <typename T> static void put(T& port, const Chunks& c) {
    uint64_t v = c.empty() ? 0 : c[0];
    if (c.size() > 1 && sizeof(T) > 4) v |= static_cast<uint64_t>(c[1]) << 32;
    port = static_cast<T>(v);
}
template <std::size_t N> static void put(VlWide<N>& port, const Chunks& c) {
    for (std::size_t i = 0; i < N; ++i) port[i] = i < c.size() ? c[i] : 0;
}
template <typename T> static Chunks get(const T& port) {
    uint64_t v = static_cast<uint64_t>(port);
    return sizeof(T) > 4 ? Chunks{static_cast<uint32_t>(v), static_cast<uint32_t>(v >> 32)}
                         : Chunks{static_cast<uint32_t>(v)};
}
template <std::size_t N> static Chunks get(const VlWide<N>& port) {
    Chunks c(N);
    for (std::size_t i = 0; i < N; ++i) c[i] = port[i];
    return c;
}

int main(int argc, char** argv) {
    if (argc != 6) {
        std::fprintf(stderr, "usage: %s IN.hex OUT.hex N_OUT SEED STALL_PERCENT\n", argv[0]);
        return 2;
    }
    std::ifstream in_file(argv[1]);
    std::vector<Chunks> inputs;
    for (std::string line; std::getline(in_file, line);)
        if (!line.empty()) inputs.push_back(parse_hex(line));
    const long n_out = std::atol(argv[3]);
    std::mt19937 rng(static_cast<uint32_t>(std::atol(argv[4])));
    const int stall = std::atoi(argv[5]);
    auto roll = [&]() { return static_cast<int>(rng() % 100) >= stall; };

    Vkernel top;
    top.clk = 0;
    top.rst_n = 0;
    top.in_valid = 0;
    top.out_ready = 0;
    for (int i = 0; i < 4; ++i) {
        top.clk = !top.clk;
        top.eval();
    }
    top.rst_n = 1;

    std::ofstream out_file(argv[2]);
    std::size_t sent = 0;
    long received = 0, cycles = 0;
    const long limit = 1000000L + 1000L * static_cast<long>(inputs.size() + n_out);
    while (received < n_out) {
        if (++cycles > limit) {
            std::fprintf(stderr, "timeout: %ld of %ld output words after %ld cycles\n", received, n_out, cycles);
            return 1;
        }
        top.in_valid = sent < inputs.size() && roll();
        if (top.in_valid) put(top.in_data, inputs[sent]);
        top.out_ready = roll();
        top.clk = 0;
        top.eval();
        const bool took = top.in_valid && top.in_ready;
        const bool gave = top.out_valid && top.out_ready;
        if (gave) {
            out_file << format_hex(get(top.out_data)) << "\n";
            ++received;
        }
        top.clk = 1;
        top.eval();
        if (took) ++sent;
    }
    top.final();
    std::printf("cycles %ld\n", cycles);
    return sent == inputs.size() ? 0 : 3;
}
