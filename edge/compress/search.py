"""`edge compress`: a search over per-layer bit widths and channel counts of a zoo model, each candidate scored by
the fpga package's folding and resource model and, for a hardware-screened shortlist, by its accuracy after a
short distilled QAT fine-tune from the trained uniform w4a4 baseline (teacher: the baseline, or its w8a8 or float
copy).

1. Train the baseline (uniform w4a4) and score it on the board.
2. Screen many candidates on hardware alone (export + lower + fold, well under a second each).
3. Fine-tune the shortlist in parallel worker processes (results kept per candidate: an interrupted search resumes).
4. The Pareto front over accuracy, FPS, LUT and BRAM; the chosen model is the best one within --max-acc-drop.
"""

from __future__ import annotations

import contextlib
import copy
import json
import multiprocessing as mp
import os
import random
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from boards.schema import FpgaBoard
from edge.compress.bits import (
    activation_layers,
    retie,
    searchable_activations,
    set_bit_widths,
    tie_groups,
    weight_layers,
)
from edge.compress.channels import ChannelGraph, analyse_channels, channel_importance, prune_channels
from edge.compress.distill import fine_tune
from edge.compress.score import file_score, hardware_score
from edge.compress.teacher import teacher_shell, train_teacher
from edge.data import Dataset, load_dataset
from edge.fsutil import atomic_files, write_json
from edge.report_html import write_pareto_svg
from edge.train import export_qonnx_file
from edge.usermodel import call_factory, factory_module, load_state
from edge.zoo import build_model, model_input_shape
from fpga.lower import lower
from frontend.errors import EdgeError
from frontend.qonnx_io import load_model

BASE_BITS = 4
PTQ_CALIB = 512  # training images that calibrate a float model's PTQ baseline
BIT_CHOICES = (2, 3, 4)
KEEP_CHOICES = (1.0, 0.75, 0.5, 0.375, 0.25)


@dataclass(frozen=True)
class Candidate:
    """Per weight layer bits, per activation quantiser bits (the input quantiser excluded), per prunable channel
    group the fraction of channels kept."""

    wbits: tuple[int, ...]
    abits: tuple[int, ...]
    keep: tuple[float, ...]

    @property
    def key(self) -> str:
        return "w" + "".join(map(str, self.wbits)) + "_a" + "".join(map(str, self.abits)) + "_k" + "-".join(
            f"{int(k * 1000)}" for k in self.keep)


@dataclass
class SearchConfig:
    model: str
    dataset: str
    board: FpgaBoard
    target_fps: float | None
    max_util: float
    max_acc_drop: float  # accuracy points (0-100)
    epochs: int = 10
    ft_epochs: int = 8
    shortlist: int = 16
    screen: int = 96
    workers: int = 2
    seed: int = 0
    checkpoint: Path | None = None  # a trained state dict: the baseline as given, not trained here
    ray_address: str | None = None  # fine-tune as Ray Tune trials on this cluster instead of local processes
    teacher: str = "baseline"  # distillation teacher: baseline, w8a8, float or none (edge.compress.teacher)


@dataclass
class Layout:
    """The names the candidates' tuples refer to, from the baseline model."""

    weights: list[str]
    activations: list[str]
    groups: list[int]
    channels: list[int]
    wbits: list[int]  # the baseline's
    abits: list[int]


def layout_of(model: nn.Module, shape: tuple[int, ...]) -> Layout:
    graph = analyse_channels(model, shape)
    prunable = [g for g in graph.groups if g.prunable]
    w, a = weight_layers(model), activation_layers(model)
    acts = searchable_activations(model)  # not the input quantiser (the host quantises the pixels), nor tied ones
    return Layout(weights=list(w), activations=acts, groups=[g.id for g in prunable],
                  channels=[g.channels for g in prunable], wbits=list(w.values()), abits=[a[n] for n in acts])


def apply_candidate(base: nn.Module, shape: tuple[int, ...], cand: Candidate,
                    graph: ChannelGraph | None = None) -> nn.Module:
    """A copy of the trained baseline pruned (BatchNorm-scale criterion) and re-quantised as `cand` says
    (`graph`: the baseline's channel analysis, when already done)."""
    model = copy.deepcopy(base)
    graph = graph or analyse_channels(model, shape)
    prunable = [g for g in graph.groups if g.prunable]
    keep = {}
    for grp, ratio in zip(prunable, cand.keep, strict=True):
        if ratio < 1.0:
            n = max(1, int(round(grp.channels * ratio)))
            order = np.argsort(-channel_importance(model, grp, "bn" if grp.norms else "l1"), kind="stable")
            keep[grp.id] = np.sort(order[:n])
    prune_channels(model, graph, keep)
    w, a = weight_layers(model), activation_layers(model)
    names_a = searchable_activations(model)
    set_bit_widths(model, weights={n: b for n, b in zip(w, cand.wbits, strict=True) if b != w[n]},
                   activations={n: b for n, b in zip(names_a, cand.abits, strict=True) if b != a[n]})
    return model


def propose(layout: Layout, count: int, seed: int) -> list[Candidate]:
    """Uniform settings (every bits x keep combination) then seeded per-layer mixes. The first and last weight
    layers keep the baseline's width (they carry the input pixels and the class scores), and so do binary layers;
    no layer gets more bits than the baseline gave it."""
    nw, na, ng = len(layout.weights), len(layout.activations), len(layout.groups)
    out: list[Candidate] = []

    def fix(bits: list[int], base: list[int], pin_ends: bool) -> tuple[int, ...]:
        fixed = [b0 if b0 <= 1 else min(b, b0) for b, b0 in zip(bits, base, strict=True)]
        if pin_ends and fixed:
            fixed[0], fixed[-1] = base[0], base[-1]
        return tuple(fixed)

    def make(wb: list[int], ab: list[int], keep: list[float]) -> Candidate:
        return Candidate(fix(wb, layout.wbits, True), fix(ab, layout.abits, False), tuple(keep))

    for b in BIT_CHOICES:
        for k in KEEP_CHOICES:
            out.append(make([b] * nw, [b] * na, [k] * ng))
    rng = random.Random(seed)
    for _ in range(50 * count):  # a small model may have fewer distinct settings than asked for
        if len(set(out)) > count:
            break
        out.append(make([rng.choice(BIT_CHOICES) for _ in range(nw)], [rng.choice(BIT_CHOICES) for _ in range(na)],
                        [rng.choice(KEEP_CHOICES) for _ in range(ng)]))
    identity = Candidate(tuple(layout.wbits), tuple(layout.abits), tuple([1.0] * ng))
    return [c for c in dict.fromkeys(out) if c != identity][:count]  # the baseline itself is already trained


def _score(model: nn.Module, shape: tuple[int, ...], cfg: SearchConfig, path: Path | None = None) -> dict[str, Any]:
    try:
        hw = hardware_score(model, shape, cfg.board, cfg.max_util, cfg.target_fps, path)
    except EdgeError as exc:
        return {"feasible": False, "reason": str(exc)}
    return {"feasible": True, **hw}


def _cost(hw: dict[str, Any], cfg: SearchConfig) -> tuple[float, float]:
    """Lower is better: with a frame-rate target the largest LUT/BRAM utilisation, else the negative FPS; ties go
    to the candidate with less of the other."""
    if not hw.get("feasible"):
        return (float("inf"), float("inf"))
    util = max(hw["utilisation"]["lut"], hw["utilisation"]["bram36"])
    if cfg.target_fps is not None:
        return (util, -hw["fps"])
    return (-hw["fps"], util)


def strength(cand: Candidate) -> float:
    """How much of the model a candidate keeps (bits relative to 4, channel fraction): the shortlist spans this."""
    return float(np.mean([b / BASE_BITS for b in cand.wbits + cand.abits]) * np.mean(cand.keep or (1.0,)))


def hardware_front(screened: list[tuple[Candidate, dict[str, Any]]]) -> list[tuple[Candidate, dict[str, Any]]]:
    """Screened candidates no other beats on FPS, LUT and BRAM while keeping at least as much of the model."""
    def key(c: tuple[Candidate, dict[str, Any]]) -> tuple[float, ...]:
        hw = c[1]
        return (hw["fps"], -hw["resources"]["lut"], -hw["resources"]["bram36"], strength(c[0]))

    keys = [key(c) for c in screened]
    return [c for c, k in zip(screened, keys, strict=True)
            if not any(all(x >= y for x, y in zip(o, k, strict=True)) and o != k for o in keys)]


def dominates(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """a is no worse than b in accuracy, FPS, LUT and BRAM, and better in one."""
    ka = (a["accuracy"], a["fps"], -a["resources"]["lut"], -a["resources"]["bram36"])
    kb = (b["accuracy"], b["fps"], -b["resources"]["lut"], -b["resources"]["bram36"])
    return all(x >= y for x, y in zip(ka, kb, strict=True)) and ka != kb


def pareto(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if not any(dominates(o, r) for o in records if o is not r)]


def make_model(spec: str, data: Dataset, float_state: Path | None = None) -> nn.Module:
    """A fresh model: a zoo name (uniform w4a4) or FILE.py:FACTORY (the factory called without arguments). A float
    factory model (no Brevitas quantisers) is post-training quantised to the w4a4 baseline form first, from
    `float_state` when given, calibrated on the dataset's first training images: the same steps give the same
    structure everywhere (workers load the trained baseline into it)."""
    if ":" not in spec:
        return build_model(spec, data.image_shape, data.num_classes, BASE_BITS, BASE_BITS)
    model = call_factory(spec)
    if weight_layers(model):
        return model
    if float_state is not None:
        load_state(model, float_state, "checkpoint")
    return ptq_baseline(model, data, input_shape_of(spec, data))


def is_float_model(spec: str) -> bool:
    """FILE.py:FACTORY builds a model without Brevitas weight quantisers."""
    return ":" in spec and not weight_layers(call_factory(spec))


def ptq_baseline(model: nn.Module, data: Dataset, shape: tuple[int, ...]) -> nn.Module:
    """Brevitas PTQ (edge.ptq) of a float model to uniform w4a4 (first and last layers 8-bit), unsigned ReLU outputs
    as the FPGA takes them; QAT then trains it like any baseline."""
    from edge.ptq import Recipe, ptq
    from edge.ptq.source import as_logits, as_model_input

    calib = data.x_train[:PTQ_CALIB].reshape(-1, *shape)
    model = as_logits(model.eval(), as_model_input(calib[:2]))
    recipe = Recipe(wbits=(BASE_BITS, BASE_BITS), abits=BASE_BITS, calibration="mse", steps=("bias",),
                    signed_only=False, target="compress")
    return ptq(model, calib, recipe, progress=False).model


def input_shape_of(spec: str, data: Dataset) -> tuple[int, ...]:
    """Per-sample input shape: the zoo's, or the model file's INPUT_SHAPE, else the dataset's (C, H, W)."""
    if ":" not in spec:
        return model_input_shape(spec, data.image_shape)
    module, _ = factory_module(spec)
    return tuple(getattr(module, "INPUT_SHAPE", data.image_shape))


def load_baseline(spec: str, data: Dataset, path: Path | str) -> nn.Module:
    """The trained baseline from its state dict (Brevitas modules do not pickle whole)."""
    model = make_model(spec, data)
    groups = tie_groups(model)  # before loading: the load unshares them
    return retie(load_state(model, path, "baseline"), groups)


def load_candidate(base: nn.Module, shape: tuple[int, ...], cand: Candidate, path: Path) -> nn.Module:
    """A fine-tuned candidate: the baseline pruned and re-quantised as `cand` says, then its own weights."""
    model = apply_candidate(base, shape, cand)
    groups = tie_groups(model)
    model.load_state_dict(torch.load(path, weights_only=True))
    return retie(model, groups)


def _settings(job: dict[str, Any]) -> dict[str, Any]:
    """What a candidate's fine-tuning depends on besides the baseline: a kept result is reused only if they match."""
    return {"teacher": job["teacher"], "ft_epochs": job["ft_epochs"], "seed": job["seed"]}


def _train_candidate(job: dict[str, Any]) -> dict[str, Any]:
    """Worker: fine-tune one candidate from the baseline, distilled from the job's teacher; writes its directory."""
    torch.set_num_threads(1)
    out = Path(job["dir"])
    data = load_dataset(job["dataset"])
    base = load_baseline(job["model"], data, job["baseline"])
    teacher = teacher_shell(job["teacher"], base)
    if job["teacher_state"]:
        load_state(teacher, job["teacher_state"], "teacher")
    cand = Candidate(**{k: tuple(v) for k, v in job["candidate"].items()})
    model = apply_candidate(base, job["shape"], cand)
    log: list[dict] = []
    acc = fine_tune(model, data, job["shape"], epochs=job["ft_epochs"], teacher=teacher, seed=job["seed"], log=log)
    out.mkdir(parents=True, exist_ok=True)
    export_qonnx_file(model, job["shape"], out / "model.onnx", {"edge.compress": cand.key})
    torch.save(model.state_dict(), out / "model.pt")
    result = {"key": cand.key, "accuracy": acc, "log": log, "candidate": asdict(cand), "settings": _settings(job)}
    write_json(out / "result.json", result)  # last: its presence marks the candidate done (resume)
    return result


def _ray_trial(config: dict[str, Any]) -> None:
    """A Ray Tune trial: one candidate's fine-tuning (its files land in the search directory, as locally)."""
    from ray import tune

    result = _train_candidate(config["job"])
    tune.report({"accuracy": result["accuracy"]})


def _train_on_ray(todo: list[dict[str, Any]], address: str, concurrent: int, storage: Path) -> list[dict[str, Any]]:
    """Fine-tune the candidates as Ray Tune trials (one CPU each) on the Ray cluster at `address`."""
    try:
        import ray
        from ray import tune
    except ImportError:
        raise EdgeError("--ray needs Ray Tune: pip install 'edge-toolchain[ray]'") from None
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if host and port.isdigit():  # ray.init retries an unreachable head for minutes: fail fast instead
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except OSError as exc:
            raise EdgeError(f"--ray {address}: cannot connect ({exc.strerror or exc}); is `ray start --head` "
                            "running there?") from None
    try:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, configure_logging=False)
    except Exception as exc:  # noqa: BLE001 - a cluster we cannot reach is the user's input
        raise EdgeError(f"--ray {address}: cannot connect ({type(exc).__name__}: {str(exc).splitlines()[0]})") \
            from None
    try:
        tuner = tune.Tuner(tune.with_resources(_ray_trial, {"cpu": 1}),
                           param_space={"job": tune.grid_search(todo)},
                           tune_config=tune.TuneConfig(max_concurrent_trials=concurrent,
                                                       trial_dirname_creator=lambda t: t.trial_id),
                           run_config=tune.RunConfig(storage_path=str(storage.resolve()), name="compress",
                                                     verbose=0))
        with contextlib.redirect_stdout(sys.stderr):  # Ray Tune's status tables: not on stdout (--json)
            grid = tuner.fit()
        failed = [r for r in grid if r.error]
        if failed:
            raise EdgeError(f"--ray: {len(failed)} of {len(todo)} trials failed: {failed[0].error}")
    finally:
        ray.shutdown()
    return [json.loads((Path(j["dir"]) / "result.json").read_text()) for j in todo]


def _teacher(cfg: SearchConfig, base: nn.Module, data: Dataset, shape: tuple[int, ...], state: Path,
             log: Callable[[str], None]) -> tuple[Path | None, float | None]:
    """The distillation teacher's state dict and accuracy (None for the baseline itself or no teacher); a float or
    w8a8 teacher is fine-tuned from the baseline once (--ft-epochs) and kept for reruns."""
    if cfg.teacher in ("baseline", "none"):
        return None, None
    path, info = state / f"teacher_{cfg.teacher}.pt", state / f"teacher_{cfg.teacher}.json"
    if path.exists() and info.exists() and json.loads(info.read_text()).get("ft_epochs") == cfg.ft_epochs:
        return path, json.loads(info.read_text())["accuracy"]
    log(f"teacher: {cfg.teacher} copy of the baseline, {cfg.ft_epochs} epochs...")
    teacher, acc = train_teacher(cfg.teacher, base, data, shape, max(cfg.ft_epochs, 1), seed=cfg.seed)
    torch.save(teacher.state_dict(), path)
    write_json(info, {"accuracy": acc, "ft_epochs": cfg.ft_epochs})
    return path, acc


def _record(name: str, acc: float, hw: dict[str, Any], model_path: str | None, layers: list[dict] | None) -> dict:
    return {"name": name, "accuracy": acc, "fps": hw["fps"], "resources": hw["resources"],
            "utilisation": hw["utilisation"], "bottleneck": hw["bottleneck"], "model": model_path, "layers": layers}


def _layers(model: nn.Module, shape: tuple[int, ...]) -> list[dict[str, Any]]:
    """Per compute layer: weight bits, output activation bits, output channels (what the hardware sees)."""
    with tempfile.TemporaryDirectory() as tmp:
        export_qonnx_file(model, shape, Path(tmp) / "m.onnx", {})
        graph = lower(load_model(Path(tmp) / "m.onnx"))
    rows = []
    for n in graph.compute_nodes():
        out_t = graph.tensors[n.output].dtype
        channels = getattr(n, "mh", None) or getattr(n, "channels", None)
        rows.append({"layer": n.name, "wbits": n.w_dtype.bits, "abits": out_t.bits, "channels": int(channels)})
    return rows


def run_search(cfg: SearchConfig, out_dir: Path, progress: bool = True,
               log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """The whole search; everything it writes goes to out_dir (kept between runs: finished candidates are reused)."""
    data: Dataset = load_dataset(cfg.dataset)
    shape = input_shape_of(cfg.model, data)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = out_dir / "search"
    state.mkdir(exist_ok=True)
    base_pt = state / "baseline.pt"
    made_with = {"model": cfg.model, "dataset": cfg.dataset, "epochs": cfg.epochs, "seed": cfg.seed,
                 "checkpoint": str(cfg.checkpoint) if cfg.checkpoint else None}
    if base_pt.exists() and (state / "baseline.json").exists():
        kept = json.loads((state / "baseline.json").read_text())
        if kept.get("made_with") != made_with:
            diff = sorted(k for k in made_with if kept.get("made_with", {}).get(k) != made_with[k])
            raise EdgeError(f"{out_dir}: holds a search with another {', '.join(diff)}; choose another -o DIR or "
                            f"delete {state}")
        base = load_baseline(cfg.model, data, base_pt)
        base_acc = kept["accuracy"]
        log("baseline: reused from an earlier run")
    elif cfg.checkpoint is not None and is_float_model(cfg.model):
        # a float model: PTQ first (edge.ptq), then QAT from there as the baseline
        base = make_model(cfg.model, data, float_state=cfg.checkpoint)
        ptq_acc = fine_tune(base, data, shape, epochs=0)
        log(f"baseline: {cfg.model} (float) post-training quantised to w{BASE_BITS}a{BASE_BITS}: {ptq_acc:.2%}; "
            f"QAT {cfg.epochs} epochs...")
        base_acc = fine_tune(base, data, shape, epochs=cfg.epochs, lr=0.01, seed=cfg.seed, progress=progress)
        torch.save(base.state_dict(), base_pt)
        write_json(state / "baseline.json", {"accuracy": base_acc, "ptq_accuracy": ptq_acc, "made_with": made_with})
    elif cfg.checkpoint is not None:
        base = load_state(make_model(cfg.model, data), cfg.checkpoint, "checkpoint")
        base_acc = fine_tune(base, data, shape, epochs=0)  # its accuracy as given
        torch.save(base.state_dict(), base_pt)
        write_json(state / "baseline.json", {"accuracy": base_acc, "made_with": made_with})
    else:
        torch.manual_seed(cfg.seed)
        base = make_model(cfg.model, data)
        what = cfg.model if ":" in cfg.model else f"uniform w{BASE_BITS}a{BASE_BITS} {cfg.model}"
        log(f"baseline: {what}, {cfg.epochs} epochs...")
        base_acc = fine_tune(base, data, shape, epochs=cfg.epochs, lr=0.01, seed=cfg.seed, progress=progress)
        torch.save(base.state_dict(), base_pt)
        write_json(state / "baseline.json", {"accuracy": base_acc, "made_with": made_with})
    base_hw = _score(base, shape, cfg, state / "baseline.onnx")
    if not base_hw["feasible"]:
        raise EdgeError(f"the w{BASE_BITS}a{BASE_BITS} baseline does not fit {cfg.board.name}: {base_hw['reason']}")
    layout = layout_of(base, shape)
    graph = analyse_channels(base, shape)
    teacher_pt, teacher_acc = _teacher(cfg, base, data, shape, state, log)

    screened = []
    for cand in tqdm(propose(layout, cfg.screen, cfg.seed), desc="hardware screening", unit="cand",
                     disable=not progress, leave=False):
        screened.append((cand, _score(apply_candidate(base, shape, cand, graph), shape, cfg)))
    feasible = [c for c in screened if c[1]["feasible"]]
    if not feasible:
        raise EdgeError(f"no candidate fits {cfg.board.name} with the given target; relax --target-fps/--max-util")
    # the shortlist: the hardware-Pareto candidates, spread from the mildest to the most compressed (the accuracy
    # decides among them), topped up with the mildest of the rest
    front = sorted(hardware_front(feasible), key=lambda c: -strength(c[0]))
    if len(front) > cfg.shortlist:
        picks = np.unique(np.linspace(0, len(front) - 1, cfg.shortlist).round().astype(int))
        front = [front[i] for i in picks]
    rest = sorted((c for c in feasible if c not in front), key=lambda c: -strength(c[0]))
    shortlist = (front + rest)[:cfg.shortlist]

    jobs = []
    for cand, _ in shortlist:
        cdir = state / "candidates" / cand.key
        jobs.append({"dir": str(cdir), "dataset": cfg.dataset, "model": cfg.model, "baseline": str(base_pt),
                     "candidate": asdict(cand),
                     "shape": shape, "ft_epochs": cfg.ft_epochs, "seed": cfg.seed, "teacher": cfg.teacher,
                     "teacher_state": str(teacher_pt) if teacher_pt else None})
    done = {}
    for job in jobs:
        kept = Path(job["dir"]) / "result.json"
        if kept.exists() and json.loads(kept.read_text()).get("settings") == _settings(job):
            done[Path(job["dir"]).name] = json.loads(kept.read_text())
    todo = [j for j in jobs if Path(j["dir"]).name not in done]
    if done:
        log(f"resuming: {len(done)} of {len(jobs)} candidates already fine-tuned")
    with tqdm(total=len(jobs), initial=len(done), desc="fine-tuning candidates", unit="cand",
              disable=not progress, leave=False) as bar:
        if cfg.ray_address is not None and todo:
            for result in _train_on_ray(todo, cfg.ray_address, cfg.workers, state / "ray"):
                done[result["key"]] = result
                bar.update()
        elif cfg.workers > 1 and len(todo) > 1:
            quiet = os.environ.get("PYTHONWARNINGS")
            os.environ["PYTHONWARNINGS"] = "ignore"  # workers: no import-time library warnings over the bar
            try:
                with mp.get_context("spawn").Pool(min(cfg.workers, len(todo))) as pool:
                    for result in pool.imap_unordered(_train_candidate, todo):
                        done[result["key"]] = result
                        bar.update()
            finally:
                if quiet is None:
                    os.environ.pop("PYTHONWARNINGS", None)
                else:
                    os.environ["PYTHONWARNINGS"] = quiet
        else:
            for job in todo:
                result = _train_candidate(job)
                done[result["key"]] = result
                bar.update()

    name = "baseline" if cfg.checkpoint else f"baseline w{BASE_BITS}a{BASE_BITS}"
    baseline = _record(name, base_acc, base_hw, str(state / "baseline.onnx"), _layers(base, shape))
    records = [baseline]
    # the results appear together or not at all: an interrupted run leaves the earlier ones (state stays for resume)
    with atomic_files(out_dir) as staged:
        return _write_results(cfg, out_dir, staged, state, base, shape, base_acc, baseline, records, done,
                              len(screened), teacher_acc)


def _write_results(cfg: SearchConfig, out_dir: Path, staged: Path, state: Path, base: nn.Module,
                   shape: tuple[int, ...], base_acc: float, baseline: dict[str, Any], records: list[dict[str, Any]],
                   done: dict[str, dict[str, Any]], screened: int, teacher_acc: float | None) -> dict[str, Any]:
    """Score the fine-tuned candidates, choose one and write model.onnx, pareto.json/svg, compress.json and
    train_log.jsonl into `staged` (named as they will be in `out_dir`)."""
    with (staged / "train_log.jsonl").open("w", encoding="utf-8") as f:
        for key, result in done.items():
            for row in result["log"]:
                f.write(json.dumps({"candidate": key, **row}) + "\n")
            cand = Candidate(**{k: tuple(v) for k, v in result["candidate"].items()})
            model = load_candidate(base, shape, cand, state / "candidates" / key / "model.pt")
            # scored again as fine-tuned: training moves thresholds (accumulator widths), so the screening score of
            # the untrained candidate is not what `edge build` of the shipped file reports
            onnx_file = state / "candidates" / key / "model.onnx"
            hw = file_score(onnx_file, cfg.board, cfg.max_util, cfg.target_fps)
            records.append(_record(key, result["accuracy"], hw, str(onnx_file), _layers(model, shape)))
    front = pareto(records)
    floor = base_acc - cfg.max_acc_drop / 100.0
    eligible = [r for r in records if r["accuracy"] >= floor - 1e-12]
    chosen = min(eligible, key=lambda r: _cost({"feasible": True, **r}, cfg))
    shutil.copyfile(chosen["model"], staged / "model.onnx")
    chosen = {**chosen, "model": str(out_dir / "model.onnx")}
    summary = {"model": cfg.model, "dataset": cfg.dataset, "board": cfg.board.name,
               "objective": {"target_fps": cfg.target_fps, "max_util": cfg.max_util,
                             "max_acc_drop_points": cfg.max_acc_drop},
               "baseline": baseline, "chosen": chosen, "pareto": front,
               "teacher": {"kind": cfg.teacher,
                           "accuracy": base_acc if cfg.teacher == "baseline" else teacher_acc},
               "screened": screened, "fine_tuned": len(done),
               "sparsity_note": "unstructured sparsity is not used: the MVAU multiplies every weight"}
    write_json(staged / "pareto.json", {"baseline": baseline, "chosen": chosen, "pareto": front,
                                         "all": records})
    write_json(staged / "compress.json", summary)
    write_pareto_svg(records, front, baseline, chosen, staged / "pareto.svg")
    return summary
