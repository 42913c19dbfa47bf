// edge HLS kernel library: the kernels of quantised transformers (position-embedding add, element-wise lookup
// tables, matrix product of two streams, integer Softmax, integer LayerNorm). Each computes exactly what fpga/execute.py computes.
#ifndef EDGE_ATTENTION_HPP
#define EDGE_ATTENTION_HPP

#include "common.hpp"

namespace edge {

#ifdef __SYNTHESIS__
typedef ap_uint<128> wide_t;
#else
typedef unsigned __int128 wide_t;
#endif

// floor(sqrt(v)) of a 128-bit value, one result bit per step (a 64-stage pipeline in hardware).
inline unsigned long long isqrt_wide(wide_t v) {
#pragma HLS INLINE
    wide_t root = 0, bit = (wide_t)1 << 126;
    while (bit > v) bit >>= 2;
    while (bit != 0) {
        if (v >= root + bit) {
            v -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    return (unsigned long long)root;
}

// out[v, c] = x[v, c] + table[v * C + c]: a learned position embedding of the same scale as the stream.
// Iterations = C/PE * VECTORS.
template <unsigned C, unsigned PE, unsigned VECTORS, int IN_B, int IN_K, int OUT_B>
struct AddConstant : FoldCounter<C / PE, VECTORS> {
    const long long* table;
    AddConstant(const long long* t, unsigned n) : FoldCounter<C / PE, VECTORS>(n), table(t) {}
    template <class I, class O>
    void step(I& in, O& out) {
        word_t<PE * IN_B> x = in.read();
        word_t<PE * OUT_B> o = 0;
        for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
            set_elem<OUT_B, SIGNED>(o, p, get_elem<IN_B, IN_K>(x, p) + table[this->v * C + this->cf * PE + p]);
        }
        out.write(o);
        this->advance();
    }
};

// Element-wise function as a table: out = table[row * LEVELS + x - MIN], row = channel when ROWS > 1 (per-channel
// tables), else 0. Iterations = C/PE * VECTORS.
template <unsigned C, unsigned PE, unsigned VECTORS, int IN_B, int IN_K, int OUT_B, int OUT_K, unsigned LEVELS,
          unsigned ROWS, long long MIN>
struct Lookup : FoldCounter<C / PE, VECTORS> {
    const long long* table;
    Lookup(const long long* t, unsigned n) : FoldCounter<C / PE, VECTORS>(n), table(t) {}
    template <class I, class O>
    void step(I& in, O& out) {
        word_t<PE * IN_B> x = in.read();
        word_t<PE * OUT_B> o = 0;
        for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
            const unsigned row = ROWS > 1 ? this->cf * PE + p : 0;
            set_elem<OUT_B, OUT_K>(o, p, table[row * LEVELS + (unsigned)(get_elem<IN_B, IN_K>(x, p) - MIN)]);
        }
        out.write(o);
        this->advance();
    }
};

// out[m, b, n] = sum_k A[m, b, k] * B[b, k, n] for two activation streams. B (BATCH*K*N elements, SIMD per word,
// in its stream order: ORDER 0 = (n, b, k), 1 = (k, b, n)) is buffered whole first; then each row m of A (per
// head b, K elements, SIMD per word) is read once into a row buffer during the first column fold and reused for
// the other N/PE folds. Iterations per frame = BATCH*K*N/SIMD (load) + M*BATCH*(N/PE)*(K/SIMD) (compute).
template <unsigned M, unsigned BATCH, unsigned K, unsigned N, unsigned PE, unsigned SIMD, int A_B, int A_K, int B_B,
          int B_K, int OUT_B, int ORDER>
struct StreamMatMul {
    static const unsigned LOAD = BATCH * K * N / SIMD, NF = N / PE, KF = K / SIMD;
    long long buf[BATCH][K][N];
    long long row[K];
    long long acc[PE];
    unsigned frames, frame, load, m, b, nf, kf;
    StreamMatMul(unsigned n) : frames(n), frame(0), load(0), m(0), b(0), nf(0), kf(0) {}
    bool done() const { return frame >= frames; }
    bool loading() const { return load < LOAD; }
    bool writes() const { return kf + 1 == KF; }
    template <class IA, class IB, class O>
    bool can_step(IA& a, IB& bs, O& out) {
        if (done()) return false;
        if (loading()) return !bs.empty();
        return (nf != 0 || !a.empty()) && (!writes() || !out.full());
    }
    template <class IA, class IB, class O>
    void step(IA& a, IB& bs, O& out) {
        if (loading()) {
            word_t<SIMD * B_B> w = bs.read();
            for (unsigned s = 0; s < SIMD; s++) {
                const unsigned e = load * SIMD + s;
                unsigned bb, kk, nn;
                if (ORDER == 0) {
                    nn = e / (BATCH * K);
                    bb = (e / K) % BATCH;
                    kk = e % K;
                } else {
                    kk = e / (BATCH * N);
                    bb = (e / N) % BATCH;
                    nn = e % N;
                }
                buf[bb][kk][nn] = get_elem<B_B, B_K>(w, s);
            }
            load++;
            return;
        }
        if (nf == 0) {
            word_t<SIMD * A_B> w = a.read();
            for (unsigned s = 0; s < SIMD; s++) {
#pragma HLS UNROLL
                row[kf * SIMD + s] = get_elem<A_B, A_K>(w, s);
            }
        }
        for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
            long long sum = kf == 0 ? 0 : acc[p];
            for (unsigned s = 0; s < SIMD; s++) {
#pragma HLS UNROLL
                sum += row[kf * SIMD + s] * buf[b][kf * SIMD + s][nf * PE + p];
            }
            acc[p] = sum;
        }
        if (writes()) {
            word_t<PE * OUT_B> o = 0;
            for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
                set_elem<OUT_B, SIGNED>(o, p, acc[p]);
            }
            out.write(o);
        }
        if (++kf == KF) {
            kf = 0;
            if (++nf == NF) {
                nf = 0;
                if (++b == BATCH) {
                    b = 0;
                    if (++m == M) {
                        m = 0;
                        load = 0;
                        frame++;
                    }
                }
            }
        }
    }
};

// Integer Softmax over each vector of C elements and its unsigned output quantiser: pass 0 reads the vector into
// a buffer and finds its maximum, pass 1 sums e = EXP[max - x], pass 2 writes min(QMAX, round(e * RECIP / (sum <<
// RECIP_BITS))). Iterations = 3 * C/PE per vector.
template <unsigned C, unsigned PE, unsigned VECTORS, int IN_B, int IN_K, int OUT_B, unsigned TABLE_N, int RECIP_BITS>
struct Softmax {
    static const unsigned CF = C / PE;
    static const long long QMAX = (1LL << OUT_B) - 1;
    const long long* table;
    unsigned long long recip;
    long long buf[C];
    long long mx;
    unsigned long long total;
    unsigned frames, frame, v, pass, cf;
    Softmax(const long long* t, unsigned long long r, unsigned n)
        : table(t), recip(r), mx(0), total(0), frames(n), frame(0), v(0), pass(0), cf(0) {}
    bool done() const { return frame >= frames; }
    template <class I, class O>
    bool can_step(I& in, O& out) {
        if (done()) return false;
        if (pass == 0) return !in.empty();
        if (pass == 2) return !out.full();
        return true;
    }
    long long expo(long long x) const {
        long long d = mx - x;
        if (d > (long long)TABLE_N - 1) d = TABLE_N - 1;
        return table[d];
    }
    template <class I, class O>
    void step(I& in, O& out) {
        if (pass == 0) {
            word_t<PE * IN_B> w = in.read();
            for (unsigned p = 0; p < PE; p++) {
                const long long x = get_elem<IN_B, IN_K>(w, p);
                buf[cf * PE + p] = x;
                if ((cf == 0 && p == 0) || x > mx) mx = x;
            }
        } else if (pass == 1) {
            if (cf == 0) total = 0;
            for (unsigned p = 0; p < PE; p++) total += (unsigned long long)expo(buf[cf * PE + p]);
        } else {
            word_t<PE * OUT_B> o = 0;
            const unsigned long long den = total << RECIP_BITS;
            for (unsigned p = 0; p < PE; p++) {
                const unsigned long long e = (unsigned long long)expo(buf[cf * PE + p]);
                long long level = (long long)((2 * e * recip + den) / (2 * den));
                set_elem<OUT_B, UNSIGNED>(o, p, level > QMAX ? QMAX : level);
            }
            out.write(o);
        }
        if (++cf == CF) {
            cf = 0;
            if (++pass == 3) {
                pass = 0;
                if (++v == VECTORS) {
                    v = 0;
                    frame++;
                }
            }
        }
    }
};

// Integer LayerNorm over each vector of C elements, with its affine part and quantiser as per-channel thresholds
// on z: pass 0 reads the vector into a buffer and accumulates S = sum(x) and sum(x^2); pass 1 computes, per
// element, d = C*x - S and z = sign(d) * isqrt(d^2 * 2^(2F+8) / (Q*2^8 + EPS)) with Q = C*sum(x^2) - S^2, and
// writes thresholds(z). Iterations = 2 * C/PE per vector.
template <unsigned C, unsigned PE, unsigned VECTORS, int IN_B, int IN_K, int OUT_B, int OUT_K, unsigned LEVELS,
          int BASE, int STEP, typename AccT, int FRAC>
struct LayerNorm {
    static const unsigned CF = C / PE;
    typedef typename threshold_store<AccT>::type ThrT;
    const ThrT (*thresholds)[CF][LEVELS];
    const bool (*descending)[CF];
    unsigned long long eps;
    long long buf[C];
    long long sum, sumsq;
    unsigned frames, frame, v, pass, cf;
    LayerNorm(const ThrT (*t)[CF][LEVELS], const bool (*d)[CF], unsigned long long e, unsigned n)
        : thresholds(t), descending(d), eps(e), sum(0), sumsq(0), frames(n), frame(0), v(0), pass(0), cf(0) {}
    bool done() const { return frame >= frames; }
    template <class I, class O>
    bool can_step(I& in, O& out) {
        if (done()) return false;
        return pass == 0 ? !in.empty() : !out.full();
    }
    template <class I, class O>
    void step(I& in, O& out) {
        if (pass == 0) {
            if (cf == 0) sum = sumsq = 0;
            word_t<PE * IN_B> w = in.read();
            for (unsigned p = 0; p < PE; p++) {
                const long long x = get_elem<IN_B, IN_K>(w, p);
                buf[cf * PE + p] = x;
                sum += x;
                sumsq += x * x;
            }
        } else {
            const wide_t q = (wide_t)((long long)C * sumsq - sum * sum);
            wide_t den = (q << 8) + (wide_t)eps;
            if (den == 0) den = 1;
            word_t<PE * OUT_B> o = 0;
            for (unsigned p = 0; p < PE; p++) {
                const long long d = (long long)C * buf[cf * PE + p] - sum;
                const unsigned long long mag = d < 0 ? (unsigned long long)(-d) : (unsigned long long)d;
                const wide_t num = ((wide_t)mag * (wide_t)mag) << (2 * FRAC + 8);
                const long long root = (long long)isqrt_wide(num / den);
                const long long z = d < 0 ? -root : root;
                set_elem<OUT_B, OUT_K>(o, p, threshold<LEVELS, ThrT>(z, thresholds[p][cf], descending[p][cf], BASE,
                                                                     STEP));
            }
            out.write(o);
        }
        if (++cf == CF) {
            cf = 0;
            if (++pass == 2) {
                pass = 0;
                if (++v == VECTORS) {
                    v = 0;
                    frame++;
                }
            }
        }
    }
};

}  // namespace edge

#endif
