// Shared by the search wrappers, included after the inner kernel: its output (v_valid, v_ready, v_data: PE elements
// of VB bits) into edge_thrsearch over SEARCH_C channels, whose output is the wrapper's.
    edge_thrsearch #(.C(SEARCH_C), .PE(PE), .IB(VB), .IN_SIGNED(VB_SIGNED), .TB(S_TB), .LEVELS(S_LEVELS), .OB(S_OB),
                     .OUT_BIPOLAR(S_OUT_BIPOLAR), .BASE(S_BASE), .STEP(S_STEP), .SEARCH(SEARCH), .DESC(DESC),
                     .BLOCK(S_BLOCK)) u_search (
        .clk(clk), .rst_n(rst_n), .in_valid(v_valid), .in_ready(v_ready), .in_data(v_data),
        .out_valid(out_valid), .out_ready(out_ready), .out_data(out_data));
