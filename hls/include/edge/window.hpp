// edge HLS kernel library: feature-map kernels (Padding, SlidingWindow, MaxPool, GlobalAccPool).
// Feature maps stream pixel by pixel (row-major), each pixel's channels in words of SIMD (or PE) elements.
#ifndef EDGE_WINDOW_HPP
#define EDGE_WINDOW_HPP

#include "common.hpp"

namespace edge {

// Constant padding with VALUE (0 for convolutions, the type's minimum for max pools). One output word per
// iteration; inside the original map it is read from the input and re-encoded (a bipolar stream widens to
// signed integers, since 0 is not bipolar).
template <unsigned IH, unsigned IW, unsigned C, unsigned SIMD, unsigned TOP, unsigned LEFT, unsigned BOTTOM,
          unsigned RIGHT, int IN_B, int IN_K, int B, int VALUE = 0>
struct Padding {
    static const unsigned CF = C / SIMD;
    static const unsigned OH = IH + TOP + BOTTOM, OW = IW + LEFT + RIGHT;
    unsigned frames, frame, y, x, cf;
    Padding(unsigned n) : frames(n), frame(0), y(0), x(0), cf(0) {}
    bool done() const { return frame >= frames; }
    bool inside() const { return y >= TOP && y < TOP + IH && x >= LEFT && x < LEFT + IW; }
    template <class I, class O>
    bool can_step(I& in, O& out) {
        return !done() && !(inside() && in.empty()) && !out.full();
    }
    template <class I, class O>
    void step(I& in, O& out) {
        word_t<SIMD * B> w = 0;  // the integer 0 (activations have zero-point 0)
        if (!inside() && VALUE != 0) {
            for (unsigned s = 0; s < SIMD; s++) {
#pragma HLS UNROLL
                set_elem<B, SIGNED>(w, s, VALUE);
            }
        }
        if (inside()) {
            word_t<SIMD * IN_B> x = in.read();
            for (unsigned s = 0; s < SIMD; s++) {
#pragma HLS UNROLL
                set_elem<B, SIGNED>(w, s, get_elem<IN_B, IN_K>(x, s));
            }
        }
        out.write(w);
        if (++cf == CF) {
            cf = 0;
            if (++x == OW) {
                x = 0;
                if (++y == OH) {
                    y = 0;
                    frame++;
                }
            }
        }
    }
};

// Convolution input generator: for every output pixel, the KH x KW window in (ky, kx, channel) order.
// A circular buffer holds 2*KH input rows; reads run ahead (also into the next frame) while the buffer has
// room, and a window word is written once the input word it needs has been read. Input words are counted
// across frames, so the next frame's first KH rows arrive while this frame's last windows leave and
// consecutive frames overlap without a stall. One read and one write at most per iteration.
// Words hold SIMD <= C elements; with PIX > 1 (SIMD = C, layers with few channels) an output word holds PIX
// neighbouring kx positions of one window row (FINN's parallel window along kw), the buffer banked by column
// so that PIX pixels are read per clock: KH * KW / PIX writes per window instead of KH * KW.
// A dilated window (DH, DW > 1) takes every DH-th row and DW-th column of an extent of (K - 1) * D + 1: the
// buffer holds the extent's rows and the taps are read across the gaps (PIX taps DW columns apart per word).
template <unsigned IH, unsigned IW, unsigned C, unsigned SIMD, unsigned KH, unsigned KW, unsigned SH, unsigned SW,
          unsigned OH, unsigned OW, int B, unsigned PIX = 1, unsigned DH = 1, unsigned DW = 1>
struct SlidingWindow {
    static const unsigned CF = C / SIMD;
    static const unsigned KG = KW / PIX;  // writes per window row and channel fold
    static const unsigned EKH = (KH - 1) * DH + 1;  // rows a window spans
    static const unsigned ROW = IW * CF;
    static const unsigned READS = IH * ROW;
    static const unsigned WRITES = OH * OW * KH * KG * CF;
    static const unsigned BUF = (EKH + (SH > EKH ? SH : EKH)) * ROW;
    typedef word_t<SIMD * B> Word;
    Word buffer[BUF];
    unsigned long long frames, rd, wr;
    unsigned oy, ox, ky, kg, cf, wframe;

    SlidingWindow(unsigned n) : frames(n), rd(0), wr(0), oy(0), ox(0), ky(0), kg(0), cf(0), wframe(0) {}
    bool done() const { return rd >= frames * READS && wr >= frames * WRITES; }
    unsigned long long first() const {  // global index of the first input word the next write holds
        return (unsigned long long)wframe * READS + ((oy * SH + ky * DH) * IW + ox * SW + kg * PIX * DW) * CF + cf;
    }
    unsigned long long oldest() const {  // first input word any remaining write of this frame may need
        return (unsigned long long)wframe * READS + (unsigned long long)oy * SH * ROW;
    }
    bool wants_read() const {
        return rd < frames * READS && (wr >= frames * WRITES || rd < oldest() + BUF);
    }
    bool wants_write() const { return wr < frames * WRITES && first() + (PIX - 1) * DW * CF < rd; }
    template <class I, class O>
    bool can_step(I& in, O& out) {
        return (wants_read() && !in.empty()) || (wants_write() && !out.full());
    }
    template <class I, class O>
    void step(I& in, O& out) {
        bool do_write = wants_write() && !out.full();
        bool do_read = wants_read() && !in.empty();
        if (do_write) {
            const unsigned long long base = first();
            word_t<PIX * SIMD * B> o = 0;
            for (unsigned j = 0; j < PIX; j++) {
#pragma HLS UNROLL
                put_part<PIX * SIMD * B, SIMD * B>(o, j, buffer[(base + j * DW * CF) % BUF]);
            }
            out.write(o);
            wr++;
            if (++cf == CF) {
                cf = 0;
                if (++kg == KG) {
                    kg = 0;
                    if (++ky == KH) {
                        ky = 0;
                        if (++ox == OW) {
                            ox = 0;
                            if (++oy == OH) {
                                oy = 0;
                                wframe++;
                            }
                        }
                    }
                }
            }
        }
        if (do_read) {
            buffer[rd % BUF] = in.read();
            rd++;
        }
    }
};

// Non-overlapping max pooling (KH x KW windows, stride = kernel; KH = 1 for 1-D pools); rows and columns past
// OH*KH, OW*KW are read and dropped. One input word per iteration; an output word when the last pixel of its
// window arrives.
template <unsigned IH, unsigned IW, unsigned C, unsigned PE, unsigned KH, unsigned KW, unsigned OH, unsigned OW,
          int B, int KIND>
struct MaxPool {
    static const unsigned CF = C / PE;
    typedef word_t<PE * B> Word;
    long long best[OW][CF][PE];
    unsigned frames, frame, y, x, cf;
    MaxPool(unsigned n) : frames(n), frame(0), y(0), x(0), cf(0) {}
    bool done() const { return frame >= frames; }
    bool last_of_window() const { return y < OH * KH && x < OW * KW && y % KH == KH - 1 && x % KW == KW - 1; }
    template <class I, class O>
    bool can_step(I& in, O& out) {
        return !done() && !in.empty() && !(last_of_window() && out.full());
    }
    template <class I, class O>
    void step(I& in, O& out) {
        Word w = in.read();
        if (y < OH * KH && x < OW * KW) {
            unsigned ox = x / KW;
            bool first = y % KH == 0 && x % KW == 0;
            for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
                long long v = get_elem<B, KIND>(w, p);
                if (first || v > best[ox][cf][p]) best[ox][cf][p] = v;
            }
            if (last_of_window()) {
                Word o = 0;
                for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
                    set_elem<B, KIND>(o, p, best[ox][cf][p]);
                }
                out.write(o);
            }
        }
        if (++cf == CF) {
            cf = 0;
            if (++x == IW) {
                x = 0;
                if (++y == IH) {
                    y = 0;
                    frame++;
                }
            }
        }
    }
};

// Sum over all pixels per channel; the channel sums leave with the last pixel. Iterations = H*W*C/PE.
template <unsigned H, unsigned W, unsigned C, unsigned PE, int IN_B, int IN_K, int OUT_B>
struct GlobalAccPool {
    static const unsigned CF = C / PE;
    long long acc[CF][PE];
    unsigned frames, frame, pix, cf;
    GlobalAccPool(unsigned n) : frames(n), frame(0), pix(0), cf(0) {}
    bool done() const { return frame >= frames; }
    template <class I, class O>
    bool can_step(I& in, O& out) {
        return !done() && !in.empty() && !(pix == H * W - 1 && out.full());
    }
    template <class I, class O>
    void step(I& in, O& out) {
        word_t<PE * IN_B> w = in.read();
        for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
            long long v = get_elem<IN_B, IN_K>(w, p);
            acc[cf][p] = pix == 0 ? v : acc[cf][p] + v;
        }
        if (pix == H * W - 1) {
            word_t<PE * OUT_B> o = 0;
            for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
                set_elem<OUT_B, SIGNED>(o, p, acc[cf][p]);
            }
            out.write(o);
        }
        if (++cf == CF) {
            cf = 0;
            if (++pix == H * W) {
                pix = 0;
                frame++;
            }
        }
    }
};

// Row ping-pong shared by the kernels that rearrange whole rows (DepthToSpace, Upsample): two input-row banks;
// IN_ROW words of an input row fill one bank while the OUT_ROW words made from the previous row leave the other.
// One read and one write at most per iteration. Derived: put(bank, word index in row, word) and
// take(bank, word index in row) -> word.
template <class Derived, unsigned IN_ROW, unsigned OUT_ROW, unsigned ROWS>
struct RowPingPong {
    unsigned long long frames, rd, wr;
    RowPingPong(unsigned n) : frames(n), rd(0), wr(0) {}
    unsigned long long rows() const { return (unsigned long long)frames * ROWS; }
    bool done() const { return rd >= rows() * IN_ROW && wr >= rows() * OUT_ROW; }
    bool wants_read() const { return rd < rows() * IN_ROW && rd < (wr / OUT_ROW + 2) * IN_ROW; }
    bool wants_write() const { return wr < rows() * OUT_ROW && rd >= (wr / OUT_ROW + 1) * IN_ROW; }
    template <class I, class O>
    bool can_step(I& in, O& out) {
        return (wants_read() && !in.empty()) || (wants_write() && !out.full());
    }
    template <class I, class O>
    void step(I& in, O& out) {
        bool do_write = wants_write() && !out.full();
        bool do_read = wants_read() && !in.empty();
        Derived& self = static_cast<Derived&>(*this);
        if (do_write) {
            out.write(self.take((wr / OUT_ROW) % 2, wr % OUT_ROW));
            wr++;
        }
        if (do_read) {
            self.put((rd / IN_ROW) % 2, rd % IN_ROW, in.read());
            rd++;
        }
    }
};

}  // namespace edge

#endif
