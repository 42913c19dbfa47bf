// Cycle-level simulation support: a bounded FIFO whose writes land after the producer's pipeline depth.
// The same kernel code runs against it as against hls::stream (read, write, empty, full).
#ifndef EDGE_SIMFIFO_HPP
#define EDGE_SIMFIFO_HPP

#include <vector>

namespace edge {

extern unsigned long long sim_now;  // the current clock cycle

// A ring buffer that grows by doubling (an unbounded FIFO measures its peak occupancy without a fixed size).
template <typename T>
struct SimFifo {
    std::vector<T> data;
    std::vector<unsigned long long> ready;  // cycle from which the consumer sees each word
    unsigned long long head, count, mask;
    unsigned long long depth;
    unsigned latency;  // producer's pipeline depth
    unsigned long long peak;
    SimFifo() : data(16), ready(16), head(0), count(0), mask(15), depth(2), latency(1), peak(0) {}
    bool empty() const { return count == 0 || ready[head] > sim_now; }
    bool full() const { return count >= depth; }
    T read() {
        const unsigned long long at = head;
        head = (head + 1) & mask;
        count--;
        return data[at];
    }
    void write(const T& v) {
        if (count == data.size()) grow();
        const unsigned long long at = (head + count) & mask;
        data[at] = v;
        ready[at] = sim_now + latency;
        if (++count > peak) peak = count;
    }

   private:
    void grow() {
        std::vector<T> d(data.size() * 2);
        std::vector<unsigned long long> r(data.size() * 2);
        for (unsigned long long i = 0; i < count; i++) {
            d[i] = data[(head + i) & mask];
            r[i] = ready[(head + i) & mask];
        }
        data.swap(d);
        ready.swap(r);
        head = 0;
        mask = data.size() - 1;
    }
};

}  // namespace edge

#endif
