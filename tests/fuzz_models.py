"""Mutations of valid QONNX models for the fuzz test: bytes, nodes, op types, initializers, attributes, shapes.

Each mutation is (label, bytes of the mutated file). Deterministic for a seed, so a failure names a reproducible
case."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import numpy as np
import onnx
from onnx import helper, numpy_helper

OP_SWAPS = ["Relu", "Sigmoid", "Conv", "MatMul", "Add", "Mul", "Quant", "BipolarQuant", "Trunc", "Reshape",
            "MaxPool", "Identity", "Softmax", "Transpose", "Concat", "Gemm"]
BAD_SCALARS = [0.0, -1.0, float("nan"), float("inf"), 2.5, 1e-30, 1e30, 64.0, -3.0]


def _copy(proto: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    return out


def _byte_mutations(data: bytes, rng: random.Random, n: int) -> Iterator[tuple[str, bytes]]:
    for _ in range(n):
        cut = rng.randrange(1, len(data))
        yield f"truncated at byte {cut}", data[:cut]
    for _ in range(n):
        b = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        yield "random bytes flipped", bytes(b)


def _node_mutations(proto: onnx.ModelProto, rng: random.Random, n: int) -> Iterator[tuple[str, onnx.ModelProto]]:
    nodes = list(proto.graph.node)
    for _ in range(n):
        m = _copy(proto)
        i = rng.randrange(len(nodes))
        del m.graph.node[i]
        yield f"node {i} ({nodes[i].op_type}) dropped", m
    for _ in range(n):
        m = _copy(proto)
        i = rng.randrange(len(nodes))
        op = rng.choice(OP_SWAPS)
        m.graph.node[i].op_type = op
        yield f"node {i} ({nodes[i].op_type}) turned into {op}", m
    for _ in range(n // 2):
        m = _copy(proto)
        i = rng.randrange(len(nodes))
        m.graph.node.append(m.graph.node[i])
        yield f"node {i} ({nodes[i].op_type}) duplicated", m
    for _ in range(n // 2):
        m = _copy(proto)
        i, j = rng.sample(range(len(nodes)), 2)
        a, b = m.graph.node[i].input, m.graph.node[j].output
        if a and b:
            a[0] = b[0]
        yield f"node {i} reads node {j}'s output", m


def _initializer_mutations(proto: onnx.ModelProto, rng: random.Random,
                           n: int) -> Iterator[tuple[str, onnx.ModelProto]]:
    inits = list(proto.graph.initializer)
    for _ in range(n):
        m = _copy(proto)
        i = rng.randrange(len(inits))
        del m.graph.initializer[i]
        yield f"initializer '{inits[i].name}' dropped", m
    quant_params = [(node.input[k], k) for node in proto.graph.node if node.op_type in ("Quant", "BipolarQuant")
                    for k in range(1, len(node.input))]
    for _ in range(2 * n):
        m = _copy(proto)
        name, k = rng.choice(quant_params)
        value = rng.choice(BAD_SCALARS)
        for t in m.graph.initializer:
            if t.name == name:
                shape = rng.choice([(), (3,), tuple(numpy_helper.to_array(t).shape)])
                t.CopyFrom(numpy_helper.from_array(np.full(shape, value, np.float32), name))
        yield f"quantiser input {k} '{name}' set to {value}", m
    for _ in range(n):
        m = _copy(proto)
        i = rng.randrange(len(inits))
        a = numpy_helper.to_array(m.graph.initializer[i])
        kind = rng.choice(["transpose", "int64", "scalar", "extra dim"])
        if kind == "transpose" and a.ndim >= 2:
            a = a.T.copy()
        elif kind == "int64":
            a = np.nan_to_num(a).astype(np.int64)
        elif kind == "scalar":
            a = np.asarray(a.reshape(-1)[:1].reshape(()))
        else:
            a = a[None]
        m.graph.initializer[i].CopyFrom(numpy_helper.from_array(a, inits[i].name))
        yield f"initializer '{inits[i].name}' changed ({kind})", m


def _attribute_mutations(proto: onnx.ModelProto, rng: random.Random,
                         n: int) -> Iterator[tuple[str, onnx.ModelProto]]:
    with_attrs = [i for i, node in enumerate(proto.graph.node) if node.attribute]
    for _ in range(n):
        m = _copy(proto)
        i = rng.choice(with_attrs)
        node = m.graph.node[i]
        j = rng.randrange(len(node.attribute))
        name = node.attribute[j].name
        if rng.random() < 0.4:
            del node.attribute[j]
            yield f"attribute '{name}' of node {i} removed", m
            continue
        value = rng.choice([0, -1, 7, 2**31 - 1, "FOO", [0, 0], [3, 3, 3], 0.5])
        node.attribute[j].CopyFrom(helper.make_attribute(name, value))
        yield f"attribute '{name}' of node {i} set to {value!r}", m
    for _ in range(n // 2):
        m = _copy(proto)
        i = rng.randrange(len(proto.graph.node))
        m.graph.node[i].attribute.append(helper.make_attribute(rng.choice(["axis", "group", "strides", "perm"]),
                                                               rng.choice([5, [2, 2], -7])))
        yield f"attribute added to node {i}", m


def _shape_mutations(proto: onnx.ModelProto, rng: random.Random, n: int) -> Iterator[tuple[str, onnx.ModelProto]]:
    for _ in range(n):
        m = _copy(proto)
        tensor = rng.choice([m.graph.input[0], m.graph.output[0]])
        dims = tensor.type.tensor_type.shape.dim
        k = rng.randrange(len(dims))
        value = rng.choice([0, 100000, 3, 2**40])
        dims[k].Clear()
        if rng.random() < 0.2:
            dims[k].dim_param = "N"
        else:
            dims[k].dim_value = value
        yield f"{tensor.name} dim {k} set to {dims[k].dim_param or value}", m
    m = _copy(proto)
    del m.graph.input[0].type.tensor_type.shape.dim[:]
    yield "input without a shape", m
    m = _copy(proto)
    m.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.INT8
    yield "input of type int8", m


def mutations(proto: onnx.ModelProto, seed: int, n: int = 6) -> Iterator[tuple[str, bytes]]:
    """About 10 * n mutated models (label, file bytes) of one valid model."""
    rng = random.Random(seed)
    data = proto.SerializeToString()
    yield from _byte_mutations(data, rng, n // 2 + 1)
    makers: list[Callable[..., Iterator[tuple[str, onnx.ModelProto]]]] = [
        _node_mutations, _initializer_mutations, _attribute_mutations, _shape_mutations]
    for make in makers:
        for label, m in make(proto, rng, n):
            yield label, m.SerializeToString()
