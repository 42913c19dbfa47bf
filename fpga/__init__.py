"""Dataflow compiler: lower QONNX to an integer dataflow IR, fold it to a board, estimate cycles and resources."""
