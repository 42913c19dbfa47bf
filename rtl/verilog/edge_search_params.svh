// Shared by the wrappers that put edge_thrsearch behind a kernel (edge_mvau_search, edge_vvau_search,
// edge_layernorm_search), included as the last entries of their parameter lists: the inner kernel's output element
// bits (VB, signed when VB_SIGNED) and the search's parameters with an S_ prefix (see edge_thrsearch).
    parameter int VB = 16,
    parameter bit VB_SIGNED = 1,
    parameter int S_TB = 18,
    parameter int S_LEVELS = 255,
    parameter int S_OB = 8,
    parameter bit S_OUT_BIPOLAR = 0,
    parameter int S_BASE = 0,
    parameter int S_STEP = 1,
    parameter int S_BLOCK = 0,
    parameter SEARCH = "search",
    parameter DESC = "desc.mem"
