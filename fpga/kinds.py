"""One place per IR layer kind: every concern (integer executor, resource model, HLS kernel, RTL kernel, export
mappings) keeps a `KindTable` of one function per kind, and `describe` finds them all from the kind's name.

A concern that cannot take a kind says so with `refuse(kind, why)`: the reason is the user's error message and the
test that checks every kind against every table accepts it as an answer (never a silent gap).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fpga.ir import Node
from frontend.errors import EdgeError

F = TypeVar("F", bound=Callable[..., Any])

# every table created, by concern name ("execute", "resources", "hls", "rtl", "tflite", ...)
TABLES: dict[str, KindTable] = {}


@dataclass(frozen=True)
class Refusal:
    """A concern that has no implementation for a kind, and why (shown to the user as it is)."""

    why: str


class KindTable(Generic[F]):
    """One function per IR node class for one concern, found by the node's class instead of an isinstance chain."""

    def __init__(self, concern: str) -> None:
        if concern in TABLES:
            raise ValueError(f"a kind table named {concern!r} exists already")
        self.concern = concern
        self._entries: dict[type[Node], F | Refusal] = {}
        TABLES[concern] = self

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
        return self._entries.get(kind)

    def supports(self, kind: type[Node]) -> bool:
        return callable(self._entries.get(kind))

    def __call__(self, node: Node) -> F:
        """The function for `node`'s kind; a one-line EdgeError (the recorded reason) when the concern refuses it."""
        found = self._entries.get(type(node))
        if found is None:
            raise TypeError(f"{self.concern}: no entry for {type(node).__name__}")
        if isinstance(found, Refusal):
            raise EdgeError(f"layer '{node.name}' ({type(node).__name__}): {found.why}")
        return found


def ir_kinds() -> list[type[Node]]:
    """Every concrete layer kind of the IR (the subclasses of Node defined in fpga/ir.py)."""
    import fpga.ir as ir

    return [c for c in vars(ir).values() if isinstance(c, type) and issubclass(c, Node) and c is not Node
            and c.__module__ == ir.__name__]


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
