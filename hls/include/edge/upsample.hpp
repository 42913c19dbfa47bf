// The Upsample kind's kernel (fpga/kinds/upsample.py).
#ifndef EDGE_UPSAMPLE_HPP
#define EDGE_UPSAMPLE_HPP

#include "window.hpp"

namespace edge {

// Nearest-neighbour upsampling by FH x FW: each input row leaves FH times, each pixel FW times (words of PE
// channels kept as they are).
template <unsigned H, unsigned W, unsigned C, unsigned FH, unsigned FW, unsigned PE, int B>
struct Upsample : RowPingPong<Upsample<H, W, C, FH, FW, PE, B>, W * (C / PE), FH * W * FW * (C / PE), H> {
    static const unsigned CF = C / PE;
    typedef word_t<PE * B> Word;
    Word buf[2][W * CF];
    Upsample(unsigned n) : RowPingPong<Upsample, W * (C / PE), FH * W * FW * (C / PE), H>(n) {}
    void put(unsigned bank, unsigned o, const Word& w) { buf[bank][o] = w; }
    Word take(unsigned bank, unsigned o) const {
        const unsigned xo = (o % (W * FW * CF)) / CF, cf = o % CF;
        return buf[bank][(xo / FW) * CF + cf];
    }
};

}  // namespace edge

#endif
