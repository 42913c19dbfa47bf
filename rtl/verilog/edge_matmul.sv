// StreamMatMul: out[m, b, n] = sum_k A[m, b, k] * B[b, k, n] for two activation streams (attention's Q K^T and
// A V). B (input 1: BATCH*K*N elements, SIMD per word, in its stream order ORDER 0 = (n, b, k) or 1 = (k, b, n)) is
// buffered whole first; then each row of A (input 0: per m and head b, K elements, SIMD per word) is read during the
// first of the N/PE column folds and kept for the others. Per frame LOAD + M*BATCH*NF*KF cycles, one word per cycle;
// a column fold's PE sums leave registered after its last reduction fold. Sums are exact (OB bits hold them).
module edge_matmul #(
    parameter int M = 1,
    parameter int BATCH = 1,
    parameter int K = 4,
    parameter int N = 4,
    parameter int PE = 1,
    parameter int SIMD = 1,
    parameter int AB = 4,            // bits of an element of A
    parameter bit A_SIGNED = 1,
    parameter int BB = 4,            // of B
    parameter bit B_SIGNED = 1,
    parameter int OB = 16,           // of the output (two's complement)
    parameter int ORDER = 0,
    localparam int NF = N / PE,
    localparam int KF = K / SIMD,
    localparam int LOAD = BATCH * K * N / SIMD
) (
    input  logic               clk,
    input  logic               rst_n,
    input  logic               in0_valid,
    output logic               in0_ready,
    input  logic [SIMD*AB-1:0] in0_data,
    input  logic               in1_valid,
    output logic               in1_ready,
    input  logic [SIMD*BB-1:0] in1_data,
    output logic               out_valid,
    output logic [PE*OB-1:0]   out_data,
    input  logic               out_ready
);
    logic signed [BB:0] bbuf [0:BATCH*K*N-1];   // B[b][k][n] at (b*K + k)*N + n, sign-extended
    logic signed [AB:0] row [0:K-1];            // the current row of A
    logic signed [OB:0] acc [0:PE-1];
    int load, m, b, nf, kf;

    wire loading = load < LOAD;
    wire writes = kf == KF - 1;
    wire room = !out_valid || out_ready;
    assign in1_ready = loading;
    assign in0_ready = !loading && nf == 0 && (!writes || room);
    wire step = loading ? in1_valid : ((nf != 0 || in0_valid) && (!writes || room));

    function automatic signed [AB:0] a_elem(input [SIMD*AB-1:0] w, input int s);
        a_elem = A_SIGNED ? $signed(w[s*AB +: AB]) : $signed({1'b0, w[s*AB +: AB]});
    endfunction
    function automatic signed [BB:0] b_elem(input [SIMD*BB-1:0] w, input int s);
        b_elem = B_SIGNED ? $signed(w[s*BB +: BB]) : $signed({1'b0, w[s*BB +: BB]});
    endfunction
    function automatic int b_index(input int e);  // element e of B's stream -> its place in bbuf
        if (ORDER == 0) b_index = (((e / K) % BATCH) * K + e % K) * N + e / (BATCH * K);
        else b_index = (((e / N) % BATCH) * K + e / (BATCH * N)) * N + e % N;
    endfunction

    logic signed [OB:0] sums [0:PE-1];
    logic signed [AB:0] a_now [0:SIMD-1];
    always_comb begin
        for (int s = 0; s < SIMD; s++) a_now[s] = nf == 0 ? a_elem(in0_data, s) : row[kf * SIMD + s];
        for (int p = 0; p < PE; p++) begin
            sums[p] = kf == 0 ? '0 : acc[p];
            for (int s = 0; s < SIMD; s++)
                sums[p] = sums[p] + a_now[s] * bbuf[(b * K + kf * SIMD + s) * N + nf * PE + p];
        end
    end

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            load <= 0;
            m <= 0;
            b <= 0;
            nf <= 0;
            kf <= 0;
            out_valid <= 1'b0;
        end else begin
            if (out_valid && out_ready) out_valid <= 1'b0;
            if (step) begin
                if (loading) begin
                    for (int s = 0; s < SIMD; s++) bbuf[b_index(load * SIMD + s)] <= b_elem(in1_data, s);
                    load <= load + 1;
                end else begin
                    if (nf == 0)
                        for (int s = 0; s < SIMD; s++) row[kf * SIMD + s] <= a_now[s];
                    for (int p = 0; p < PE; p++) acc[p] <= sums[p];
                    if (writes) begin
                        for (int p = 0; p < PE; p++) out_data[p*OB +: OB] <= sums[p][OB-1:0];
                        out_valid <= 1'b1;
                    end
                    if (kf == KF - 1) begin
                        kf <= 0;
                        if (nf == NF - 1) begin
                            nf <= 0;
                            if (b == BATCH - 1) begin
                                b <= 0;
                                if (m == M - 1) begin
                                    m <= 0;
                                    load <= 0;
                                end else m <= m + 1;
                            end else b <= b + 1;
                        end else nf <= nf + 1;
                    end else kf <= kf + 1;
                end
            end
        end
    end
endmodule
