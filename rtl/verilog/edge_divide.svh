// Shared by the kernels that divide (edge_softmax, edge_layernorm), included inside the module after it declares
// DIV_W, the bits of numerator and divisor, and QB, the quotient bits that matter to it.

// min(floor(n / d), 2^QB - 1) by restoring division: QB compare-subtract steps instead of a DIV_W-bit divider; a
// quotient of 2^QB or more saturates (d = 0 too)
function automatic [QB-1:0] bounded_quotient(input [DIV_W-1:0] n, input [DIV_W-1:0] d);
    logic [DIV_W+QB-1:0] r, shifted;
    logic [QB-1:0] q;
    r = (DIV_W+QB)'(n);
    q = '0;
    if (r >= ((DIV_W+QB)'(d) << QB)) bounded_quotient = '1;
    else begin
        for (int k = QB - 1; k >= 0; k--) begin
            shifted = (DIV_W+QB)'(d) << k;
            if (r >= shifted) begin
                r = r - shifted;
                q[k] = 1'b1;
            end
        end
        bounded_quotient = q;
    end
endfunction
