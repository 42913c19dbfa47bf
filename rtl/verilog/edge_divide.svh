// Shared by the kernels that divide (edge_softmax, edge_layernorm), included inside the module after it declares
// NUM_W and DEN_W, the bits of numerator and divisor, and QB, the quotient bits that matter to it.

// min(floor(n / d), 2^QB - 1) by restoring division, QB steps: a quotient of 2^QB or more saturates (d = 0 too);
// otherwise n >> QB < d is the first partial remainder and each step brings down one bit of n and compare-subtracts
// d, so every step is DEN_W + 1 bits wide whatever the numerator's width.
function automatic [QB-1:0] bounded_quotient(input [NUM_W-1:0] n, input [DEN_W-1:0] d);
    logic [NUM_W+QB-1:0] wide;
    logic [DEN_W:0] r;
    logic [QB-1:0] q;
    wide = (NUM_W+QB)'(n);
    q = '0;
    if ((wide >> QB) >= (NUM_W+QB)'(d)) bounded_quotient = '1;
    else begin
        r = (DEN_W+1)'(wide >> QB);
        for (int k = QB - 1; k >= 0; k--) begin
            r = {r[DEN_W-1:0], wide[k]};
            if (r >= {1'b0, d}) begin
                r = r - {1'b0, d};
                q[k] = 1'b1;
            end
        end
        bounded_quotient = q;
    end
endfunction
