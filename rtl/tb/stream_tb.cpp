// Stream testbench for one kernel or a whole top: feeds words from a file on in_*, collects words from out_*, with
// random stalls on both sides (ready/valid back-pressure). Words are hex, one per line, most significant digit first.
// usage: Vkernel IN.hex OUT.hex N_OUT SEED STALL_PERCENT [FRAME_WORDS [MAX_CYCLES]]   -> prints "cycles N" on
// success, and with FRAME_WORDS > 0 the cycle at which each frame's last output word left ("frame C"). MAX_CYCLES
// (default: a million plus a thousand per word) ends a run that stopped making progress. A kernel has ports in_* / out_*;
// a generated top (compiled with -DEDGE_AXIS) has AXI-Stream ports s_axis_t* / m_axis_t*. A kernel of two inputs
// (compiled with -DEDGE_TWO_INPUTS: ports in0_* and in1_*) takes input 1's words from the file named by the
// environment variable EDGE_IN1, stalled independently of input 0.
#include "Vkernel.h"
#include "verilated.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#ifdef EDGE_AXIS
#define IN_VALID s_axis_tvalid
#define IN_READY s_axis_tready
#define IN_DATA s_axis_tdata
#define OUT_VALID m_axis_tvalid
#define OUT_READY m_axis_tready
#define OUT_DATA m_axis_tdata
#elif defined(EDGE_TWO_INPUTS)
#define IN_VALID in0_valid
#define IN_READY in0_ready
#define IN_DATA in0_data
#define OUT_VALID out_valid
#define OUT_READY out_ready
#define OUT_DATA out_data
#else
#define IN_VALID in_valid
#define IN_READY in_ready
#define IN_DATA in_data
#define OUT_VALID out_valid
#define OUT_READY out_ready
#define OUT_DATA out_data
#endif

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
    if (argc < 6 || argc > 8) {
        std::fprintf(stderr, "usage: %s IN.hex OUT.hex N_OUT SEED STALL_PERCENT [FRAME_WORDS [MAX_CYCLES]]\n", argv[0]);
        return 2;
    }
    std::ifstream in_file(argv[1]);
    std::vector<Chunks> inputs;
    for (std::string line; std::getline(in_file, line);)
        if (!line.empty()) inputs.push_back(parse_hex(line));
    std::vector<Chunks> inputs1;
#ifdef EDGE_TWO_INPUTS
    const char* in1_name = std::getenv("EDGE_IN1");
    if (!in1_name) {
        std::fprintf(stderr, "EDGE_IN1 must name input 1's word file\n");
        return 2;
    }
    std::ifstream in1_file(in1_name);
    for (std::string line; std::getline(in1_file, line);)
        if (!line.empty()) inputs1.push_back(parse_hex(line));
#endif
    const long n_out = std::atol(argv[3]);
    std::mt19937 rng(static_cast<uint32_t>(std::atol(argv[4])));
    const int stall = std::atoi(argv[5]);
    auto roll = [&]() { return static_cast<int>(rng() % 100) >= stall; };
    const long frame_words = argc >= 7 ? std::atol(argv[6]) : 0;

    Vkernel top;
    top.clk = 0;
    top.rst_n = 0;
    top.IN_VALID = 0;
    top.OUT_READY = 0;
#ifdef EDGE_TWO_INPUTS
    top.in1_valid = 0;
#endif
    for (int i = 0; i < 4; ++i) {
        top.clk = !top.clk;
        top.eval();
    }
    top.rst_n = 1;

    std::ofstream out_file(argv[2]);
    std::size_t sent = 0, sent1 = 0;
    long received = 0, cycles = 0;
    const long limit = argc == 8 ? std::atol(argv[7]) : 1000000L + 1000L * static_cast<long>(inputs.size() + n_out);
    while (received < n_out || sent < inputs.size() || sent1 < inputs1.size()) {
        if (++cycles > limit) {
            std::fprintf(stderr, "timeout: %ld of %ld output words after %ld cycles\n", received, n_out, cycles);
            return 1;
        }
        top.IN_VALID = sent < inputs.size() && roll();
        if (top.IN_VALID) put(top.IN_DATA, inputs[sent]);
#ifdef EDGE_TWO_INPUTS
        top.in1_valid = sent1 < inputs1.size() && roll();
        if (top.in1_valid) put(top.in1_data, inputs1[sent1]);
#endif
        top.OUT_READY = roll();
        top.clk = 0;
        top.eval();
        const bool took = top.IN_VALID && top.IN_READY;
#ifdef EDGE_TWO_INPUTS
        const bool took1 = top.in1_valid && top.in1_ready;
#else
        const bool took1 = false;
#endif
        const bool gave = top.OUT_VALID && top.OUT_READY;
        if (gave) {
            out_file << format_hex(get(top.OUT_DATA)) << "\n";
            ++received;
            if (frame_words > 0 && received % frame_words == 0) std::printf("frame %ld\n", cycles);
        }
        top.clk = 1;
        top.eval();
        if (took) ++sent;
        if (took1) ++sent1;
    }
    top.final();
    std::printf("cycles %ld\n", cycles);
    return sent == inputs.size() && sent1 == inputs1.size() ? 0 : 3;
}
