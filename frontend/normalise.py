"""Front-end normalisation: small exact rewrites, one idiom each, run on a loaded QONNX graph before its ops are
checked, so that errors name only what is truly unsupported.

Every pass follows qonnx's transformation contract, `apply(model) -> (model, changed)`, and records one line per
rewrite in `notes` (shown by `edge inspect`). Passes only make rewrites that compute the same function for every
batch size: the result is the golden reference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import onnx
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.fold_constants import FoldConstants
from qonnx.transformation.general import SortGraph
from qonnx.transformation.infer_shapes import InferShapes

from frontend.shapes import reshape_batch_axis, transpose_batch_axis

QUANTISER_OPS = ("Quant", "BipolarQuant", "Trunc", "QuantizeLinear", "DequantizeLinear")
IDENTITY_OPS = frozenset({"Identity", "Dropout"})
# element-wise ops (constants scalar or per channel) a sub-pixel ConvTranspose's outputs may pass through before
# their quantiser
SUBPIXEL_CHAIN_OPS = frozenset({"Relu", "Clip", "Quant", "BipolarQuant", "BatchNormalization", "Mul", "Add", "Sub",
                                "Div"})


class Pass(Protocol):
    notes: list[str]

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]: ...


def _label(node: onnx.NodeProto) -> str:
    return f"'{node.name}' ({node.op_type})" if node.name else node.op_type


class FoldShapeOps:
    """Shape of a tensor whose per-sample shape is static becomes a constant (dynamic-batch exports compute
    Reshape targets through Shape -> Gather -> Unsqueeze -> Concat); BatchFreeReshape then frees the batch axis."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        changed = False
        for node in list(model.graph.node):
            if node.op_type != "Shape":
                continue
            shape = model.get_tensor_shape(node.input[0])
            if shape is None or any(not isinstance(d, int) or d <= 0 for d in shape):
                continue
            start = _attr_int(node, "start", 0)
            end = _attr_int(node, "end", len(shape))
            value = np.asarray(shape, np.int64)[start:end]
            model.set_initializer(node.output[0], value)
            model.graph.node.remove(node)
            self.notes.append(f"folded Shape {_label(node)} of '{node.input[0]}' to {value.tolist()}")
            changed = True
        return model, changed


class FoldConstantSubgraphs:
    """Every node whose inputs are all constants is evaluated once (TensorNorm's Pow/Sqrt/Div/Sub, the Gather/
    Unsqueeze/Concat chains of Reshape targets); quantisers are kept, they are the model."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        before = [(n.name, n.op_type) for n in model.graph.node]
        model = model.transform(FoldConstants(exclude_op_types=list(QUANTISER_OPS)))
        after = {n.name for n in model.graph.node}
        folded = [f"'{name}' ({op})" if name else op for name, op in before if name not in after]
        if folded:
            self.notes.append(f"folded {len(folded)} constant node(s): {', '.join(folded[:6])}"
                              + (" ..." if len(folded) > 6 else ""))
        return model, bool(folded)


class BatchFreeReshape:
    """A Reshape whose constant target holds the batch size it was traced at (`x.reshape(x.shape[0], -1)` exported
    at batch 1 gives [1, 256]; attention's seq-first head split gives [tokens, batch * heads, head_dim]) gets -1
    where the batch is (followed through Transposes and Reshapes from the input) and explicit sizes elsewhere, so
    any batch size works."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        changed = False
        batch = _graph_batch(model)
        axes = batch_axes(model)
        for node in model.graph.node:
            if node.op_type != "Reshape" or len(node.input) < 2:
                continue
            target = model.get_initializer(node.input[1])
            in_shape = model.get_tensor_shape(node.input[0])
            out_shape = model.get_tensor_shape(node.output[0])
            if target is None or in_shape is None or out_shape is None or target.ndim != 1 or len(target) < 1:
                continue
            b = axes.get(node.output[0])
            if b is None and int(target[0]) == batch and in_shape[0] == batch and out_shape[0] == batch:
                b = 0
            if b is None or int(target[b]) == -1 or any(not isinstance(d, int) or d <= 0 for d in out_shape):
                continue
            new = np.asarray([-1 if i == b else int(d) for i, d in enumerate(out_shape)], np.int64)
            name = f"{node.input[1]}_batch_free"
            model.set_initializer(name, new)
            node.input[1] = name
            self.notes.append(f"Reshape {_label(node)}: target {target.tolist()} -> {new.tolist()} (any batch size)")
            changed = True
        return model, changed


def batch_axes(model: ModelWrapper) -> dict[str, int | None]:
    """For every tensor computed from the model input, the axis whose outermost factor is the batch (None where
    it cannot be followed). Only meaningful for a model at batch size 1 or for axis-0 batches."""
    inp = model.graph.input[0].name
    axes: dict[str, int | None] = {inp: 0}
    for node in model.graph.node:
        dyn = [i for i in node.input if i in axes]
        if not dyn:
            continue
        a = axes[dyn[0]]
        shape_in = model.get_tensor_shape(node.input[0])
        out = None
        if node.op_type == "Transpose":
            perm = [int(p) for p in next((helper.get_attribute_value(x) for x in node.attribute if x.name == "perm"),
                                         range(len(shape_in or [])))][:]
            out = transpose_batch_axis(perm, a) if node.input[0] in axes else None
        elif node.op_type in ("Reshape", "Flatten", "Squeeze", "Unsqueeze"):
            shape_out = model.get_tensor_shape(node.output[0])
            if shape_in is not None and shape_out is not None and node.input[0] in axes:
                out = reshape_batch_axis(shape_in, shape_out, a)
        elif node.op_type in ("Conv", "Gemm", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten"):
            out = 0 if a == 0 else None
        elif node.op_type == "MatMul":
            rank = len(shape_in or [])
            out = a if node.input[0] in axes and a is not None and a < rank - 1 else None
            if node.input[0] not in axes:  # weights @ activation: the activation's leading axes carry the batch
                other = model.get_tensor_shape(node.input[1]) or []
                out = a if a is not None and a < len(other) - 2 else None
        elif node.op_type.startswith("Reduce"):
            keep = _attr_int(node, "keepdims", 1)
            red = next((list(helper.get_attribute_value(x)) for x in node.attribute if x.name == "axes"), None)
            if red is None and len(node.input) > 1 and model.get_initializer(node.input[1]) is not None:
                red = [int(v) for v in model.get_initializer(node.input[1]).reshape(-1)]
            rank = len(shape_in or [])
            red = [r % rank for r in red] if red is not None and rank else None
            if a is not None and red is not None and a not in red:
                out = a if keep else a - sum(1 for r in red if r < a)
        else:  # element-wise ops, quantisers, Softmax, LayerNorm, Slice, Concat, ...: the axis stays
            out = a
        for o in node.output:
            axes[o] = out
    return axes


class SplitPackedProjection:
    """A packed projection sliced along its outputs (attention's in-projection: one MatMul + bias for Q, K and V,
    then three Slices) becomes one MatMul + bias per slice on the sliced quantised weights: the same values, and
    each part is then a layer of its own (three MVAUs reading one stream)."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for mm in list(model.graph.node):
            parts = self._match(model, mm)
            if parts is None:
                continue
            add, slices, (wq, w, bq, b, axis_len) = parts
            for i, (sl, start, end) in enumerate(slices):
                tag = f"{mm.name or mm.output[0]}_part{i}"
                wq_out = self._sliced_quant(model, wq, w, start, end, axis_len, f"{tag}_w", weight=True)
                b_out = self._sliced_quant(model, bq, b, start, end, axis_len, f"{tag}_b", weight=False)
                mm_out = f"{tag}_matmul"
                model.graph.node.append(helper.make_node("MatMul", [mm.input[0], wq_out], [mm_out],
                                                         name=f"{tag}/MatMul"))
                model.graph.node.append(helper.make_node("Add", [b_out, mm_out], [sl.output[0]], name=f"{tag}/Add"))
                model.graph.node.remove(sl)
            for n in (add, mm):
                model.graph.node.remove(n)
            for q in (wq, bq):
                if q is not None and not model.find_consumers(q.output[0]):
                    model.graph.node.remove(q)
            self.notes.append(f"split packed projection {_label(mm)} into {len(slices)} layers at its Slices")
            model = model.transform(SortGraph()).transform(InferShapes())
            return model, True
        return model, False

    @staticmethod
    def _const_quant(model: ModelWrapper, tensor: str) -> tuple[onnx.NodeProto | None, np.ndarray | None]:
        q = model.find_producer(tensor)
        if q is not None and q.op_type == "Quant" and model.get_initializer(q.input[0]) is not None and \
                all(model.get_initializer(i) is not None for i in q.input[1:]):
            return q, model.get_initializer(q.input[0])
        return None, model.get_initializer(tensor)

    def _match(self, model: ModelWrapper, mm: onnx.NodeProto):
        if mm.op_type != "MatMul":
            return None
        wq, w = self._const_quant(model, mm.input[1])
        if wq is None or w is None or w.ndim != 2:
            return None
        users = model.find_consumers(mm.output[0]) or []
        if len(users) != 1 or users[0].op_type != "Add":
            return None
        add = users[0]
        other = [i for i in add.input if i != mm.output[0]]
        if len(other) != 1:
            return None
        bq, b = self._const_quant(model, other[0])
        n_out = w.shape[1]
        if b is None or b.reshape(-1).size != n_out:
            return None
        rank = len(model.get_tensor_shape(add.output[0]) or [])
        slices = []
        for sl in model.find_consumers(add.output[0]) or []:
            if sl.op_type != "Slice" or len(sl.input) < 4:
                return None
            vals = [model.get_initializer(i) if i else None for i in sl.input[1:5]]
            if any(v is None for v in vals[:3]) or (len(vals) > 3 and vals[3] is not None and
                                                     np.any(vals[3] != 1)):
                return None
            starts, ends, axes = (np.asarray(v).reshape(-1) for v in vals[:3])
            if len(axes) != 1 or int(axes[0]) % max(rank, 1) != rank - 1:
                return None
            start, end = int(starts[0]), min(int(ends[0]), n_out)
            slices.append((sl, start, end))
        if len(slices) < 2:
            return None
        return add, slices, (wq, w, bq, b, n_out)

    @staticmethod
    def _sliced_quant(model: ModelWrapper, q: onnx.NodeProto | None, value: np.ndarray, start: int, end: int,
                      n_out: int, name: str, weight: bool) -> str:
        part = value[:, start:end] if weight else value.reshape(-1)[start:end]

        def sliced(k: int, p: np.ndarray) -> np.ndarray:
            if k == 0 and p.size == n_out:  # a per-output scale slices with the outputs
                return p.reshape(-1)[start:end].reshape(p.shape[:-1] + (end - start,) if p.ndim else ())
            return p

        return _quant_copy(model, q, np.ascontiguousarray(part), name, sliced)


def _quant_copy(model: ModelWrapper, q: onnx.NodeProto | None, value: np.ndarray, name: str,
                param: Callable[[int, np.ndarray], np.ndarray]) -> str:
    """`value` as a new initializer behind a copy of quantiser q (none: the value itself), each of q's parameters
    passed through `param(index, array)` (sliced or repeated with the channels the value now has)."""
    model.set_initializer(f"{name}_value", value)
    if q is None:
        return f"{name}_value"
    params = []
    for k, i in enumerate(q.input[1:]):
        model.set_initializer(f"{name}_param{k}", np.asarray(param(k, np.asarray(model.get_initializer(i)))))
        params.append(f"{name}_param{k}")
    node = helper.make_node("Quant", [f"{name}_value", *params], [f"{name}_q"], name=f"{name}/Quant",
                            domain=q.domain)
    node.attribute.extend(q.attribute)
    model.graph.node.append(node)
    return f"{name}_q"


class SubPixelConvTranspose:
    """A ConvTranspose of stride r whose output is r times its input (kernel - pads + output padding == r: a UNet
    decoder's 2x2/2, the 4x4/2 padding 1 and 3x3/2 padding 1 output padding 1 of GAN and segmentation decoders)
    is a Conv with Cout * r * r outputs followed by DepthToSpace (CRD): output pixel (r*m + a, r*n + b) sums the
    input pixels m + d that kernel taps reach with phase (a, b), so each phase is a small convolution over
    offsets d, all phases one Conv of kernel dmax - dmin + 1 padded by (-dmin, dmax). The same products and sums
    (taps a phase does not use are zero weights), on the same quantised weights rearranged (per-output-channel
    scales repeat over the block). Kernel == stride is the 1x1 case."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for node in list(model.graph.node):
            if node.op_type != "ConvTranspose" or not self._sub_pixel(node):
                continue
            wq, w = SplitPackedProjection._const_quant(model, node.input[1])
            bq, b = (SplitPackedProjection._const_quant(model, node.input[2]) if len(node.input) > 2 and
                     node.input[2] else (None, None))
            if w is None or w.ndim != 4 or (len(node.input) > 2 and node.input[2] and b is None):
                continue  # weights not constant (yet): a later round, after constant folding
            c_in, c_out, k = w.shape[0], w.shape[1], w.shape[2]
            r, pad, (lo, hi) = self._geometry(node)
            size = hi - lo + 1
            tag = node.name or node.output[0]
            w2 = np.zeros((c_out, r, r, c_in, size, size), np.float32)  # (co, a, b, ci, th, tw)
            for ya in range(r):  # output phase (row, column) of the block, kernel tap reaching it
                for kh in range(k):
                    if (ya + pad - kh) % r:
                        continue
                    th = (ya + pad - kh) // r - lo
                    for xb in range(r):
                        for kw in range(k):
                            if (xb + pad - kw) % r == 0:
                                w2[:, ya, xb, :, th, (xb + pad - kw) // r - lo] = np.asarray(w)[:, :, kh, kw].T
            w2 = np.ascontiguousarray(w2.reshape(c_out * r * r, c_in, size, size))
            w_out = self._quant(model, wq, w2, c_out, r * r, f"{tag}_subpixel_w")
            inputs = [node.input[0], w_out]
            if b is not None:
                b2 = np.repeat(np.asarray(b).reshape(-1), r * r)
                inputs.append(self._quant(model, bq, b2, c_out, r * r, f"{tag}_subpixel_b"))
            conv_out = f"{tag}_subpixel_conv"
            model.graph.node.append(helper.make_node("Conv", inputs, [conv_out], name=f"{tag}/Conv",
                                                     kernel_shape=[size, size], strides=[1, 1],
                                                     pads=[-lo, -lo, hi, hi], dilations=[1, 1], group=1))
            # the element-wise chain down to the activation quantiser runs per channel before the rearrangement
            # (so the quantiser sees the Conv's channels, as the FPGA lowering needs); its per-channel
            # constants repeat over the block
            chain = self._elementwise_chain(model, node.output[0], c_out)
            src = conv_out
            for op in chain:
                for i, name in enumerate(op.input[1:], start=1):
                    v = model.get_initializer(name) if name else None
                    if v is not None and np.asarray(v).size == c_out and c_out > 1:
                        v = np.asarray(v)
                        rep = np.repeat(v.reshape(-1), r * r)
                        model.set_initializer(f"{name}_subpixel", rep.reshape(v.shape[:-3] + (-1, 1, 1))
                                              if v.ndim >= 3 else rep)
                        op.input[i] = f"{name}_subpixel"
                op.input[0] = src
                src = op.output[0]
            final = chain[-1].output[0] if chain else node.output[0]
            if chain:
                chain[-1].output[0] = f"{tag}_subpixel_blocks"
                src = chain[-1].output[0]
            model.graph.node.append(helper.make_node("DepthToSpace", [src], [final], name=f"{tag}/DepthToSpace",
                                                     blocksize=r, mode="CRD"))
            stale = {op.output[0] for op in chain} | {node.output[0]}  # shapes change: inferred again below
            for vi in [v for v in model.graph.value_info if v.name in stale]:
                model.graph.value_info.remove(vi)
            model.graph.node.remove(node)
            for q in (wq, bq):
                if q is not None and not model.find_consumers(q.output[0]):
                    model.graph.node.remove(q)
            self.notes.append(f"{_label(node)} ({k}x{k}, stride {r}) as a {size}x{size} Conv to {c_out * r * r} "
                              f"channels and DepthToSpace({r})")
            model = model.transform(SortGraph()).transform(InferShapes())
            return model, True
        return model, False

    @staticmethod
    def _elementwise_chain(model: ModelWrapper, tensor: str, c_out: int) -> list[onnx.NodeProto]:
        """The single-consumer element-wise ops from `tensor` down to its activation quantiser (inclusive), when
        every constant they read is a scalar or per channel; else none (DepthToSpace stays before them)."""
        chain: list[onnx.NodeProto] = []
        outputs = {o.name for o in model.graph.output}
        while tensor not in outputs:
            users = model.find_consumers(tensor) or []
            if len(users) != 1 or users[0].op_type not in SUBPIXEL_CHAIN_OPS or users[0].input[0] != tensor:
                return []
            op = users[0]
            for name in op.input[1:]:
                v = model.get_initializer(name) if name else None
                if name and (v is None or np.asarray(v).size not in (1, c_out)):
                    return []
            chain.append(op)
            if op.op_type in ("Quant", "BipolarQuant"):
                return chain
            tensor = op.output[0]
        return []

    @staticmethod
    def _geometry(node: onnx.NodeProto) -> tuple[int, int, tuple[int, int]]:
        """(stride r, leading pad, (dmin, dmax)): the input offsets the phases of one output block read."""
        a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
        k, r = int(a["kernel_shape"][0]), int(a["strides"][0])
        pad = int(list(a.get("pads", [0, 0, 0, 0]))[0])
        offsets = [(ph + pad - kk) // r for ph in range(r) for kk in range(k) if (ph + pad - kk) % r == 0]
        return r, pad, (min(offsets), max(offsets))

    @staticmethod
    def _sub_pixel(node: onnx.NodeProto) -> bool:
        a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
        k, st = list(a.get("kernel_shape", [])), list(a.get("strides", [1, 1]))
        pads, out_pad = list(a.get("pads", [0, 0, 0, 0])), list(a.get("output_padding", [0, 0]))
        if not (len(k) == 2 and k[0] == k[1] and len(st) == 2 and st[0] == st[1] > 1 and len(pads) == 4
                and pads[0] == pads[1] and pads[2] == pads[3] and len(out_pad) == 2 and out_pad[0] == out_pad[1]
                and all(d == 1 for d in a.get("dilations", [1])) and a.get("group", 1) == 1
                and "output_shape" not in a and a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")):
            return False
        if k[0] - pads[0] - pads[2] + out_pad[0] != st[0]:  # the output is not stride x the input
            return False
        _, _, (lo, hi) = SubPixelConvTranspose._geometry(node)
        return lo <= 0 <= hi

    @staticmethod
    def _quant(model: ModelWrapper, q: onnx.NodeProto | None, value: np.ndarray, c_out: int, block: int,
               name: str) -> str:
        """`value` (already rearranged) as an initializer, behind a copy of the original quantiser whose
        per-output-channel parameters repeat over the block."""

        def repeated(_: int, p: np.ndarray) -> np.ndarray:
            if p.size == c_out and c_out > 1:
                p = np.repeat(p.reshape(-1), block)
                return p.reshape(-1, *([1] * (value.ndim - 1))) if value.ndim > 1 else p
            return p

        return _quant_copy(model, q, np.asarray(value, np.float32), name, repeated)


class GatherQuantisedTable:
    """Gather at constant indices from a per-tensor-quantised constant table (position and token-type embeddings
    read at fixed positions) becomes the quantiser applied to the gathered rows: a quantised constant that adds to
    a stream of the same scale as integers. Exact: a per-tensor quantiser acts element by element."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for node in list(model.graph.node):
            if node.op_type != "Gather" or len(node.input) < 2:
                continue
            q = model.find_producer(node.input[0])
            idx = model.get_initializer(node.input[1])
            if q is None or q.op_type != "Quant" or idx is None:
                continue
            table = model.get_initializer(q.input[0])
            params = [model.get_initializer(i) for i in q.input[1:]]
            if table is None or any(p is None or np.asarray(p).size != 1 for p in params):
                continue
            value = np.take(table, np.asarray(idx, np.int64), axis=_attr_int(node, "axis", 0))
            out = _quant_copy(model, q, np.asarray(value, table.dtype), f"{node.name or node.output[0]}_rows",
                              lambda _k, a: a)
            for consumer in model.find_consumers(node.output[0]) or []:
                for i, name in enumerate(consumer.input):
                    if name == node.output[0]:
                        consumer.input[i] = out
            model.graph.node.remove(node)
            if not model.find_consumers(q.output[0]):
                model.graph.node.remove(q)
            self.notes.append(f"{_label(node)}: constant rows of a quantised table as a quantised constant")
            return model.transform(InferShapes()), True
        return model, False


class RemoveIdentityOps:
    """Identity, Dropout (inference) and Reshape/Flatten/Expand that keep the shape are dropped; consumers read the
    input (a class token's batch Expand, traced at batch 1, keeps it)."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        outputs = {o.name for o in model.graph.output}
        for node in list(model.graph.node):
            if not self._is_identity(model, node) or node.output[0] in outputs:
                continue
            if any(o and model.find_consumers(o) for o in node.output[1:]):
                continue  # a Dropout mask that something reads
            for consumer in model.find_consumers(node.output[0]) or []:
                for i, name in enumerate(consumer.input):
                    if name == node.output[0]:
                        consumer.input[i] = node.input[0]
            model.graph.node.remove(node)
            self.notes.append(f"removed {_label(node)} (no effect at inference)")
            return model, True  # one at a time: consumers' lists changed
        return model, False

    @staticmethod
    def _is_identity(model: ModelWrapper, node: onnx.NodeProto) -> bool:
        if node.op_type in IDENTITY_OPS:
            return True
        if node.op_type in ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Expand"):  # Expand: to a batch of 1
            a, b = model.get_tensor_shape(node.input[0]), model.get_tensor_shape(node.output[0])
            return a is not None and b is not None and list(a) == list(b)
        return False


class InferShapesPass:
    """Shapes for every tensor (needed by the passes that read them); reports no rewrite."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        return model.transform(InferShapes()), False


def default_passes() -> list[Pass]:
    return [InferShapesPass(), FoldShapeOps(), FoldConstantSubgraphs(), GatherQuantisedTable(), BatchFreeReshape(),
            RemoveIdentityOps(), SubPixelConvTranspose()]


def late_passes() -> list[Pass]:
    """Passes that need the cleaned graph (weight Transposes folded into the quantised initializers)."""
    return [SplitPackedProjection()]


def normalise(model: ModelWrapper, passes: list[Pass] | None = None, rounds: int = 8) -> tuple[ModelWrapper, list[str]]:
    """Run the passes until none changes the graph (at most `rounds` times); returns the model and the rewrites."""
    passes = passes if passes is not None else default_passes()
    for _ in range(rounds):
        changed = False
        for p in passes:
            model, c = p.apply(model)
            changed |= c
        if not changed:
            break
    return model, [note for p in passes for note in p.notes]


def _attr_int(node: onnx.NodeProto, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(helper.get_attribute_value(a))
    return default


def _graph_batch(model: ModelWrapper) -> int:
    shape = model.get_tensor_shape(model.graph.input[0].name)
    return int(shape[0]) if shape else 1
