// Shared by every kernel that ends in thresholds (the MVAU and VVAU through edge_dot.svh, edge_thresholding,
// edge_layernorm), included inside the module after it declares LVL_TB, the bits of one threshold. A ROM word holds,
// per lane p, LEVELS thresholds at [(p*LEVELS + l)*LVL_TB +: LVL_TB] and the descending flag at bit
// PE*LEVELS*LVL_TB + p. Uses the module's PE, LEVELS, OB, BASE, STEP, OUT_BIPOLAR.

// the output element of lane p: BASE + STEP * #{l : v >= T[l]} (v <= T[l] for a descending channel); a bipolar
// output is the count's bit
function automatic [OB-1:0] level_of(input signed [63:0] v, input [PE*LEVELS*LVL_TB+PE-1:0] tword, input int p);
    logic [31:0] count;
    logic signed [31:0] value;
    logic signed [63:0] thr;
    count = 0;
    for (int l = 0; l < LEVELS; l++) begin
        thr = $signed(tword[(p*LEVELS + l)*LVL_TB +: LVL_TB]);
        if (tword[PE*LEVELS*LVL_TB + p] ? (v <= thr) : (v >= thr)) count = count + 1;
    end
    value = BASE + STEP * $signed(count);
    level_of = OUT_BIPOLAR ? count[OB-1:0] : value[OB-1:0];
endfunction
