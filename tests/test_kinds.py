"""The per-kind registry: every IR layer kind has an answer (an implementation or a stated refusal) in every
concern's table, the lowering's rules name the kinds they make, and `edge inspect` reads its verdicts from them."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

import edge.export.tflite  # noqa: F401  (registers the TFLite/int8-ONNX table)
import fpga.execute  # noqa: F401  (registers the integer executor)
import fpga.latency  # noqa: F401  (registers the latency model)
import fpga.resources  # noqa: F401  (registers the resource model)
import hls.codegen  # noqa: F401  (registers the HLS kernels)
import rtl.kernels  # noqa: F401  (registers the RTL kernels)
from edge.export.tflite import TFLITE
from fpga.ir import LabelSelect, LayerNorm, Softmax, StreamingDataWidthConverter
from fpga.kinds import TABLES, KindTable, Refusal, describe, ir_kinds, kind_modules
from fpga.lower import OTHER_KINDS, lowered_ops, rules
from frontend.errors import EdgeError

CONCERNS = ("execute", "resources", "latency", "hls", "rtl", "tflite")
# concerns every kind must implement: the chain to a C-simulated design never refuses a kind it lowers
REQUIRED = ("execute", "resources", "latency", "hls")


def test_every_kind_has_an_answer_in_every_table() -> None:
    kinds = ir_kinds()
    assert len(kinds) >= 19, [k.__name__ for k in kinds]
    assert set(CONCERNS) <= set(TABLES), sorted(TABLES)
    gaps = [(name, k.__name__) for name in CONCERNS for k in kinds if TABLES[name].entry(k) is None]
    assert not gaps, gaps
    refused = [(name, k.__name__) for name in REQUIRED for k in kinds if not TABLES[name].supports(k)]
    assert not refused, refused


def test_every_kind_is_made_somewhere() -> None:
    made = {k for r in rules() for k in r.kinds} | set(OTHER_KINDS) | {StreamingDataWidthConverter}
    assert set(ir_kinds()) == made, {k.__name__ for k in set(ir_kinds()) ^ made}
    assert {"Conv", "MatMul", "Softmax", "LayerNormalization", "DepthToSpace", "Quant"} <= lowered_ops()
    assert not {"Pad", "ArgMax", "TopK"} & lowered_ops()


def test_describe_names_each_concern() -> None:
    d = describe("MatrixVectorUnit")
    assert set(CONCERNS) <= set(d) and all("." in d[c] for c in CONCERNS), d
    assert describe("LabelSelect")["tflite"].startswith("refused: ")
    with pytest.raises(EdgeError, match="no IR kind named 'Nope'"):
        describe("Nope")


def test_a_table_refuses_with_its_reason_and_rejects_duplicates() -> None:
    from fpga.ir import LabelSelect, MaxPool

    table: KindTable = KindTable("test-only")
    try:
        table.register(MaxPool)(lambda node: "ran")
        table.refuse(LabelSelect, "not here; use the other backend")
        with pytest.raises(ValueError, match="registered twice"):
            table.register(MaxPool)(lambda node: None)
        node = LabelSelect(name="ls", inputs=("a",), output="b", labels=10, k=1)
        with pytest.raises(EdgeError, match=r"layer 'ls' \(LabelSelect\): not here; use the other backend"):
            table(node)
        assert isinstance(table.entry(LabelSelect), Refusal) and table.supports(MaxPool)
    finally:
        del TABLES["test-only"]


def test_inspect_verdicts_agree_with_the_paths(trained, run_cli, tmp_path) -> None:
    """The vit: lowered by the FPGA path and mapped by the TFLite writer (Softmax, LayerNorm as float islands) —
    inspect says so from the same tables, and the commands do what inspect says; a top-k head is refused by
    both in the same words."""
    model = str(trained("vit", 4, 4, epochs=4) / "model.onnx")
    code, out, _ = run_cli("inspect", model, "--json")
    assert code == 0
    verdicts = {t["target"]: t for t in json.loads(out)["targets"]}
    assert verdicts["fpga"]["supported"], verdicts["fpga"]
    assert verdicts["tflite"]["supported"], verdicts["tflite"]
    code, _, err = run_cli("export", model, "--target", "tflite", "-o", str(tmp_path / "t"))
    assert code in (0, 1) and (tmp_path / "t" / "model.tflite").exists(), err
    assert TFLITE.supports(LayerNorm) and TFLITE.supports(Softmax) and not TFLITE.supports(LabelSelect)


PROJECT = ("edge", "frontend", "fpga", "hls", "rtl", "boards")


def _code_names(path: Path) -> tuple[set[str], set[str]]:
    """The identifiers and the string constants a Python file uses in code (comments and docstrings aside)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = {id(n.body[0].value) for n in ast.walk(tree) if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef)
            and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    names: set[str] = set()
    strings: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):  # (an attribute such as torch's nn.Upsample is someone else's)
            names.add(n.id)
        elif isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] in PROJECT:
            names.update(a.name for a in n.names)
        elif isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs:
            strings.add(n.value)
    return names, strings


def test_a_kind_module_is_one_of_three_files_that_name_the_kind() -> None:
    """A kind in fpga/kinds/ lives in three files: its module, its C++ header and its Verilog module. No other
    source of the project names its IR class, its C++ struct or its Verilog module, so adding a kind edits none."""
    root = Path(__file__).resolve().parents[1]
    modules = kind_modules()
    assert {m.__name__.rsplit(".", 1)[1] for m in modules} >= {"upsample", "depth_to_space", "token_select"}
    sources = [p for d in (*PROJECT, "scripts", "bench")
               for p in (root / d).rglob("*.py")]
    cpp = [*(root / "hls" / "include").rglob("*.hpp"), *(root / "hls" / "templates").glob("*.j2")]
    verilog = list((root / "rtl").rglob("*.sv")) + list((root / "rtl").rglob("*.svh"))
    for mod in modules:
        kind, own = mod.KIND, Path(mod.__file__).resolve()
        node = kind(name="n", inputs=("a",), output="b")
        hls, rtl = mod.hls_kernel(node, None, None), mod.rtl_kernel(node)
        struct, header = hls.template.split("::")[-1], root / "hls" / "include" / hls.header
        assert header.is_file() and re.search(rf"\bstruct {struct}\b", header.read_text()), hls
        sv = root / "rtl" / "verilog" / f"{rtl.module}.sv"
        assert sv.is_file() and re.search(rf"\bmodule {rtl.module}\b", sv.read_text()), rtl
        # the class by name (an ONNX op of the same name is a string: the front end's), the Verilog module by string
        named = [p.relative_to(root) for p in sources if p.resolve() != own
                 and (kind.__name__ in (found := _code_names(p))[0] or rtl.module in found[1])]
        assert not named, (kind.__name__, named)
        code = {p: re.sub(r"//[^\n]*|\{#.*?#\}", "", p.read_text(), flags=re.S) for p in cpp if p != header}
        assert not [p.name for p, text in code.items() if re.search(rf"\b{struct}\b", text)], struct
        assert not [p.name for p in verilog if p != sv and re.search(rf"\b{rtl.module}\b", p.read_text())], rtl
