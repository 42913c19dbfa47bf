"""One place per IR layer kind: every concern (integer executor, resource model, HLS kernel, RTL kernel, export
mappings) keeps a `KindTable` of one function per kind, and `describe` finds them all from the kind's name.

A concern that cannot take a kind says so with `refuse(kind, why)`: the reason is the user's error message and the
test that checks every kind against every table accepts it as an answer (never a silent gap).

A kind can also live in a module of its own in this package (`fpga/kinds/<kind>.py`): its IR node, lowering rule,
integer executor, estimates, HLS template arguments, RTL parameters and export mapping side by side, as functions
with the names in `KIND_MODULE_ENTRIES`. Each concern's table adopts them the first time it is read, so the module
imports nothing above fpga/ and no concern imports it by name: a new kind is this module, its C++ header and its
Verilog module.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Generic, TypeVar

from fpga.datatypes import IntType
from fpga.ir import NODE_TYPES, Node
from frontend.errors import EdgeError

F = TypeVar("F", bound=Callable[..., Any])

# every table created, by concern name ("execute", "resources", "hls", "rtl", "tflite", ...)
TABLES: dict[str, KindTable] = {}


@dataclass(frozen=True)
class Refusal:
    """A concern that has no implementation for a kind, and why (shown to the user as it is)."""

    why: str


class KindTable(Generic[F]):
    """One function per IR node class for one concern, found by the node's class instead of an isinstance chain;
    `adopt` names the function a kind module provides for this concern (taken in on first use)."""

    def __init__(self, concern: str, adopt: str | None = None) -> None:
        if concern in TABLES:
            raise ValueError(f"a kind table named {concern!r} exists already")
        self.concern = concern
        self._entries: dict[type[Node], F | Refusal] = {}
        self._adopt = adopt
        TABLES[concern] = self

    def _adopted(self) -> dict[type[Node], F | Refusal]:
        """The entries, after taking in the kind modules' functions for this concern (once)."""
        if self._adopt is not None:
            name, self._adopt = self._adopt, None
            for mod in kind_modules():
                kind: type[Node] = mod.KIND
                fn = getattr(mod, name, None)
                if callable(fn):
                    self.register(kind)(fn)
                elif name in getattr(mod, "REFUSE", {}):
                    self.refuse(kind, mod.REFUSE[name])
        return self._entries

    def register(self, *kinds: type[Node]) -> Callable[[F], F]:
        """Decorator: `fn` implements this concern for each of `kinds`."""
        def add(fn: F) -> F:
            for kind in kinds:
                if kind in self._entries:
                    raise ValueError(f"{self.concern}: {kind.__name__} registered twice")
                self._entries[kind] = fn
            return fn
        return add

    def refuse(self, kind: type[Node], why: str) -> None:
        """Record that this concern does not take `kind` yet, with the sentence the user sees."""
        self._entries[kind] = Refusal(why)

    def entry(self, kind: type[Node]) -> F | Refusal | None:
        return self._adopted().get(kind)

    def supports(self, kind: type[Node]) -> bool:
        return callable(self._adopted().get(kind))

    def __call__(self, node: Node) -> F:
        """The function for `node`'s kind; a one-line EdgeError (the recorded reason) when the concern refuses it."""
        found = self._adopted().get(type(node))
        if found is None:
            raise TypeError(f"{self.concern}: no entry for {type(node).__name__}")
        if isinstance(found, Refusal):
            raise EdgeError(f"layer '{node.name}' ({type(node).__name__}): {found.why}")
        return found


# what a kind module defines, by concern (the table that adopts it); `KIND` and `RULES` are required, the rest
# optional: a concern the module leaves out is missing (a test failure) unless `REFUSE` gives the reason
KIND_MODULE_ENTRIES = {
    "execute": "the integer executor: (node, [inputs (n, ...)]) -> [outputs]",
    "estimate": "the resource model: (node, uram_available) -> (Resources, notes)",
    "latency": "the first-frame timing: node -> Timing",
    "hls_kernel": "the HLS kernel: (node, graph, out_type) -> HlsCall",
    "rtl_kernel": "the RTL kernel: node -> RtlCall",
    "tflite": "the TFLite / int8 ONNX mapping: (writer, node) -> None",
}


@dataclass(frozen=True)
class HlsCall:
    """How the HLS top instantiates a kind's kernel: `template<args...>` from `header`, its constructor taking the
    frame count (kinds with parameter arrays keep their own mapping in hls/codegen.py)."""

    header: str  # under hls/include, e.g. "edge/upsample.hpp"
    template: str  # e.g. "edge::Upsample"
    args: tuple[int | str, ...]


@dataclass(frozen=True)
class RtlCall:
    """A kind's Verilog module (rtl/verilog/<module>.sv), its parameters and the elements of its stream words, one
    type in and out (the RTL backend derives the stream formats from them)."""

    module: str
    params: dict[str, int | str]
    elems: int
    dtype: IntType
    submodules: tuple[str, ...] = field(default=())


_KIND_MODULES: list[ModuleType] | None = None


def kind_modules() -> list[ModuleType]:
    """The kind modules of this package, imported on first use (each defines KIND, RULES and its concerns)."""
    global _KIND_MODULES
    if _KIND_MODULES is None:
        mods = [importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__)
                if not m.name.startswith("_")]
        for mod in mods:
            if not (isinstance(getattr(mod, "KIND", None), type) and issubclass(mod.KIND, Node)
                    and hasattr(mod, "RULES")):
                raise TypeError(f"{mod.__name__}: a kind module defines KIND (a Node subclass) and RULES")
        _KIND_MODULES = mods
    return _KIND_MODULES


def node_types() -> dict[str, type[Node]]:
    """Every IR kind by its `kind` name: fpga/ir.py's and the kind modules' (for reading a saved graph)."""
    return {**NODE_TYPES, **{mod.KIND.kind: mod.KIND for mod in kind_modules()}}


def ir_kinds() -> list[type[Node]]:
    """Every concrete layer kind of the IR: the subclasses of Node in fpga/ir.py and each kind module's KIND."""
    import fpga.ir as ir

    own = [c for c in vars(ir).values() if isinstance(c, type) and issubclass(c, Node) and c is not Node
           and c.__module__ == ir.__name__]
    return own + [mod.KIND for mod in kind_modules()]


def describe(kind: str) -> dict[str, str]:
    """Where each concern implements `kind` (module.function) or why it refuses it, for the tables loaded so far."""
    found = next((k for k in ir_kinds() if k.__name__ == kind), None)
    if found is None:
        raise EdgeError(f"no IR kind named {kind!r}; kinds: {', '.join(sorted(k.__name__ for k in ir_kinds()))}")
    out = {}
    for name, table in sorted(TABLES.items()):
        e = table.entry(found)
        out[name] = ("missing" if e is None else f"refused: {e.why}" if isinstance(e, Refusal)
                     else f"{e.__module__}.{e.__qualname__}")
    return out
