// edge HLS kernel library: stream plumbing (width converter, AddStreams, DuplicateStreams, LabelSelect,
// TokenSelect, ConcatConstant).
#ifndef EDGE_STREAMS_HPP
#define EDGE_STREAMS_HPP

#include "common.hpp"

namespace edge {

// The PE elements of a word re-packed to another element type, values unchanged (concatenations).
template <unsigned PE, int IN_B, int IN_K, int OUT_B, int OUT_K>
inline word_t<PE * OUT_B> repack(const word_t<PE * IN_B>& x) {
#pragma HLS INLINE
    word_t<PE * OUT_B> o = 0;
    for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
        set_elem<OUT_B, OUT_K>(o, p, get_elem<IN_B, IN_K>(x, p));
    }
    return o;
}

// Re-chunks a stream of B-bit elements from words of IN elements into words of OUT elements (any IN, OUT
// dividing the frame). Holds up to IN + OUT elements; per iteration writes a word if it holds OUT elements and
// reads one if there is room: throughput min(IN, OUT) elements per clock. Also the AXI-stream adapters.
template <unsigned IN, unsigned OUT, unsigned ELEMS, int B>
struct WidthConverter {
    static const unsigned CAP = IN + OUT;
#ifdef EDGE_CYCLE_SIM
    Bits<CAP * B> held;  // the simulator keeps the held elements as one bit queue, oldest in bit 0
#else
    ap_uint<B> held[CAP];
#endif
    unsigned head, fill;
    unsigned long long frames, rd, wr;
    WidthConverter(unsigned n) : head(0), fill(0), frames(n), rd(0), wr(0) {
#ifdef EDGE_CYCLE_SIM
        held = 0;
#endif
    }
    bool done() const { return rd >= frames * (ELEMS / IN) && wr >= frames * (ELEMS / OUT); }
    // room for IN more elements once this iteration's write (if any) has left: read and write in one clock
    bool room(bool writing) const { return rd < frames * (ELEMS / IN) && fill - (writing ? OUT : 0) + IN <= CAP; }
    bool wants_read() const { return room(false); }
    bool wants_write() const { return fill >= OUT; }
    template <class I, class O>
    bool can_step(I& in, O& out) {
        return (wants_read() && !in.empty()) || (wants_write() && !out.full());
    }
    template <class I, class O>
    void step(I& in, O& out) {
        bool do_write = wants_write() && !out.full();
        bool do_read = room(do_write) && !in.empty();
#ifdef EDGE_CYCLE_SIM
        if (do_write) {  // the lowest OUT*B bits leave; the rest shift down
            Bits<OUT * B> o;
            const unsigned n = OUT * B, limbs = Bits<CAP * B>::L;
            for (int l = 0; l < Bits<OUT * B>::L; l++) {
                const unsigned bits = (l + 1) * 64 <= (int)n ? 64 : n - l * 64;
                o.l[l] = get_bits(held.l, l * 64, bits);
            }
            const unsigned q = n / 64, r = n % 64;
            for (unsigned l = 0; l < limbs; l++) {
                unsigned long long lo = l + q < limbs ? held.l[l + q] : 0ULL;
                unsigned long long hi = l + q + 1 < limbs ? held.l[l + q + 1] : 0ULL;
                held.l[l] = r ? ((lo >> r) | (hi << (64 - r))) : lo;
            }
            out.write(o);
            fill -= OUT;
            wr++;
        }
        if (do_read) {  // IN*B new bits land above the held ones
            const Bits<IN * B> w = in.read();
            const unsigned n = IN * B;
            for (int l = 0; l < Bits<IN * B>::L; l++) {
                const unsigned bits = (l + 1) * 64 <= (int)n ? 64 : n - l * 64;
                put_bits(held.l, fill * B + l * 64, bits, w.l[l]);
            }
            fill += IN;
            rd++;
        }
#else
        if (do_write) {
            ap_uint<OUT * B> o = 0;
            for (unsigned i = 0; i < OUT; i++) {
#pragma HLS UNROLL
                o.range(i * B + B - 1, i * B) = held[(head + i) % CAP];
            }
            out.write(o);
            head = (head + OUT) % CAP;
            fill -= OUT;
            wr++;
        }
        if (do_read) {
            ap_uint<IN * B> w = in.read();
            for (unsigned i = 0; i < IN; i++) {
#pragma HLS UNROLL
                held[(head + fill + i) % CAP] = w.range(i * B + B - 1, i * B);
            }
            fill += IN;
            rd++;
        }
#endif
    }
};

// Element-wise sum of two streams (residual). Iterations = WORDS per frame.
template <unsigned PE, unsigned WORDS, int A_B, int A_K, int B_B, int B_K, int OUT_B>
struct AddStreams {
    unsigned frames, frame, i;
    AddStreams(unsigned n) : frames(n), frame(0), i(0) {}
    bool done() const { return frame >= frames; }
    template <class IA, class IB, class O>
    bool can_step(IA& a, IB& b, O& out) {
        return !done() && !a.empty() && !b.empty() && !out.full();
    }
    template <class IA, class IB, class O>
    void step(IA& a, IB& b, O& out) {
        word_t<PE * A_B> x = a.read();
        word_t<PE * B_B> y = b.read();
        word_t<PE * OUT_B> o = 0;
        for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
            set_elem<OUT_B, SIGNED>(o, p, get_elem<A_B, A_K>(x, p) + get_elem<B_B, B_K>(y, p));
        }
        out.write(o);
        if (++i == WORDS) {
            i = 0;
            frame++;
        }
    }
};

// Channel concatenation (FINN's StreamingConcat): per vector, CA / PE words of the first input, then CB / PE of
// the second, each element re-packed to the output type. One word per iteration.
template <unsigned PE, unsigned VECTORS, unsigned CA, unsigned CB, int A_B, int A_K, int B_B, int B_K, int OUT_B,
          int OUT_K>
struct StreamingConcat {
    static const unsigned WA = CA / PE, WB = CB / PE;
    unsigned frames, frame, v, i;
    StreamingConcat(unsigned n) : frames(n), frame(0), v(0), i(0) {}
    bool done() const { return frame >= frames; }
    template <class IA, class IB, class O>
    bool can_step(IA& a, IB& b, O& out) {
        return !done() && !out.full() && (i < WA ? !a.empty() : !b.empty());
    }
    template <class IA, class IB, class O>
    void step(IA& a, IB& b, O& out) {
        if (i < WA) out.write(repack<PE, A_B, A_K, OUT_B, OUT_K>(a.read()));
        else out.write(repack<PE, B_B, B_K, OUT_B, OUT_K>(b.read()));
        if (++i == WA + WB) {
            i = 0;
            if (++v == VECTORS) {
                v = 0;
                frame++;
            }
        }
    }
};

// Copies every word to two streams (the fork before a residual branch).
template <unsigned WORDS, int WIDTH>
struct DuplicateStreams {
    unsigned frames, frame, i;
    DuplicateStreams(unsigned n) : frames(n), frame(0), i(0) {}
    bool done() const { return frame >= frames; }
    template <class I, class OA, class OB>
    bool can_step(I& in, OA& a, OB& b) {
        return !done() && !in.empty() && !a.full() && !b.full();
    }
    template <class I, class OA, class OB>
    void step(I& in, OA& a, OB& b) {
        word_t<WIDTH> w = in.read();
        a.write(w);
        b.write(w);
        if (++i == WORDS) {
            i = 0;
            frame++;
        }
    }
};

// Top-k of LABELS values (PE per word): indices of the k largest, largest first; ties keep the lower index.
template <unsigned LABELS, unsigned PE, unsigned K, int IN_B, int IN_K, int OUT_B>
struct LabelSelect {
    long long top_v[K];
    unsigned top_i[K];
    unsigned frames, frame, i, emitted;
    LabelSelect(unsigned n) : frames(n), frame(0), i(0), emitted(0) {}
    bool done() const { return frame >= frames; }
    bool reading() const { return i < LABELS / PE; }
    template <class I, class O>
    bool can_step(I& in, O& out) {
        return !done() && (reading() ? !in.empty() : !out.full());
    }
    template <class I, class O>
    void step(I& in, O& out) {
        if (reading()) {
            word_t<PE * IN_B> w = in.read();
            for (unsigned p = 0; p < PE; p++) {
                long long v = get_elem<IN_B, IN_K>(w, p);
                unsigned label = i * PE + p;
                unsigned have = label < K ? label : K;
                unsigned pos = have;
                while (pos > 0 && v > top_v[pos - 1]) pos--;  // strictly greater: equal values keep order
                if (pos < K) {
                    for (unsigned j = (have < K ? have : K - 1); j > pos; j--) {
                        top_v[j] = top_v[j - 1];
                        top_i[j] = top_i[j - 1];
                    }
                    top_v[pos] = v;
                    top_i[pos] = label;
                }
            }
            i++;
        } else {
            word_t<OUT_B> o = 0;
            set_elem<OUT_B, UNSIGNED>(o, 0, top_i[emitted]);
            out.write(o);
            if (++emitted == K) {
                emitted = 0;
                i = 0;
                frame++;
            }
        }
    }
};

// Inserts COUNT constant vectors at vector AT of each frame of VECTORS input vectors (C channels, PE per word):
// a class token in front of the patch tokens. Output word (v, cf) is table[(v - AT) * C + cf * PE + p] for
// AT <= v < AT + COUNT, else the next input word. Iterations = C/PE * (VECTORS + COUNT), one output word each.
template <unsigned C, unsigned PE, unsigned VECTORS, unsigned AT, unsigned COUNT, int IN_B, int IN_K, int OUT_B,
          int OUT_K>
struct ConcatConstant : FoldCounter<C / PE, VECTORS + COUNT> {
    const long long* table;
    ConcatConstant(const long long* t, unsigned n) : FoldCounter<C / PE, VECTORS + COUNT>(n), table(t) {}
    bool constant() const { return this->v >= AT && this->v < AT + COUNT; }
    template <class I, class O>
    bool can_step(I& in, O& out) {
        return !this->done() && !out.full() && (constant() || !in.empty());
    }
    template <class I, class O>
    void step(I& in, O& out) {
        if (constant()) {
            word_t<PE * OUT_B> o = 0;
            for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
                set_elem<OUT_B, OUT_K>(o, p, table[(this->v - AT) * C + this->cf * PE + p]);
            }
            out.write(o);
        } else {
            out.write(repack<PE, IN_B, IN_K, OUT_B, OUT_K>(in.read()));
        }
        this->advance();
    }
};

}  // namespace edge

#endif
