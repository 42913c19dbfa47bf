// Shared by the dot-product kernels (edge_mvau, edge_vvau), included inside the module: element decoding, one
// product (DSP `*` or shift-and-add in LUTs, as the module's USE_DSP says) and the activation of an accumulator
// (threshold count, or its low OB bits). Uses the including module's parameters: AB, IB, WB, OB, PE, LEVELS,
// IN_SIGNED, IN_BIPOLAR, W_BIPOLAR, USE_DSP, OUT_BIPOLAR, BASE, STEP, TW.

function automatic signed [AB-1:0] in_value(input [IB-1:0] b);
    if (IN_BIPOLAR) in_value = b[0] ? 1 : -1;
    else if (IN_SIGNED) in_value = $signed(b);
    else in_value = {1'b0, b};
endfunction

function automatic signed [AB-1:0] w_value(input [WB-1:0] b);
    if (W_BIPOLAR) w_value = b[0] ? 1 : -1;
    else w_value = $signed(b);
endfunction

// a product in fabric: the input shifted by each set weight bit, the sign bit subtracted (a bipolar weight
// negates); synthesis keeps it in LUTs where a `*` would be mapped to a DSP block
function automatic signed [AB-1:0] lut_mul(input signed [AB-1:0] x, input [WB-1:0] w);
    lut_mul = '0;
    if (W_BIPOLAR) lut_mul = w[0] ? x : -x;
    else
        for (int b = 0; b < WB; b++)
            if (w[b]) lut_mul = (b == WB - 1) ? lut_mul - (x <<< b) : lut_mul + (x <<< b);
endfunction

function automatic signed [AB-1:0] product(input [IB-1:0] x, input [WB-1:0] w);
    if (USE_DSP) product = in_value(x) * w_value(w);
    else product = lut_mul(in_value(x), w);
endfunction

localparam int LVL_TB = AB;  // thresholds are accumulator-wide
`include "edge_levels.svh"

// the output element of channel lane p: its threshold level (edge_levels.svh), or the accumulator's low OB bits
// when there are no thresholds
function automatic [OB-1:0] activate(input signed [AB-1:0] acc, input [TW-1:0] tword, input int p);
    logic signed [31:0] value;
    if (LEVELS > 0) activate = level_of(64'(acc), tword, p);
    else begin
        value = acc;  // sign-extended to 32 bits, then the output type's width
        activate = value[OB-1:0];
    end
endfunction
