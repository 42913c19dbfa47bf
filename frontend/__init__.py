"""The front end every other package builds on: loading and checking QONNX models, normalising their graphs, the
golden (QONNX execution) model, and the one error type the CLI turns into a one-line message."""
