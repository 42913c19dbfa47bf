"""HLS backend: kernel library (include/edge), code generation from the dataflow IR, C-sim and cycle simulation."""
