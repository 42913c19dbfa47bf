// edge HLS kernel library: the accelerator's shell-facing ports.
//
// Zynq shells: AXI-stream words of AXI_BITS carried by an AXI DMA (data in the low bits, TLAST on the last word of
// the batch so the DMA's S2MM transfer ends there). Alveo shells: the same words read and written through AXI
// memory-mapped ports. In both cases the batch size (`frames`) is an s_axilite register set by the driver.
#ifndef EDGE_AXI_HPP
#define EDGE_AXI_HPP

#include "common.hpp"

#if defined(__has_include)
#if __has_include(<ap_axi_sdata.h>)
#define EDGE_HAVE_AP_AXI_SDATA 1
#endif
#endif

#ifdef EDGE_HAVE_AP_AXI_SDATA
#include <ap_axi_sdata.h>
namespace edge {
template <int W>
using AxiWord = ap_axiu<W, 0, 0, 0>;
}
#else
namespace edge {
// C-sim without Vitis's ap_axi_sdata.h (hls4ml's ap_types): the same fields as ap_axiu<W, 0, 0, 0>.
template <int W>
struct AxiWord {
    ap_uint<W> data;
    ap_uint<W / 8> keep;
    ap_uint<W / 8> strb;
    ap_uint<1> last;
};
}  // namespace edge
#endif

namespace edge {

// AXI-stream words from the DMA -> the first kernel's stream (the low IN_W bits of each word).
template <int AXI_W, int IN_W>
void axi_to_stream(hls::stream<AxiWord<AXI_W> >& in, hls::stream<ap_uint<IN_W> >& out, unsigned words) {
    for (unsigned i = 0; i < words; i++) {
#pragma HLS PIPELINE II = 1
        AxiWord<AXI_W> w = in.read();
        out.write(w.data.range(IN_W - 1, 0));
    }
}

// The last kernel's stream -> AXI-stream words to the DMA; TLAST on the batch's last word.
template <int AXI_W, int OUT_W>
void stream_to_axi(hls::stream<ap_uint<OUT_W> >& in, hls::stream<AxiWord<AXI_W> >& out, unsigned words) {
    for (unsigned i = 0; i < words; i++) {
#pragma HLS PIPELINE II = 1
        AxiWord<AXI_W> w;
        w.data = 0;
        w.data.range(OUT_W - 1, 0) = in.read();
        w.keep = -1;
        w.strb = -1;
        w.last = i + 1 == words;
        out.write(w);
    }
}

// Alveo: words read from / written to device memory through m_axi ports.
template <int AXI_W, int IN_W>
void mm_to_stream(const ap_uint<AXI_W>* in, hls::stream<ap_uint<IN_W> >& out, unsigned words) {
    for (unsigned i = 0; i < words; i++) {
#pragma HLS PIPELINE II = 1
        out.write(in[i].range(IN_W - 1, 0));
    }
}

template <int AXI_W, int OUT_W>
void stream_to_mm(hls::stream<ap_uint<OUT_W> >& in, ap_uint<AXI_W>* out, unsigned words) {
    for (unsigned i = 0; i < words; i++) {
#pragma HLS PIPELINE II = 1
        ap_uint<AXI_W> w = 0;
        w.range(OUT_W - 1, 0) = in.read();
        out[i] = w;
    }
}

}  // namespace edge

#endif
