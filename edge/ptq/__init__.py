"""Post-training quantisation of float models (plain PyTorch, torchvision, Hugging Face, float ONNX) with Brevitas'
graph PTQ, to QONNX that `edge build`, `edge export`, `edge compress` and `edge inspect` take as it is."""

from edge.ptq.api import quantize
from edge.ptq.flow import PtqModel, ptq, sqnr_db
from edge.ptq.recipe import Recipe, board_recipe, make_recipe, parse_bits, parse_method
from edge.ptq.source import Logits, load_float_model

__all__ = ["Logits", "PtqModel", "Recipe", "board_recipe", "load_float_model", "make_recipe", "parse_bits",
           "parse_method", "ptq", "quantize", "sqnr_db"]
