"""edge.compress on zoo models and models we did not write: channel groups through BatchNorm, residual adds,
depthwise convs, concat and flatten; exact removal of dead channels; per-layer bits; low-rank; magnitude pruning;
distillation; every result scored by the fpga package's own folding and resource model."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from onnx import numpy_helper
from torch import nn

from boards import load_board
from edge.compress import (
    activation_layers,
    analyse_channels,
    distillation_loss,
    factorize,
    fine_tune,
    float_copy,
    hardware_score,
    magnitude_prune,
    max_useful_rank,
    prune_by_ratio,
    prune_channels,
    prune_iteratively,
    set_bit_widths,
    sparsity_report,
    train_teacher,
    weight_layers,
    wide_copy,
)
from edge.compress.channels import ChannelGraph, export_for_analysis
from edge.corpus import ConcatNet, randomise_batchnorm
from edge.data import Dataset
from edge.train import accuracy, logits
from edge.zoo import build_model
from frontend.errors import EdgeError

SHAPES = {"tfc": (64,), "cnv": (1, 8, 8), "resnet": (1, 8, 8), "dws": (1, 8, 8)}


def _models() -> list[tuple[str, nn.Module, tuple[int, ...]]]:
    out = []
    for name, shape in SHAPES.items():
        torch.manual_seed(0)
        out.append((name, build_model(name, (1, 8, 8), 10, 4, 4), shape))
    torch.manual_seed(0)
    out.append(("concat", ConcatNet(), (1, 8, 8)))
    for _, m, _ in out:
        randomise_batchnorm(m)
        m.eval()
    return out


def _kill(model: nn.Module, graph: ChannelGraph, gid: int, drop: np.ndarray) -> None:
    """Make channels `drop` of group gid contribute nothing: zero producing weights, BN shift, consumer columns."""
    mods = dict(model.named_modules())
    grp = graph.group(gid)
    with torch.no_grad():
        for p in grp.producers + grp.depthwise:
            mods[p].weight[drop] = 0
            if getattr(mods[p], "bias", None) is not None:
                mods[p].bias[drop] = 0
        for b in grp.norms:
            mods[b].running_mean[drop] = 0
            mods[b].bias[drop] = 0
        for name, segs in graph.consumers.items():
            for sg in segs:
                if graph.space_group[sg.space] == gid:
                    for c in drop:
                        start = sg.start + int(c) * sg.repeat
                        mods[name].weight[:, start:start + sg.repeat] = 0


@pytest.mark.parametrize("name, model, shape", _models(), ids=lambda v: v if isinstance(v, str) else "")
def test_removing_dead_channels_changes_nothing(name: str, model: nn.Module, shape: tuple[int, ...]) -> None:
    graph = analyse_channels(model, shape)
    prunable = [g for g in graph.groups if g.prunable]
    assert prunable, name
    # the input and the class outputs are never pruned
    assert not graph.groups[0].prunable and any(not g.prunable and g.reason == "the model output" for g in graph.groups)
    keep = {}
    for grp in prunable:
        drop = np.arange(grp.channels)[1::3]
        _kill(model, graph, grp.id, drop)
        keep[grp.id] = np.setdiff1d(np.arange(grp.channels), drop)
    x = torch.rand(16, *shape)
    before = logits(model, x).detach()
    prune_channels(model, graph, keep)
    model.eval()
    after = logits(model, x).detach()
    assert torch.allclose(before, after, atol=1e-5), float((before - after).abs().max())
    # the pruned model exports, and the export's weights have the kept widths
    inits = {i.name: numpy_helper.to_array(i) for i in export_for_analysis(model, shape).graph.initializer}
    for gid, idx in keep.items():
        for producer in graph.group(gid).producers:
            assert inits[f"{producer}.weight"].shape[0] == len(idx), (name, producer)


def test_channel_groups_follow_residuals_depthwise_and_concat() -> None:
    models = {n: (m, s) for n, m, s in _models()}
    resnet = analyse_channels(*models["resnet"])
    # a residual block's output conv shares its channels with the block input's producer
    merged = [g for g in resnet.groups if len(g.producers) == 2]
    assert merged and all(any(p.endswith("conv2") for p in g.producers) for g in merged)
    dws = analyse_channels(*models["dws"])
    assert any(g.depthwise and g.prunable for g in dws.groups)
    concat = analyse_channels(*models["concat"])
    fc = concat.consumers["fc"]
    assert [s.channels for s in fc] == [8, 4] and all(s.repeat == 16 for s in fc)  # concat, pool, flatten
    assert fc[1].start == 8 * 16


def test_brevitas_examples_cnv_prunes_and_still_lowers_for_the_fpga(tmp_path) -> None:
    """FINN's CNV-w1a1 from brevitas_examples (binary weights, TensorNorm head): its conv groups prune, and the
    pruned network still lowers and folds for pynq-z2."""
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    torch.manual_seed(0)
    model, _ = model_with_cfg("cnv_1w1a", pretrained=False)
    randomise_batchnorm(model)
    model.eval()
    shape = (3, 32, 32)
    graph = analyse_channels(model, shape)
    conv_groups = [g for g in graph.groups if g.prunable and g.norms]
    assert len(conv_groups) >= 6
    base = hardware_score(model, shape, load_board("pynq-z2"))
    prune_by_ratio(model, shape, {g.id: 0.5 for g in conv_groups})
    pruned = hardware_score(model, shape, load_board("pynq-z2"))
    assert pruned["resources"]["lut"] < base["resources"]["lut"] or pruned["fps"] > base["fps"]


def _ir_weight_bits(model: nn.Module, shape: tuple[int, ...], tmp_path) -> list[int]:
    from edge.train import export_qonnx_file
    from fpga.lower import lower
    from frontend.qonnx_io import load_model

    export_qonnx_file(model, shape, tmp_path / "m.onnx", {})
    return [n.w_dtype.bits for n in lower(load_model(tmp_path / "m.onnx")).compute_nodes()]


def test_prune_bits_lowrank_with_distillation_on_digits(digits: Dataset, tmp_path) -> None:
    """The techniques on a trained w4a4 MLP: each recovers accuracy with a short distilled fine-tune, and the
    hardware score moves the way it should."""
    shape = (64,)
    torch.manual_seed(0)
    base = build_model("tfc", (1, 8, 8), 10, 4, 4)
    base_acc = fine_tune(base, digits, shape, epochs=6)
    x_test = torch.from_numpy(digits.x_test.reshape(len(digits.x_test), -1))
    board = load_board("pynq-z2")
    base_hw = hardware_score(base, shape, board)

    pruned = copy.deepcopy(base)
    _, kept = prune_by_ratio(pruned, shape, 0.5, criterion="bn")
    assert sorted(kept.values()) == [32, 32, 32]
    log: list[dict] = []
    acc = fine_tune(pruned, digits, shape, epochs=3, teacher=base, log=log)
    assert acc >= base_acc - 0.05 and len(log) == 3 and log[0]["distilled"]
    hw = hardware_score(pruned, shape, board)
    assert hw["resources"]["lut"] < base_hw["resources"]["lut"]

    narrow = copy.deepcopy(base)
    hidden = list(weight_layers(narrow))[1:-1]
    acts = list(activation_layers(narrow))[1:]  # the 8-bit input quantiser stays
    set_bit_widths(narrow, weights={n: 2 for n in hidden}, activations={n: 2 for n in acts})
    assert [weight_layers(narrow)[n] for n in hidden] == [2, 2]
    assert fine_tune(narrow, digits, shape, epochs=3, teacher=base) >= base_acc - 0.08
    assert hardware_score(narrow, shape, board)["resources"]["lut"] < base_hw["resources"]["lut"]
    assert _ir_weight_bits(narrow, shape, tmp_path) == [4, 2, 2, 4]  # what the FPGA compiler sees

    low = copy.deepcopy(base)
    name = list(weight_layers(low))[1]  # 64x64: useful rank < 32
    assert max_useful_rank(dict(low.named_modules())[name]) == 31
    with pytest.raises(EdgeError, match="saves nothing"):
        factorize(copy.deepcopy(base), name, 32)
    factorize(low, name, 16)
    assert accuracy(low, x_test, digits.y_test) > 0.5  # the SVD start is close before any fine-tuning
    fine_tune(low, digits, shape, epochs=2, teacher=base)
    hardware_score(low, shape, board)  # two quantised layers with an 8-bit quantiser between: lowers and folds

    sparse = copy.deepcopy(base)
    masks = magnitude_prune(sparse, 0.6)
    fine_tune(sparse, digits, shape, epochs=1, masks=masks)
    assert all(v >= 0.6 for v in sparsity_report(sparse).values())


def test_teachers_and_iterative_pruning(digits: Dataset) -> None:
    """A float copy really computes in float (activations off the 4-bit grid) and leaves the original quantised; the
    w8a8 copy has 8-bit quantisers; iterative pruning reaches the asked channel counts in geometric steps."""
    shape = (64,)
    torch.manual_seed(0)
    base = build_model("tfc", (1, 8, 8), 10, 4, 4)
    base_acc = fine_tune(base, digits, shape, epochs=4)
    x = torch.from_numpy(digits.x_test[:64].reshape(64, -1))
    first_act = list(activation_layers(base))[1]

    def levels(model: nn.Module) -> int:
        seen = []
        act = dict(model.named_modules())[first_act]
        handle = act.register_forward_hook(lambda m, i, o: seen.append(torch.as_tensor(o.value if hasattr(o, "value")
                                                                                         else o)))
        model.eval()
        with torch.no_grad():
            out = model(x)
        handle.remove()
        assert isinstance(out, torch.Tensor)
        return len(torch.unique(seen[0]))

    teacher, acc = train_teacher("float", base, digits, shape, epochs=2)
    assert levels(base) <= 2**4 < levels(teacher) and acc > 0.5
    assert levels(float_copy(base)) > 2**4 and levels(base) <= 2**4  # the original keeps its quantisers
    assert train_teacher("none", base, digits, shape, epochs=1) == (None, None)
    assert train_teacher("baseline", base, digits, shape, epochs=1) == (base, pytest.approx(base_acc))
    with pytest.raises(EdgeError, match="unknown teacher"):
        train_teacher("huge", base, digits, shape, epochs=1)
    wide = wide_copy(base)
    assert set(weight_layers(wide).values()) == {8} and set(activation_layers(wide).values()) == {8}
    assert set(weight_layers(base).values()) == {4}
    assert levels(wide) > 2**4

    pruned = copy.deepcopy(base)
    log: list[dict] = []
    acc = prune_iteratively(pruned, digits, shape, 0.5, steps=2, epochs=1, teacher=teacher, log=log)
    groups = [g for g in analyse_channels(pruned, shape).groups if g.prunable]
    assert [g.channels for g in groups] == [32, 32, 32]
    assert [sorted(r["channels"].values()) for r in log] == [[45, 45, 45], [32, 32, 32]]
    assert acc >= base_acc - 0.1 and acc == log[-1]["accuracy"]
    with pytest.raises(EdgeError, match="ratio must be"):
        prune_iteratively(pruned, digits, shape, 1.0)


def test_distillation_loss_terms() -> None:
    torch.manual_seed(0)
    s, t, y = torch.randn(8, 10), torch.randn(8, 10), torch.randint(0, 10, (8,))
    assert torch.isclose(distillation_loss(s, t, y, 4.0, 0.0), F.cross_entropy(s, y))
    assert float(distillation_loss(s, s, y, 3.0, 1.0)) == pytest.approx(0.0, abs=1e-6)
    kl = F.kl_div(F.log_softmax(s / 2, 1), F.softmax(t / 2, 1), reduction="batchmean") * 4
    assert torch.isclose(distillation_loss(s, t, y, 2.0, 1.0), kl)


def test_pruning_refuses_what_it_cannot_do() -> None:
    model, shape = _models()[1][1:]
    graph = analyse_channels(model, shape)
    with pytest.raises(EdgeError, match="cannot be pruned"):
        prune_channels(model, graph, {0: np.array([0])})
    gid = next(g.id for g in graph.groups if g.prunable)
    with pytest.raises(EdgeError, match="keep between"):
        prune_channels(model, graph, {gid: np.array([], np.int64)})
    with pytest.raises(EdgeError, match="between 2 and 8"):
        set_bit_widths(model, weights={list(weight_layers(model))[0]: 9})
    with pytest.raises(EdgeError, match="no weight quantiser"):
        set_bit_widths(model, weights={"nope": 3})


def test_edge_compress_search_resumes_and_its_choice_builds_as_reported(tmp_path, run_cli) -> None:
    out = tmp_path / "cmp"
    args = ["compress", "--model", "tfc", "--epochs", "4", "--ft-epochs", "2", "--screen", "12", "--shortlist", "3",
            "--workers", "2", "-o", str(out), "--json"]
    code, stdout, err = run_cli(*args)
    assert code == 0, err
    result = json.loads(stdout)
    base, chosen = result["baseline"], result["chosen"]
    for rec in (base, chosen, *result["pareto"]):
        assert 0 <= rec["accuracy"] <= 1 and rec["fps"] > 0
        assert {"lut", "bram36", "dsp"} <= set(rec["resources"]) and "lut" in rec["utilisation"]
    assert chosen["accuracy"] >= base["accuracy"] - 0.01 - 1e-9
    assert {"wbits", "abits", "channels"} <= set(chosen["layers"][0])
    assert result["fine_tuned"] == 3 and result["screened"] == 12
    assert (out / "pareto.svg").read_text().count("<circle") == 4  # baseline + 3 fine-tuned
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 3 * 2 and all(row["distilled"] for row in log)
    # rerun (as after an interrupt): the baseline and the finished candidates are reused, not trained again
    stamps = {p: p.stat().st_mtime_ns for p in (out / "search").rglob("*.pt")}
    assert len(stamps) == 4
    code, stdout2, err2 = run_cli(*args)
    assert code == 0, err2
    assert {p: p.stat().st_mtime_ns for p in (out / "search").rglob("*.pt")} == stamps
    assert json.loads(stdout2)["chosen"] == chosen
    # edge build of the chosen model shows what compress reported
    code, stdout, err = run_cli("build", chosen["model"], "--board", "pynq-z2", "--util-cap", "0.8", "--no-sim",
                                "-o", str(tmp_path / "build"), "--json", "--verify-samples", "4")
    assert code == 0, err
    totals = json.loads(stdout)["totals"]
    assert totals["fps"] == pytest.approx(chosen["fps"]) and totals["resources"] == chosen["resources"]
    # another teacher: the baseline is reused, the candidates are fine-tuned again (distilled from a float copy)
    code, stdout3, err3 = run_cli(*args, "--teacher", "float")
    assert code == 0, err3
    assert json.loads(stdout3)["teacher"]["kind"] == "float" and (out / "search" / "teacher_float.pt").exists()
    base_pt = out / "search" / "baseline.pt"
    assert base_pt.stat().st_mtime_ns == stamps[base_pt]
    assert all(p.stat().st_mtime_ns != t for p, t in stamps.items() if p != base_pt)
    code, _, err = run_cli("compress", "--model", "cnv", "-o", str(out))  # a directory holding another search
    assert code == 2 and "holds a search with another epochs, model" in err and len(err.strip().splitlines()) == 1


BROKEN_MODEL = '''
def broken():
    raise ValueError("no")
'''


def test_edge_compress_on_a_model_file_with_its_checkpoint(tmp_path, run_cli, digits: Dataset) -> None:
    """A model we did not write (bench/plain_cnn.py: plain PyTorch idioms, reshape-flatten) from FILE.py:FACTORY
    with a trained state dict as the baseline; bad inputs are one-line errors."""
    from pathlib import Path

    from edge.compress.search import make_model

    (tmp_path / "net.py").write_text(BROKEN_MODEL)
    spec = f"{Path(__file__).resolve().parent.parent / 'bench' / 'plain_cnn.py'}:build"
    model = make_model(spec, digits)
    fine_tune(model, digits, (1, 8, 8), epochs=3)
    torch.save(model.state_dict(), tmp_path / "net.pt")
    acc = accuracy(model, torch.from_numpy(digits.x_test), digits.y_test)
    code, stdout, err = run_cli("compress", "--model", spec, "--checkpoint", str(tmp_path / "net.pt"), "--ft-epochs",
                                "1", "--screen", "6", "--shortlist", "2", "--workers", "1", "-o", str(tmp_path / "c"),
                                "--json")
    assert code == 0, err
    result = json.loads(stdout)
    assert result["baseline"]["accuracy"] == pytest.approx(acc)  # the checkpoint as given, not retrained
    assert result["fine_tuned"] == 2 and (tmp_path / "c" / "model.onnx").exists()
    torch.save({"fc.weight": torch.zeros(3)}, tmp_path / "other.pt")
    cases = [(["--model", f"{tmp_path / 'nope.py'}:build"], "no such model file"),
             (["--model", f"{tmp_path / 'net.py'}:missing"], "defines no callable"),
             (["--model", f"{tmp_path / 'net.py'}:broken"], "the factory raised ValueError"),
             (["--model", "tfc", "--checkpoint", str(tmp_path / "net.pt")], "does not match the model"),
             (["--model", spec, "--checkpoint", str(tmp_path / "other.pt")], "does not match the model"),
             (["--model", "nosuch"], "unknown model")]
    for args, words in cases:
        code, _, err = run_cli("compress", *args, "-o", str(tmp_path / "bad"))
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, (args, err)


def test_edge_compress_trials_on_a_local_ray_cluster(tmp_path, run_cli) -> None:
    """--ray ADDRESS against a Ray head started here (ray start --head): the candidates run as Ray Tune trials."""
    import shutil
    import socket
    import subprocess
    import sys
    from pathlib import Path

    ray_cli = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**__import__("os").environ, "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run([ray_cli, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
                    "--include-dashboard=false", "--disable-usage-stats"], check=True, capture_output=True, env=env,
                   timeout=180)
    try:
        out = tmp_path / "ray"
        code, stdout, err = run_cli("compress", "--model", "tfc", "--epochs", "3", "--ft-epochs", "1", "--screen", "6",
                                    "--shortlist", "2", "--ray", f"127.0.0.1:{port}", "-o", str(out), "--json")
        assert code == 0, err
        result = json.loads(stdout)
        assert result["fine_tuned"] == 2
        trials = list((out / "search" / "ray" / "compress").glob("*/result.json"))
        assert len(trials) == 2  # Ray Tune's own record of each trial
        assert all(json.loads(t.read_text().splitlines()[-1])["accuracy"] > 0 for t in trials)
    finally:
        subprocess.run([ray_cli, "stop", "--force"], capture_output=True, env=env, timeout=120)
    code, _, err = run_cli("compress", "--model", "tfc", "--epochs", "1", "--screen", "2", "--shortlist", "1",
                           "--ray", "127.0.0.1:1", "-o", str(tmp_path / "noray"))
    assert code == 2 and "--ray 127.0.0.1:1: cannot connect" in err, err
