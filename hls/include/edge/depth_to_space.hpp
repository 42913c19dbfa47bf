// The DepthToSpace kind's kernel (fpga/kinds/depth_to_space.py).
#ifndef EDGE_DEPTH_TO_SPACE_HPP
#define EDGE_DEPTH_TO_SPACE_HPP

#include "window.hpp"

namespace edge {

// Sub-pixel rearrangement (PixelShuffle / DepthToSpace): input pixel (y, x) with C*R*R channels becomes the R x R
// output patch (y*R + i, x*R + j) of C channels; CRD = 1 takes channel c of patch (i, j) from input channel
// c*R*R + i*R + j, CRD = 0 (DCR) from (i*R + j)*C + c. Reads and writes move the same number of words per row.
template <unsigned H, unsigned W, unsigned C, unsigned R, unsigned PE, int B, int KIND, unsigned CRD>
struct DepthToSpace : RowPingPong<DepthToSpace<H, W, C, R, PE, B, KIND, CRD>, W * R * R * (C / PE),
                                  W * R * R * (C / PE), H> {
    static const unsigned CF = C / PE;
    static const unsigned IN_WORDS = R * R * CF;  // input words per input pixel
    typedef word_t<PE * B> Word;
    long long buf[2][W][R * R * C];
    DepthToSpace(unsigned n) : RowPingPong<DepthToSpace, W * R * R * (C / PE), W * R * R * (C / PE), H>(n) {}
    void put(unsigned bank, unsigned o, const Word& w) {
        const unsigned x = o / IN_WORDS, k = o % IN_WORDS;
        for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
            buf[bank][x][k * PE + p] = get_elem<B, KIND>(w, p);
        }
    }
    Word take(unsigned bank, unsigned o) const {
        const unsigned i = o / (W * R * CF), rem = o % (W * R * CF);
        const unsigned xo = rem / CF, cf = rem % CF, x = xo / R, j = xo % R;
        Word w = 0;
        for (unsigned p = 0; p < PE; p++) {
#pragma HLS UNROLL
            const unsigned c = cf * PE + p;
            const unsigned src = CRD ? c * R * R + i * R + j : (i * R + j) * C + c;
            set_elem<B, KIND>(w, p, buf[bank][x][src]);
        }
        return w;
    }
};

}  // namespace edge

#endif
