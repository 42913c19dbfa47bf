#!/bin/sh
# Build a TensorRT engine from the explicitly quantised (Q/DQ, symmetric int8) ONNX model beside this script.
# Run it on the target (e.g. a Jetson with JetPack): the engine is specific to that GPU and TensorRT version.
# Extra arguments go to trtexec, e.g. ./build_engine.sh --fp16 --verbose
set -eu
cd "$$(dirname "$$0")"
command -v trtexec >/dev/null 2>&1 || PATH="$$PATH:/usr/src/tensorrt/bin"
trtexec --onnx=$onnx --int8 --saveEngine=$engine --shapes=$input:$shape "$$@"
