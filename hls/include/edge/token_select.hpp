// The TokenSelect kind's kernel (fpga/kinds/token_select.py).
#ifndef EDGE_TOKEN_SELECT_HPP
#define EDGE_TOKEN_SELECT_HPP

#include "streams.hpp"

namespace edge {

// Keeps vectors FIRST .. FIRST + COUNT - 1 of each frame of VECTORS vectors (C channels, PE per word) and drops
// the others: the class token of a pooler. Every word is read once; iterations = C/PE * VECTORS.
template <unsigned C, unsigned PE, unsigned VECTORS, unsigned FIRST, unsigned COUNT, int B>
struct TokenSelect : FoldCounter<C / PE, VECTORS> {
    TokenSelect(unsigned n) : FoldCounter<C / PE, VECTORS>(n) {}
    bool kept() const { return this->v >= FIRST && this->v < FIRST + COUNT; }
    template <class I, class O>
    bool can_step(I& in, O& out) {
        return !this->done() && !in.empty() && (!kept() || !out.full());
    }
    template <class I, class O>
    void step(I& in, O& out) {
        word_t<PE * B> x = in.read();
        if (kept()) out.write(x);
        this->advance();
    }
};

}  // namespace edge

#endif
