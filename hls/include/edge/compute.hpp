// edge HLS kernel library: MVAU (integer MAC and XNOR-popcount), VVAU (depthwise) and Thresholding.
//
// Loop structure (one iteration per clock): MVAU for each vector, neuron fold nf < MH/PE, synapse fold sf <
// MW/SIMD: read an input word on the first neuron fold (buffered for the others), PE dot products of SIMD
// lanes, and on the last synapse fold one output word of PE results. Iterations = MH/PE * MW/SIMD * vectors.
#ifndef EDGE_COMPUTE_HPP
#define EDGE_COMPUTE_HPP

#include "common.hpp"

namespace edge {

template <unsigned MW, unsigned MH, unsigned PE, unsigned SIMD, unsigned VECTORS, int IN_B, int IN_K, int W_B,
          int W_K, int OUT_B, int OUT_K, bool XNOR, unsigned LEVELS, int BASE, int STEP, typename AccT>
struct Mvau {
    static const unsigned SF = MW / SIMD;
    static const unsigned NF = MH / PE;
    typedef word_t<SIMD * IN_B> InWord;
    typedef word_t<PE * OUT_B> OutWord;
    typedef ap_uint<SIMD * W_B> WWord;
    static const unsigned WL = (SIMD * W_B + 63) / 64;  // 64-bit limbs per weight word
    typedef typename threshold_store<AccT>::type ThrT;

    const unsigned long long (*weights)[NF * SF][WL];  // [PE][NF * SF][limbs]
    const ThrT (*thresholds)[NF][LEVELS > 0 ? LEVELS : 1];  // [PE][NF][LEVELS]
    const bool (*descending)[NF];           // [PE][NF]
    unsigned frames, frame, v, nf, sf;
    InWord buffer[SF];
    AccT acc[PE];

    Mvau(const unsigned long long (*w)[NF * SF][WL], const ThrT (*t)[NF][LEVELS > 0 ? LEVELS : 1], const bool (*d)[NF],
         unsigned n)
        : weights(w), thresholds(t), descending(d), frames(n), frame(0), v(0), nf(0), sf(0) {
        for (unsigned p = 0; p < PE; p++) acc[p] = 0;
    }
    bool done() const { return frame >= frames; }
    bool wants_read() const { return nf == 0; }
    bool wants_write() const { return sf == SF - 1; }
    template <class I, class O>
    bool can_step(I& in, O& out) {
        return !done() && !(wants_read() && in.empty()) && !(wants_write() && out.full());
    }

    template <class I, class O>
    void step(I& in, O& out) {
        InWord x;
        if (nf == 0) {
            x = in.read();
            buffer[sf] = x;
        } else {
            x = buffer[sf];
        }
#if !defined(__SYNTHESIS__) && !defined(EDGE_NO_FAST_CSIM)
        // C-sim / cycle simulation: the same arithmetic on 64-bit limbs, without per-element ap_uint operations
        static const unsigned XL = (SIMD * IN_B + 63) / 64;
#ifdef EDGE_CYCLE_SIM
        const unsigned long long* xl = x.l;  // the simulator's words are limbs already
        const bool compute = !sim_timing_only;
#else
        unsigned long long xl[XL];
        to_limbs<SIMD * IN_B>(x, xl);
        const bool compute = true;
#endif
        if (compute) {
            long long xv[SIMD];
            if (!XNOR)
                for (unsigned s = 0; s < SIMD; s++) xv[s] = elem_from_limbs<IN_B, IN_K>(xl, s);
            for (unsigned p = 0; p < PE; p++) {
                const unsigned long long* wl = weights[p][nf * SF + sf];
                if (XNOR) {
                    unsigned n = 0;
                    for (unsigned l = 0; l < XL; l++) {
                        unsigned long long m = ~(xl[l] ^ wl[l]);
                        const unsigned bits = (l + 1) * 64 <= SIMD ? 64 : SIMD - l * 64;
                        if (bits < 64) m &= (1ULL << bits) - 1;
                        n += __builtin_popcountll(m);
                    }
                    acc[p] += n;
                } else {
                    long long sum = 0;
                    for (unsigned s = 0; s < SIMD; s++) sum += xv[s] * elem_from_limbs<W_B, W_K>(wl, s);
                    acc[p] += sum;
                }
            }
        }
#else
        for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
            const WWord w = from_limbs<SIMD * W_B>(weights[p][nf * SF + sf]);
            if (XNOR) {
                acc[p] += popcount<SIMD>(~(x ^ w));
            } else {
                AccT sum = 0;
                for (unsigned s = 0; s < SIMD; s++) {
#pragma HLS UNROLL
                    sum += get_elem<IN_B, IN_K>(x, s) * get_elem<W_B, W_K>(w, s);
                }
                acc[p] += sum;
            }
        }
#endif
        if (sf == SF - 1) {
            OutWord o = 0;
            for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
                long long y = LEVELS > 0 ? threshold<LEVELS, ThrT>(acc[p], thresholds[p][nf], descending[p][nf],
                                                                    BASE, STEP)
                                         : (long long)acc[p];
                set_elem<OUT_B, OUT_K>(o, p, y);
                acc[p] = 0;
            }
            out.write(o);
        }
        if (++sf == SF) {
            sf = 0;
            if (++nf == NF) {
                nf = 0;
                if (++v == VECTORS) {
                    v = 0;
                    frame++;
                }
            }
        }
    }
};

// Depthwise: input words hold PE channels of SIMD consecutive window positions, in the sliding window's
// (k, channel) order (SIMD > 1 only with PE = C: element t * PE + p is tap t of channel p); all C accumulators stay
// live across the K window positions. Weight tile cf * K/SIMD + step holds, per PE, the SIMD taps of that step.
// Iterations = K/SIMD * C/PE * vectors.
template <unsigned C, unsigned K, unsigned PE, unsigned SIMD, unsigned VECTORS, int IN_B, int IN_K, int W_B, int W_K,
          int OUT_B, int OUT_K, unsigned LEVELS, int BASE, int STEP, typename AccT>
struct Vvau {
    static const unsigned CF = C / PE;
    static const unsigned KS = K / SIMD;  // input words per channel fold and window
    static const unsigned WL = (SIMD * W_B + 63) / 64;  // 64-bit limbs per weight tile
    typedef word_t<SIMD * PE * IN_B> InWord;
    typedef word_t<PE * OUT_B> OutWord;
    typedef typename threshold_store<AccT>::type ThrT;

    const unsigned long long (*weights)[CF * KS][WL];  // [PE][CF * KS][limbs]
    const ThrT (*thresholds)[CF][LEVELS > 0 ? LEVELS : 1];
    const bool (*descending)[CF];
    unsigned frames, frame, v, k, cf;
    AccT acc[CF][PE];

    Vvau(const unsigned long long (*w)[CF * KS][WL], const ThrT (*t)[CF][LEVELS > 0 ? LEVELS : 1],
         const bool (*d)[CF], unsigned n)
        : weights(w), thresholds(t), descending(d), frames(n), frame(0), v(0), k(0), cf(0) {
        for (unsigned c = 0; c < CF; c++)
            for (unsigned p = 0; p < PE; p++) acc[c][p] = 0;
    }
    bool done() const { return frame >= frames; }
    bool wants_read() const { return true; }
    bool wants_write() const { return k == KS - 1; }
    template <class I, class O>
    bool can_step(I& in, O& out) {
        return !done() && !in.empty() && !(wants_write() && out.full());
    }

    template <class I, class O>
    void step(I& in, O& out) {
        InWord x = in.read();
#ifdef EDGE_CYCLE_SIM
        if (!sim_timing_only)
#endif
            for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
                AccT sum = 0;
                for (unsigned t = 0; t < SIMD; t++) {
#pragma HLS UNROLL
                    const long long w = SIMD == 1 ? weight_elem<W_B, W_K>(weights[p][cf * KS + k][0])
                                                  : tile_elem<W_B, W_K, SIMD>(weights[p][cf * KS + k], t);
                    sum += get_elem<IN_B, IN_K>(x, t * PE + p) * w;
                }
                acc[cf][p] += sum;
            }
        if (k == KS - 1) {
            OutWord o = 0;
            for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
                long long y = LEVELS > 0 ? threshold<LEVELS, ThrT>(acc[cf][p], thresholds[p][cf],
                                                                    descending[p][cf], BASE, STEP)
                                         : (long long)acc[cf][p];
                set_elem<OUT_B, OUT_K>(o, p, y);
                acc[cf][p] = 0;
            }
            out.write(o);
        }
        if (++cf == CF) {
            cf = 0;
            if (++k == KS) {
                k = 0;
                if (++v == VECTORS) {
                    v = 0;
                    frame++;
                }
            }
        }
    }
};

// Stand-alone thresholding of PE channels per word. Iterations = C/PE * vectors.
template <unsigned C, unsigned PE, unsigned VECTORS, int IN_B, int IN_K, int OUT_B, int OUT_K, unsigned LEVELS,
          int BASE, int STEP, typename AccT>
struct Thresholding : FoldCounter<C / PE, VECTORS> {
    static const unsigned CF = C / PE;
    typedef typename threshold_store<AccT>::type ThrT;
    const ThrT (*thresholds)[CF][LEVELS];
    const bool (*descending)[CF];

    Thresholding(const ThrT (*t)[CF][LEVELS], const bool (*d)[CF], unsigned n)
        : FoldCounter<C / PE, VECTORS>(n), thresholds(t), descending(d) {}
    template <class I, class O>
    void step(I& in, O& out) {
        const unsigned cf = this->cf;
        word_t<PE * IN_B> x = in.read();
        word_t<PE * OUT_B> o = 0;
        for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
            set_elem<OUT_B, OUT_K>(o, p, threshold<LEVELS, ThrT>(get_elem<IN_B, IN_K>(x, p), thresholds[p][cf],
                                                                 descending[p][cf], BASE, STEP));
        }
        out.write(o);
        this->advance();
    }
};

}  // namespace edge

#endif
