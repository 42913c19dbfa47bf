"""What to quantise to: bit widths, calibration method and PTQ steps, with defaults from the target board (what its
FPGA dataflow or its edge runtime executes)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from frontend.errors import EdgeError

CALIBRATIONS = ("minmax", "percentile", "mse")
STEPS = ("equalize", "gptq", "bias")  # applied in this order around calibration (equalize before it)
DEFAULT_METHOD = "percentile+bias"
PERCENTILE = 99.99


@dataclass(frozen=True)
class Recipe:
    """A PTQ configuration. `wbits` is (lo, hi): lo < hi asks for mixed precision from a sensitivity pass."""

    wbits: tuple[int, int] = (8, 8)
    abits: int = 8
    calibration: str = "percentile"
    steps: tuple[str, ...] = ("bias",)
    first_last_bits: int = 8
    # every activation signed: what TensorRT executes (symmetric int8), and what lets int8 runtimes add a ReLU output
    # and a signed branch of a residual exactly (one int8 tensor cannot hold both 0..255 and -128..127)
    signed_only: bool = True
    target: str = "any"

    @property
    def method(self) -> str:
        return "+".join((self.calibration, *self.steps))

    @property
    def mixed(self) -> bool:
        return self.wbits[0] < self.wbits[1]

    def as_dict(self) -> dict[str, Any]:
        lo, hi = self.wbits
        return {"wbits": hi if lo == hi else f"{lo}-{hi}", "abits": self.abits, "method": self.method,
                "first_last_bits": self.first_last_bits, "signed_only": self.signed_only, "target": self.target}


def parse_bits(text: str | int, what: str) -> tuple[int, int]:
    """'8' -> (8, 8); '4-8' -> (4, 8); each width from 2 to 8."""
    raw = str(text).strip()
    parts = raw.split("-")
    try:
        lo, hi = (int(parts[0]), int(parts[-1])) if len(parts) <= 2 else (0, 0)
    except ValueError:
        lo = hi = 0
    if not (2 <= lo <= hi <= 8):
        raise EdgeError(f"{what} {raw!r}: give a width from 2 to 8, or a range such as 4-8")
    return lo, hi


def parse_method(text: str) -> tuple[str, tuple[str, ...]]:
    """'mse+equalize+gptq+bias' -> ('mse', ('equalize', 'gptq', 'bias')): a calibration, then optional steps."""
    parts = [p.strip().lower() for p in text.split("+") if p.strip()]
    if not parts or parts[0] not in CALIBRATIONS:
        raise EdgeError(f"--method {text!r}: start with a calibration ({', '.join(CALIBRATIONS)}), then add steps "
                        f"with + ({', '.join(STEPS)}), e.g. mse+equalize+gptq+bias")
    unknown = [p for p in parts[1:] if p not in STEPS]
    if unknown:
        raise EdgeError(f"--method {text!r}: unknown step {unknown[0]!r}; steps are {', '.join(STEPS)}")
    return parts[0], tuple(s for s in STEPS if s in parts[1:])


def board_recipe(board: Any | None) -> Recipe:
    """Defaults for a board: signed int8 for edge runtimes; for an FPGA's dataflow, per-layer 4-8-bit weights and
    unsigned ReLU outputs (a full 8 bits where int8 runtimes would lose one to the sign)."""
    from boards.schema import FpgaBoard

    if board is None:
        return Recipe()
    if isinstance(board, FpgaBoard):
        # measured (bench/ptq_methods.py): PTQ to 4-bit activations loses 25+ points on digits; 4-bit weights with
        # mse+bias lose none, so weights go narrow (per layer, by sensitivity) and activations stay at 8 bits
        return Recipe(wbits=(4, 8), abits=8, calibration="mse", steps=("bias",), signed_only=False,
                      target=f"fpga:{board.name}")
    return Recipe(target=f"{getattr(board, 'runtime', 'edge')}:{board.name}")


def make_recipe(board: Any | None, wbits: str | None, abits: int | None, method: str | None) -> Recipe:
    """The board's defaults with the user's explicit choices on top."""
    recipe = board_recipe(board)
    if wbits is not None:
        recipe = replace(recipe, wbits=parse_bits(wbits, "--wbits"))
    if abits is not None:
        if not 2 <= abits <= 8:
            raise EdgeError(f"--abits {abits}: give a width from 2 to 8")
        recipe = replace(recipe, abits=abits)
    if method is not None:
        cal, steps = parse_method(method)
        recipe = replace(recipe, calibration=cal, steps=steps)
    return recipe
