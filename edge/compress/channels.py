"""Structured channel pruning of any Brevitas model.

Which channels must be removed together is read from the model's own QONNX export: every Conv/Gemm/MatMul output
opens a channel space; element-wise ops, BatchNorm, quantisers and pools carry it on; a residual Add merges the
spaces of its inputs; Concat lays spaces side by side; Flatten expands each channel into its H*W features; a
depthwise conv shares its input's space. Export tensors are mapped back to the PyTorch modules by parameter name (or,
failing that, by value). Removing a channel slices the producing layers' weights and biases, the BatchNorms, the
depthwise convs and the consumers' input weights, and re-initialises the Brevitas weight quantisers for the new
shapes.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from edge.compress.bits import reinit_proxy
from frontend.errors import EdgeError

# ops that keep every channel where it is (one data input; constants, if any, must be per-tensor)
CHANNELWISE = {"Relu", "Quant", "BipolarQuant", "Trunc", "MaxPool", "AveragePool", "GlobalAveragePool",
               "GlobalMaxPool", "Identity", "Clip", "Sigmoid", "Tanh", "LeakyRelu", "Mul", "Div", "Sub", "Pad",
               "MultiThreshold", "Dropout"}


@dataclass
class Segment:
    """A run of a tensor's axis that holds one channel space: entries start + c * repeat + p, p < repeat."""

    space: int
    start: int
    channels: int
    repeat: int = 1


@dataclass
class ChannelGroup:
    """Channel spaces that must keep the same channels (merged by residual adds), and the modules they touch."""

    id: int
    channels: int
    producers: list[str] = field(default_factory=list)  # weight axis 0 (+ bias)
    norms: list[str] = field(default_factory=list)  # BatchNorms
    depthwise: list[str] = field(default_factory=list)  # depthwise convs (axis 0, groups)
    prunable: bool = True
    reason: str = ""


@dataclass
class ChannelGraph:
    """The channel groups of a model and, per consumer module, which segments its input axis holds."""

    groups: list[ChannelGroup]
    consumers: dict[str, list[Segment]]
    space_group: dict[int, int]

    def group(self, gid: int) -> ChannelGroup:
        return self.groups[gid]


class _UnionFind:
    def __init__(self) -> None:
        self.parent: list[int] = []

    def add(self) -> int:
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def find(self, a: int) -> int:
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def export_for_analysis(model: nn.Module, input_shape: tuple[int, ...]) -> onnx.ModelProto:
    """The model's QONNX graph with shapes (TorchScript exporter: initializers keep the parameter names)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    from edge.train import export_qonnx_file

    was_training = model.training
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        export_qonnx_file(model, input_shape, path, {})
        proto = ModelWrapper(str(path)).transform(InferShapes()).model
    model.train(was_training)
    return proto


def _module_of_param(model: nn.Module) -> tuple[dict[str, str], dict[tuple, str]]:
    by_name, by_value = {}, {}
    for mname, module in model.named_modules():
        for pname, p in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
            if pname not in ("weight", "running_mean"):
                continue
            by_name[f"{mname}.{pname}" if mname else pname] = mname
            arr = p.detach().cpu().numpy().astype(np.float32)
            by_value[(arr.shape, arr.tobytes())] = mname
    return by_name, by_value


def analyse_channels(model: nn.Module, input_shape: tuple[int, ...]) -> ChannelGraph:
    """Channel groups of `model` (per-sample `input_shape`), from its QONNX export."""
    proto = export_for_analysis(model, input_shape)
    g = proto.graph
    inits = {i.name: i for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
              for vi in list(g.value_info) + list(g.input) + list(g.output)}
    by_name, by_value = _module_of_param(model)

    def const(name: str) -> np.ndarray | None:
        if name in inits:
            return numpy_helper.to_array(inits[name])
        node = producer.get(name)
        if node is not None and node.op_type == "Constant":
            return numpy_helper.to_array(node.attribute[0].t)
        return None

    def weight_source(name: str) -> str | None:
        """The initializer a weight input comes from (through its Quant node)."""
        while name not in inits:
            node = producer.get(name)
            if node is None or node.op_type not in ("Quant", "BipolarQuant", "Identity", "Transpose"):
                return None
            name = node.input[0]
        return name

    def module_for(init_name: str) -> str:
        if init_name in by_name:
            return by_name[init_name]
        arr = numpy_helper.to_array(inits[init_name]).astype(np.float32)
        for cand in (arr, arr.T if arr.ndim == 2 else None):
            if cand is not None and (cand.shape, np.ascontiguousarray(cand).tobytes()) in by_value:
                return by_value[(cand.shape, np.ascontiguousarray(cand).tobytes())]
        raise EdgeError(f"channel analysis: the export's weight {init_name} matches no parameter of the model")

    uf = _UnionFind()
    space_len: list[int] = []
    frozen: dict[int, str] = {}
    layout: dict[str, list[Segment] | None] = {}  # tensor -> channel layout along axis 1 (None: not channels)
    producers: dict[int, list[str]] = {}
    norms: dict[int, list[str]] = {}
    depthwise: dict[int, list[str]] = {}
    consumers: dict[str, list[Segment]] = {}

    def new_space(n: int) -> int:
        s = uf.add()
        space_len.append(n)
        return s

    def freeze(segs: list[Segment] | None, why: str) -> None:
        for seg in segs or []:
            frozen.setdefault(seg.space, why)

    inp = g.input[0].name
    in_shape = shapes.get(inp, [])
    if len(in_shape) >= 2:
        s = new_space(in_shape[1])
        frozen[s] = "the model input"
        layout[inp] = [Segment(s, 0, in_shape[1])]

    for node in g.node:
        op = node.op_type
        data = [i for i in node.input if i and i in layout]
        segs = layout.get(node.input[0]) if node.input and node.input[0] in layout else None
        out = node.output[0] if node.output else None
        if op in ("Conv", "Gemm", "MatMul"):
            wsrc = weight_source(node.input[1]) if len(node.input) > 1 else None
            if wsrc is None or segs is None:
                for i in data:
                    freeze(layout[i], f"{node.name or op}: weights not from a parameter")
                if out:
                    layout[out] = None
                continue
            mname = module_for(wsrc)
            w_shape = shapes.get(node.input[1]) or list(numpy_helper.to_array(inits[wsrc]).shape)  # as the op sees it
            if op == "Conv":
                group = next((a.i for a in node.attribute if a.name == "group"), 1)
                c_in, c_out = sum(sg.channels * sg.repeat for sg in segs), w_shape[0]
                if group == 1:
                    consumers[mname] = segs
                    s = new_space(c_out)
                    producers.setdefault(s, []).append(mname)
                    layout[out] = [Segment(s, 0, c_out)]
                elif group == c_in == c_out and len(segs) == 1 and segs[0].repeat == 1:
                    depthwise.setdefault(segs[0].space, []).append(mname)
                    layout[out] = [Segment(segs[0].space, 0, c_out)]
                else:
                    freeze(segs, f"{mname}: grouped convolution")
                    s = new_space(c_out)
                    frozen[s] = f"{mname}: grouped convolution"
                    layout[out] = [Segment(s, 0, c_out)]
            else:
                trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
                c_out = w_shape[0] if (op == "Gemm" and trans_b) else w_shape[1]
                consumers[mname] = segs
                s = new_space(c_out)
                producers.setdefault(s, []).append(mname)
                layout[out] = [Segment(s, 0, c_out)]
                if op == "Gemm" and len(node.input) > 2 and node.input[2] not in inits:
                    frozen[s] = f"{mname}: bias not a parameter"
        elif op == "BatchNormalization":
            if segs is None:
                layout[out] = None
                continue
            norm = module_for(node.input[3]) if node.input[3] in inits else None
            if norm is None or len(segs) != 1:
                freeze(segs, f"{node.name}: BatchNorm not mapped")
            else:
                norms.setdefault(segs[0].space, []).append(norm)
            layout[out] = segs
        elif op == "Add":
            ins = [layout.get(i) for i in node.input]
            if all(x is not None for x in ins):
                a, b = ins
                if len(a) == len(b) and all(sa.channels == sb.channels and sa.repeat == sb.repeat
                                            for sa, sb in zip(a, b, strict=True)):
                    for sa, sb in zip(a, b, strict=True):
                        uf.union(sa.space, sb.space)
                    layout[out] = a
                else:
                    freeze(a, "an Add of differently laid-out tensors")
                    freeze(b, "an Add of differently laid-out tensors")
                    layout[out] = a
            else:
                # x + constant: fine if the constant is per-tensor
                known = next((x for x in ins if x is not None), None)
                c = next((const(i) for i in node.input if const(i) is not None), None)
                if c is not None and c.size > 1:
                    freeze(known, f"{node.name}: per-channel constant")
                layout[out] = known
        elif op == "Concat":
            axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
            ins = [layout.get(i) for i in node.input]
            if axis == 1 and all(x is not None for x in ins):
                merged, offset = [], 0
                for x in ins:
                    for sg in x:
                        merged.append(Segment(sg.space, offset + sg.start, sg.channels, sg.repeat))
                    offset += sum(sg.channels * sg.repeat for sg in x)
                layout[out] = merged
            else:
                for x in ins:
                    freeze(x, f"{node.name}: Concat not along channels")
                layout[out] = None
        elif op in ("Flatten", "Reshape"):
            shp = shapes.get(node.input[0], [])
            if segs is not None and len(shp) == 4:
                hw = shp[2] * shp[3]
                layout[out] = [Segment(sg.space, sg.start * hw, sg.channels, sg.repeat * hw) for sg in segs]
            elif segs is not None and len(shp) == 2 and len(shapes.get(out, [])) == 2:
                layout[out] = segs
            else:
                freeze(segs, f"{node.name or op}: reshape of channels")
                layout[out] = None
        elif op in CHANNELWISE:
            for i in node.input[1:]:
                c = const(i)
                if c is not None and c.size > 1 and op != "Pad":
                    freeze(segs, f"{node.name or op}: per-channel constant")
            if out:
                layout[out] = segs
        else:
            for i in data:
                freeze(layout[i], f"{node.name or op}: {op} is not analysed")
            for o in node.output:
                layout[o] = None
    for o in g.output:
        freeze(layout.get(o.name), "the model output")

    roots: dict[int, int] = {}
    groups: list[ChannelGroup] = []
    space_group: dict[int, int] = {}
    for s in range(len(space_len)):
        r = uf.find(s)
        if r not in roots:
            roots[r] = len(groups)
            groups.append(ChannelGroup(id=len(groups), channels=space_len[r]))
        grp = groups[roots[r]]
        space_group[s] = grp.id
        grp.producers += producers.get(s, [])
        grp.norms += norms.get(s, [])
        grp.depthwise += depthwise.get(s, [])
        if s in frozen and grp.prunable:
            grp.prunable, grp.reason = False, frozen[s]
        if space_len[s] != grp.channels:
            grp.prunable, grp.reason = False, "merged spaces of different sizes"
    for grp in groups:
        if grp.prunable and not grp.producers:
            grp.prunable, grp.reason = False, "no producing layer"
    return ChannelGraph(groups=groups, consumers=consumers, space_group=space_group)


def channel_importance(model: nn.Module, group: ChannelGroup, criterion: str = "l1") -> np.ndarray:
    """Per-channel importance of a group: the L1 or L2 norm of the producing weights, or the BatchNorm |gamma|."""
    modules = dict(model.named_modules())
    score = np.zeros(group.channels)
    if criterion == "bn":
        if not group.norms:
            raise EdgeError(f"channel group {group.id} has no BatchNorm; use --criterion l1 or l2")
        for name in group.norms:
            score += np.abs(modules[name].weight.detach().cpu().numpy())
        return score
    if criterion not in ("l1", "l2"):
        raise EdgeError(f"unknown pruning criterion {criterion!r} (l1, l2, bn)")
    for name in group.producers + group.depthwise:
        w = modules[name].weight.detach().cpu().numpy().reshape(group.channels, -1)
        score += np.abs(w).sum(1) if criterion == "l1" else np.sqrt((w**2).sum(1))
    return score


def _slice_param(module: nn.Module, name: str, axis: int, idx: torch.Tensor) -> None:
    p = getattr(module, name, None)
    if p is None:
        return
    new = p.detach().index_select(axis, idx).clone()
    if isinstance(p, nn.Parameter):
        setattr(module, name, nn.Parameter(new, requires_grad=p.requires_grad))
    else:
        setattr(module, name, new)


def _set(module: nn.Module, **attrs: int) -> None:
    """Update shape attributes a layer has as plain attributes (Brevitas derives some as read-only properties)."""
    for name, value in attrs.items():
        if name in vars(module):
            setattr(module, name, value)


def _reinit_quant(module: nn.Module) -> None:
    for proxy in ("weight_quant", "bias_quant"):
        q = getattr(module, proxy, None)
        if q is not None and hasattr(q, "init_tensor_quant"):
            reinit_proxy(q)


def prune_channels(model: nn.Module, graph: ChannelGraph, keep: dict[int, np.ndarray]) -> nn.Module:
    """Keep only channels keep[group id] (sorted indices) of each listed group; in place, returns the model."""
    modules = dict(model.named_modules())
    kept: dict[int, np.ndarray] = {}
    for gid, idx in keep.items():
        grp = graph.group(gid)
        if not grp.prunable:
            raise EdgeError(f"channel group {gid} cannot be pruned: {grp.reason}")
        idx = np.unique(np.asarray(idx, np.int64))
        if len(idx) == 0 or idx[0] < 0 or idx[-1] >= grp.channels:
            raise EdgeError(f"channel group {gid}: keep between 1 and {grp.channels} channels")
        kept[gid] = idx
    with torch.no_grad():
        for gid, idx in kept.items():
            grp = graph.group(gid)
            t = torch.from_numpy(idx)
            for name in grp.producers:
                m = modules[name]
                _slice_param(m, "weight", 0, t)
                _slice_param(m, "bias", 0, t)
                _set(m, out_channels=len(idx), out_features=len(idx))
            for name in grp.norms:
                m = modules[name]
                for p in ("weight", "bias", "running_mean", "running_var"):
                    _slice_param(m, p, 0, t)
                _set(m, num_features=len(idx))
            for name in grp.depthwise:
                m = modules[name]
                _slice_param(m, "weight", 0, t)
                _slice_param(m, "bias", 0, t)
                _set(m, in_channels=len(idx), out_channels=len(idx), groups=len(idx))
        for name, segs in graph.consumers.items():
            if not any(graph.space_group[sg.space] in kept for sg in segs):
                continue
            positions: list[int] = []
            for sg in segs:
                chans = kept.get(graph.space_group[sg.space], np.arange(sg.channels))
                for c in chans:
                    base = sg.start + int(c) * sg.repeat
                    positions.extend(range(base, base + sg.repeat))
            m = modules[name]
            _slice_param(m, "weight", 1, torch.tensor(positions, dtype=torch.int64))
            _set(m, in_channels=len(positions), in_features=len(positions))
        for name in {n for gid in kept for n in graph.group(gid).producers + graph.group(gid).depthwise} | {
                n for n, segs in graph.consumers.items() if any(graph.space_group[s.space] in kept for s in segs)}:
            _reinit_quant(modules[name])
    return model


def prune_by_ratio(model: nn.Module, input_shape: tuple[int, ...], ratio: float | dict[int, float],
                   criterion: str = "l1") -> tuple[nn.Module, dict[int, int]]:
    """Remove the least important `ratio` of every prunable group's channels (or per group id); returns the
    model (in place) and the channel count kept per group."""
    graph = analyse_channels(model, input_shape)
    keep: dict[int, np.ndarray] = {}
    for grp in graph.groups:
        r = ratio.get(grp.id, 0.0) if isinstance(ratio, dict) else ratio
        if not grp.prunable or r <= 0:
            continue
        n = max(1, int(round(grp.channels * (1 - r))))
        order = np.argsort(-channel_importance(model, grp, criterion), kind="stable")
        keep[grp.id] = np.sort(order[:n])
    prune_channels(model, graph, keep)
    return model, {gid: len(idx) for gid, idx in keep.items()}
