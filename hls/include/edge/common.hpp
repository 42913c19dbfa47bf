// edge HLS kernel library: element packing shared by every kernel.
//
// A stream word of type ap_uint<N * B> carries N elements of B bits, element i in bits [i*B, (i+1)*B).
// Element kinds: UNSIGNED and SIGNED integers (two's complement) and BIPOLAR (one bit, 1 = +1, 0 = -1).
#ifndef EDGE_COMMON_HPP
#define EDGE_COMMON_HPP

// Wide folds pack many elements per word (e.g. SIMD 144 x 8 bits); ap_int's default limit is 1024 bits.
#ifndef AP_INT_MAX_W
#define AP_INT_MAX_W 16384
#endif
#include <ap_int.h>
#include <hls_stream.h>

namespace edge {

enum Kind { UNSIGNED = 0, SIGNED = 1, BIPOLAR = 2 };

#ifdef EDGE_CYCLE_SIM
// Set by the simulator for timing-only runs: dot-product arithmetic is skipped (reads and writes are unchanged).
extern bool sim_timing_only;

// Cycle simulation: a W-bit stream word held as plain 64-bit limbs (limb 0 = bits 0..63, unused high bits zero).
// Same packing as ap_uint<W>, but copying, packing and unpacking cost a few machine words instead of an
// arbitrary-precision object; the simulator moves millions of them.
template <int W>
struct Bits {
    static const int L = (W + 63) / 64;
    unsigned long long l[L];
    Bits() {}
    Bits(int zero) {  // only `word = 0` is used by the kernels
        for (int i = 0; i < L; i++) l[i] = (unsigned long long)zero;
    }
};
template <int W>
using word_t = Bits<W>;

// n bits (n <= 64) of a limb array starting at bit `pos`.
inline unsigned long long get_bits(const unsigned long long* limbs, unsigned pos, unsigned n) {
    const unsigned l = pos / 64, off = pos % 64;
    unsigned long long v = limbs[l] >> off;
    if (off + n > 64) v |= limbs[l + 1] << (64 - off);
    return n >= 64 ? v : (v & ((1ULL << n) - 1));
}

// Overwrite n bits (n <= 64) of a limb array at bit `pos` with the low n bits of v.
inline void put_bits(unsigned long long* limbs, unsigned pos, unsigned n, unsigned long long v) {
    const unsigned l = pos / 64, off = pos % 64;
    const unsigned long long mask = n >= 64 ? ~0ULL : ((1ULL << n) - 1);
    v &= mask;
    limbs[l] = (limbs[l] & ~(mask << off)) | (v << off);
    if (off + n > 64) {
        const unsigned spill = off + n - 64;
        const unsigned long long hi = (1ULL << spill) - 1;
        limbs[l + 1] = (limbs[l + 1] & ~hi) | (v >> (64 - off));
    }
}

// Place a WI-bit word as part `index` (bits [index*WI, (index+1)*WI)) of a WO-bit word.
template <int WO, int WI>
inline void put_part(Bits<WO>& out, unsigned index, const Bits<WI>& part) {
    for (int l = 0; l < Bits<WI>::L; l++) {
        const unsigned bits = (l + 1) * 64 <= WI ? 64 : WI - l * 64;
        put_bits(out.l, index * WI + l * 64, bits, part.l[l]);
    }
}

template <int B, int K, int W>
inline long long get_elem(const Bits<W>& word, unsigned index) {
    const unsigned long long v = get_bits(word.l, index * B, B);
    if (K == BIPOLAR) return v ? 1 : -1;
    if (K == SIGNED && B < 64 && (v >> (B - 1))) return (long long)v - (1LL << B);
    return (long long)v;
}

template <int B, int K, int W>
inline void set_elem(Bits<W>& word, unsigned index, long long value) {
    const unsigned long long raw = K == BIPOLAR ? (value > 0 ? 1ULL : 0ULL) : (unsigned long long)value;
    put_bits(word.l, index * B, B, raw);
}
#else
template <int W>
using word_t = ap_uint<W>;

template <int WO, int WI>
inline void put_part(ap_uint<WO>& out, unsigned index, const ap_uint<WI>& part) {
#pragma HLS INLINE
    out.range(index * WI + WI - 1, index * WI) = part;
}
#endif

// Integer value of the element at `index` of a packed word.
template <int B, int K, int W>
inline long long get_elem(const ap_uint<W>& word, unsigned index) {
#pragma HLS INLINE
    ap_uint<B> raw = word.range(index * B + B - 1, index * B);
    if (K == BIPOLAR) return raw[0] ? 1 : -1;
    if (K == SIGNED) {
        ap_int<B> s = raw;
        return (long long)s;
    }
    return (long long)raw;
}

// Store an integer value as the element at `index` of a packed word.
template <int B, int K, int W>
inline void set_elem(ap_uint<W>& word, unsigned index, long long value) {
#pragma HLS INLINE
    ap_uint<B> raw;
    if (K == BIPOLAR) raw = value > 0 ? 1 : 0;
    else raw = (ap_uint<B>)(ap_int<B + 1>)value;
    word.range(index * B + B - 1, index * B) = raw;
}

// A weight of B <= 64 bits stored as one 64-bit limb (the VVAU's weight memory), as an integer.
template <int B, int K>
inline long long weight_elem(unsigned long long raw) {
#pragma HLS INLINE
#if !defined(__SYNTHESIS__) && !defined(EDGE_NO_FAST_CSIM)
    if (K == BIPOLAR) return (raw & 1) ? 1 : -1;
    const unsigned long long v = B >= 64 ? raw : (raw & ((1ULL << B) - 1));
    if (K == SIGNED && B < 64 && (v >> (B - 1))) return (long long)v - (1LL << B);
    return (long long)v;
#else
    return get_elem<B, K>(ap_uint<B>(raw), 0);
#endif
}

// Assemble a W-bit word from its 64-bit limbs (limb 0 = bits 0..63): wiring only in hardware.
template <int W>
inline ap_uint<W> from_limbs(const unsigned long long* limbs) {
#pragma HLS INLINE
    ap_uint<W> word = 0;
    for (int l = 0; l * 64 < W; l++) {
#pragma HLS UNROLL
        const int hi = (l + 1) * 64 < W ? (l + 1) * 64 - 1 : W - 1;
        word.range(hi, l * 64) = ap_uint<64>(limbs[l]);
    }
    return word;
}

#if !defined(__SYNTHESIS__) && !defined(EDGE_NO_FAST_CSIM)
// C-sim fast path: element `index` of a word held as 64-bit limbs (elements may straddle two limbs).
template <int B, int K>
inline long long elem_from_limbs(const unsigned long long* limbs, unsigned index) {
    const unsigned pos = index * B, l = pos / 64, off = pos % 64;
    unsigned long long v = limbs[l] >> off;
    if (off + B > 64) v |= limbs[l + 1] << (64 - off);
    v &= (B >= 64) ? ~0ULL : ((1ULL << B) - 1);
    if (K == BIPOLAR) return v ? 1 : -1;
    if (K == SIGNED && B < 64 && (v >> (B - 1))) return (long long)v - (1LL << B);
    return (long long)v;
}

template <int W>
inline void to_limbs(const ap_uint<W>& word, unsigned long long* limbs) {
    for (int l = 0; l * 64 < W; l++) {
        const int hi = (l + 1) * 64 < W ? (l + 1) * 64 - 1 : W - 1;
        limbs[l] = word.range(hi, l * 64).to_uint64();
    }
}
#endif

// Element `index` (B bits) of a weight tile of N elements held as 64-bit limbs: the VVAU's SIMD taps.
template <int B, int K, unsigned N>
inline long long tile_elem(const unsigned long long* limbs, unsigned index) {
#pragma HLS INLINE
#if !defined(__SYNTHESIS__) && !defined(EDGE_NO_FAST_CSIM)
    return elem_from_limbs<B, K>(limbs, index);
#else
    return get_elem<B, K>(from_limbs<N * B>(limbs), index);
#endif
}

// Count of set bits of a word (the XNOR-popcount MVAU's accumulator).
template <int W>
inline unsigned popcount(const ap_uint<W>& word) {
#pragma HLS INLINE
    unsigned n = 0;
#if !defined(__SYNTHESIS__) && !defined(EDGE_NO_FAST_CSIM)
    // C-sim and cycle simulation: 64 bits at a time (same result, far fewer ap_uint operations)
    for (int l = 0; l * 64 < W; l++) {
        const int hi = (l + 1) * 64 < W ? (l + 1) * 64 - 1 : W - 1;
        n += __builtin_popcountll(word.range(hi, l * 64).to_uint64());
    }
#else
    for (int i = 0; i < W; i++) {
#pragma HLS UNROLL
        n += word[i];
    }
#endif
    return n;
}

// Threshold memories: ap_int<B> in synthesis (ROM width = accumulator width); plain 64-bit integers in C-sim and
// the cycle simulation, so that params.cpp is POD data that g++ compiles quickly even for ImageNet models.
template <typename AccT>
struct threshold_store;
template <int B>
struct threshold_store<ap_int<B> > {
#ifdef __SYNTHESIS__
    typedef ap_int<B> type;
#else
    typedef long long type;
#endif
};

// The frame/vector/channel-fold counters of an element-wise kernel that handles one word of PE channels per
// iteration (Thresholding, AddConstant, Lookup): `cf` is the channel fold of the word at hand, `v` its vector.
template <unsigned CF, unsigned VECTORS>
struct FoldCounter {
    unsigned frames, frame, v, cf;
    FoldCounter(unsigned n) : frames(n), frame(0), v(0), cf(0) {}
    bool done() const { return frame >= frames; }
    template <class I, class O>
    bool can_step(I& in, O& out) {
        return !done() && !in.empty() && !out.full();
    }
    void advance() {
        if (++cf == CF) {
            cf = 0;
            if (++v == VECTORS) {
                v = 0;
                frame++;
            }
        }
    }
};

// Thresholds with at least this many levels per channel are searched (fpga/resources.py THRESHOLD_SEARCH_LEVELS).
static const unsigned THRESHOLD_SEARCH_LEVELS = 16;

// Multi-threshold activation: out = base + step * #{levels crossed}; a descending channel counts acc <= T.
// A channel's thresholds are monotonic (non-decreasing, non-increasing when descending), so the levels crossed are
// a prefix. Few levels: every threshold compared at once. Many: a binary search of ceil(log2(LEVELS + 1)) stages;
// stage s reads only the thresholds whose index + 1 has its lowest set bit at 2^(S-1-s), 2^s of them, which is
// the stage's own memory in hardware. Both give the same count.
template <unsigned LEVELS, typename ThrT>
inline long long threshold(long long acc, const ThrT* levels, bool descending, int base, int step) {
#pragma HLS INLINE
    int count = 0;
    if (LEVELS < THRESHOLD_SEARCH_LEVELS) {
        for (unsigned l = 0; l < LEVELS; l++) {
#pragma HLS UNROLL
            long long t = (long long)levels[l];
            count += descending ? (acc <= t) : (acc >= t);
        }
    } else {
        unsigned top = 1;
        while (2 * top <= LEVELS) top *= 2;  // the first stage's step: the largest power of two <= LEVELS
        unsigned crossed = 0;
        for (unsigned stride = top; stride > 0; stride /= 2) {
#pragma HLS UNROLL
            unsigned probe = crossed + stride;  // 1-based: is level `probe` crossed?
            if (probe <= LEVELS) {
                long long t = (long long)levels[probe - 1];
                if (descending ? (acc <= t) : (acc >= t)) crossed = probe;
            }
        }
        count = (int)crossed;
    }
    return base + step * count;
}

// Run one kernel to completion: one pipelined loop iteration per clock (HLS and C-sim).
template <typename Kernel, typename In, typename Out>
void run(Kernel& k, In& in, Out& out) {
    while (!k.done()) {
#pragma HLS PIPELINE II = 1
        k.step(in, out);
    }
}

template <typename Kernel, typename InA, typename InB, typename Out>
void run2(Kernel& k, InA& a, InB& b, Out& out) {
    while (!k.done()) {
#pragma HLS PIPELINE II = 1
        k.step(a, b, out);
    }
}

}  // namespace edge

#endif
