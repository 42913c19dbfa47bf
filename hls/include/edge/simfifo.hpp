// Cycle-level simulation support: a bounded FIFO whose writes land after the producer's pipeline depth.
// The same kernel code runs against it as against hls::stream (read, write, empty, full).
#ifndef EDGE_SIMFIFO_HPP
#define EDGE_SIMFIFO_HPP

#include <deque>
#include <utility>

namespace edge {

extern unsigned long long sim_now;  // the current clock cycle

template <typename T>
struct SimFifo {
    std::deque<std::pair<T, unsigned long long> > items;  // value, cycle from which the consumer sees it
    unsigned long long depth;
    unsigned latency;  // producer's pipeline depth
    unsigned long long peak;
    SimFifo() : depth(2), latency(1), peak(0) {}
    bool empty() const { return items.empty() || items.front().second > sim_now; }
    bool full() const { return items.size() >= depth; }
    T read() {
        T v = items.front().first;
        items.pop_front();
        return v;
    }
    void write(const T& v) {
        items.push_back(std::make_pair(v, sim_now + latency));
        if (items.size() > peak) peak = items.size();
    }
};

}  // namespace edge

#endif
