"""Edge targets: QDQ ONNX and what is built from it (OpenVINO IR), each verified against the golden model."""
