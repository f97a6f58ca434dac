"""The pretraining run: a plain PyTorch loop that turns folders of unlabelled images into an encoder checkpoint.

Why a loop of its own rather than Detectron2's or mmengine's trainer: pretraining has no detector, no dataset
registry and no evaluator, and the result must load into both frameworks; the core stays framework-free. It keeps
the training tools' promises: CUDA when a GPU is visible, several processes under ``torch.distributed.run`` (DDP;
gloo on the CPU, each process given ``cores // processes`` threads), ``$ASTRODET_MAX_ITER`` caps the schedule, a
progress bar, a state file every ``checkpoint_period`` steps that ``resume`` continues from, files written
atomically, and no file written over another run's without ``overwrite``.

Step ``i`` of a run is a function of the seed and ``i`` alone (which images, see :class:`StepBatches`, and which
views, see :class:`~astrodet.pretraining.augment.SkyViews`); with the optimiser and random state saved, a resumed
run ends with the weights the uninterrupted run ends with (on one process; with several, up to reduction order).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from lightly.utils.scheduler import cosine_warmup_schedule
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from astrodet.errors import AstrodetInputError
from astrodet.io import atomic_path
from astrodet.models.checkpoints import load_weights_only
from astrodet.pretraining.augment import SkyViews, ViewSettings
from astrodet.pretraining.inputs import (
    Discovery,
    ImageBank,
    PixelRecipe,
    check_channels,
    discover,
    read_bank,
    refuse_output_in_inputs,
)
from astrodet.pretraining.methods import DEEPSHADOWS, build_encoder, build_method
from astrodet.runs import available_cores, cap_iterations, use_cpu_threads_per_process

CHECKPOINT_FORMAT = "astrodet-pretrained-encoder-1"
STATE_HOLDS = "astrodet pretraining state (tensors, numbers and strings)"
# Settings a resumed run must share with the run that wrote the state (``iters`` may grow: the run goes on).
RESUME_KEYS = ("arch", "method", "batch_size", "input_size", "lr", "weight_decay", "seed")


@dataclass(frozen=True)
class PretrainSettings:
    """One pretraining run, as ``tools/pretrain.py`` takes it (see its ``--help`` for each option)."""

    inputs: tuple[str, ...]
    arch: str
    out: Path
    iters: int
    method: str = "simclr"
    batch_size: int = 32
    input_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup: int = 100
    seed: int = 0
    pixels: PixelRecipe = field(default_factory=lambda: PixelRecipe(fits=None))
    checkpoint_period: int = 100
    resume: bool = False
    overwrite: bool = False
    device: str = "auto"
    num_workers: int = 0

    def __post_init__(self) -> None:
        if self.out.suffix not in (".pth", ".pt"):
            raise AstrodetInputError(f"--out {self.out}: name a .pth (or .pt) file")
        for name in ("iters", "batch_size", "checkpoint_period"):
            if getattr(self, name) < 1:
                raise AstrodetInputError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.warmup < 0:
            raise AstrodetInputError(f"--warmup must be 0 or more, got {self.warmup}")
        if self.input_size < 16:
            raise AstrodetInputError(f"--input-size must be at least 16 pixels, got {self.input_size}")
        if self.num_workers < 0:
            raise AstrodetInputError(f"--num-workers must be 0 or more, got {self.num_workers}")
        if self.batch_size < 2:
            raise AstrodetInputError("--batch-size must be at least 2 (the batch norms and SimCLR's negatives)")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise AstrodetInputError(f"--lr must be a positive number, got {self.lr}")


def default_workers() -> int:
    """Reader/augmentation processes per training process: the cores left beside it (at most 4; 0 on one core)."""
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return min(4, max(0, available_cores() // processes - 1))


def state_path(out: Path) -> Path:
    """The periodic state file beside ``out`` (``encoder.pth`` -> ``encoder.state.pth``)."""
    return out.with_name(f"{out.stem}.state{out.suffix}")


def rejects_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}.rejects.csv")


def check_output(settings: PretrainSettings) -> None:
    """Refuse to write among the inputs, over another run without ``overwrite``, or to resume what is not there."""
    refuse_output_in_inputs(settings.out, settings.inputs)
    state = state_path(settings.out)
    if settings.resume:
        if not state.is_file():
            raise AstrodetInputError(f"--resume: no state file {state} (a run with --out {settings.out} writes it)")
    elif not settings.overwrite:
        existing = [p for p in (settings.out, state) if p.exists()]
        if existing:
            raise AstrodetInputError(
                f"{existing[0]} exists: pass --resume to continue that run, --overwrite to replace it, "
                "or choose another --out"
            )


class StepBatches:
    """Batch sampler: for steps ``start``..``stop - 1``, this process's ``(image index, view seed)`` pairs.

    The run walks through a fresh permutation of the images each epoch (numpy's generator seeded by (seed, epoch));
    process ``rank`` of ``world`` takes its slice of each global batch. A view seed depends on (seed, step, slot).
    """

    def __init__(self, images: int, batch: int, seed: int, start: int, stop: int, rank: int = 0, world: int = 1):
        self.images, self.batch, self.seed = images, batch, seed
        self.start, self.stop, self.rank, self.world = start, stop, rank, world
        self._epoch, self._order = -1, np.empty(0, dtype=np.int64)

    def _index(self, position: int) -> int:
        epoch, offset = divmod(position, self.images)
        if epoch != self._epoch:
            self._epoch, self._order = epoch, np.random.default_rng([self.seed, epoch]).permutation(self.images)
        return int(self._order[offset])

    def __len__(self) -> int:
        return self.stop - self.start

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start, self.stop):
            first = (step * self.world + self.rank) * self.batch
            slots = range(first, first + self.batch)
            yield [(self._index(p), int(np.random.SeedSequence([self.seed, p]).generate_state(1)[0])) for p in slots]


class ViewPairs(Dataset):
    """Two augmented views of bank image ``index`` drawn from ``seed``: items are ``(index, seed)`` pairs."""

    def __init__(self, images: torch.Tensor, views: SkyViews) -> None:
        self.images, self.views = images, views

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, item: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, seed = item
        return self.views.views(self.images[index].float(), seed)


@dataclass
class Distributed:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def start_processes(device: str) -> Distributed:
    """This process's rank, the world size and its device; joins the process group when ``WORLD_SIZE`` > 1 (nccl on
    GPUs, gloo on CPUs, as the training tools do)."""
    if device not in ("auto", "cpu", "cuda"):
        raise AstrodetInputError(f"--device {device!r}: one of auto, cpu, cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise AstrodetInputError("--device cuda: no GPU is visible (use --device auto or cpu)")
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world > 1:
        dist.init_process_group("nccl" if cuda else "gloo")
        if not cuda:
            use_cpu_threads_per_process(int(os.environ.get("LOCAL_WORLD_SIZE", str(world))))
    target = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(target)
    return Distributed(dist.get_rank() if world > 1 else 0, world, target)


def _resume_settings(settings: PretrainSettings, in_chans: int, images: int) -> dict[str, Any]:
    """What the state file records of its run, and a resumed run must match: the images (how many, how read)."""
    own = {key: getattr(settings, key) for key in RESUME_KEYS}
    return {**own, "pixels": settings.pixels.to_dict(), "in_chans": in_chans, "images": images}


def load_state(path: Path, expected: dict[str, Any]) -> dict[str, Any]:
    """The state file, read weights-only; settings that differ from the resumed run's are a one-line error."""
    state = load_weights_only(path, holds=STATE_HOLDS)
    if not isinstance(state, dict) or not {"iteration", "model", "optimizer", "rng", "settings"} <= set(state):
        raise AstrodetInputError(f"{path}: not a pretraining state file of tools/pretrain.py")
    recorded = state["settings"]
    differ = [f"{k} {recorded.get(k)!r} -> {v!r}" for k, v in expected.items() if recorded.get(k) != v]
    if differ:
        changes = "; ".join(differ)
        raise AstrodetInputError(f"{path}: --resume with other settings than the run that wrote it: {changes}")
    return state


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write the state atomically: an interrupted write leaves the previous state file whole."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def write_encoder(out: Path, weights: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """``{"state_dict": encoder weights, "meta": ...}``: ``read_state_dict`` takes the weights from ``state_dict``."""
    with atomic_path(out) as tmp:
        torch.save({"state_dict": weights, "meta": meta}, tmp)


def _report_inputs(bank: ImageBank, found: Discovery, settings: PretrainSettings) -> str:
    rejects = rejects_path(settings.out)
    bank.rejects.write_csv(rejects)
    kinds = ", ".join(f"{kind}: {count}" for kind, count in sorted(found.kinds().items()))
    line = bank.rejects.summary(len(found.sources), len(bank.files), out_label="used").replace("rows", "images")
    line = f"pretrain: {line} [{kinds}]"
    if len(bank.rejects):
        line += f"; rejects listed in {rejects}"
    if found.ignored:
        line += f"; skipped {sum(found.ignored.values())} non-image files ({dict(found.ignored.most_common(4))})"
    if found.duplicates:
        line += f"; {found.duplicates} images named twice, used once"
    return line


def pretrain(settings: PretrainSettings) -> Path:
    """Run ``settings`` and return the written checkpoint (on every process; only rank 0 writes)."""
    processes = start_processes(settings.device)
    try:
        return _pretrain(settings, processes)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _pretrain(settings: PretrainSettings, proc: Distributed) -> Path:
    check_output(settings)
    iters = cap_iterations(settings.iters)
    found = discover(settings.inputs)
    in_chans = check_channels(found.kinds(), settings.pixels)
    bank = read_bank(found.sources, settings.pixels, settings.input_size, settings.num_workers)
    if proc.main:
        print(_report_inputs(bank, found, settings), flush=True)
    torch.manual_seed(settings.seed)
    encoder = build_encoder(settings.arch, in_chans)
    model = build_method(settings.method, encoder, distributed=proc.world > 1).to(proc.device)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=settings.lr, weight_decay=settings.weight_decay
    )
    expected = _resume_settings(settings, in_chans, len(bank.files))
    start = 0
    if settings.resume:
        state = load_state(state_path(settings.out), expected)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        start = int(state["iteration"])
        if start > iters:
            raise AstrodetInputError(f"{state_path(settings.out)}: the run is at step {start}, beyond --iters {iters}")
    trained = DistributedDataParallel(model) if proc.world > 1 else model
    sampler = StepBatches(len(bank.files), settings.batch_size, settings.seed, start, iters, proc.rank, proc.world)
    loader = DataLoader(
        ViewPairs(bank.images, SkyViews(ViewSettings(settings.input_size))),
        batch_sampler=sampler,
        num_workers=settings.num_workers,
        pin_memory=proc.device.type == "cuda",
    )
    warmup = min(settings.warmup, iters // 10)
    bar = tqdm(total=iters, initial=start, desc=f"pretrain {settings.arch} ({settings.method})",
               disable=not proc.main, dynamic_ncols=True)  # fmt: skip
    model.train()
    for step, (view0, view1) in zip(range(start, iters), loader, strict=True):
        lr = cosine_warmup_schedule(step, iters, settings.lr, settings.lr * 0.01, warmup, 0.0)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = trained(view0.to(proc.device, non_blocking=True), view1.to(proc.device, non_blocking=True))
        if not torch.isfinite(loss):
            raise RuntimeError(f"pretrain: the loss became {loss.item()} at iteration {step + 1}: try a lower --lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        model.after_step(step, iters)
        bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.2e}", refresh=False)
        bar.update()
        done = step + 1
        if proc.main and (done % settings.checkpoint_period == 0 or done == iters):
            state = {"iteration": done, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "rng": torch.get_rng_state(), "settings": expected}  # fmt: skip
            save_state(state_path(settings.out), state)
    bar.close()
    if proc.main:
        meta = {
            "format": CHECKPOINT_FORMAT,
            "arch": settings.arch,
            "in_chans": in_chans,
            "iters": iters,
            "method": settings.method,
            "inputs": len(bank.files),
            "rejected": len(bank.rejects),
            "input_size": settings.input_size,
            "batch_size": settings.batch_size * proc.world,
            "seed": settings.seed,
            **settings.pixels.to_dict(),
        }
        write_encoder(settings.out, encoder.encoder_state(), meta)
        route = "MODEL.DEEPSHADOWS.CHECKPOINT" if settings.arch == DEEPSHADOWS else "MODEL.ZOOBOT.CHECKPOINT"
        kind = "DeepShadowsTrunk" if settings.arch == DEEPSHADOWS else "TimmEncoder"
        print(
            f"pretrain: wrote {settings.out} ({settings.arch}, {in_chans} bands, {iters} iterations of "
            f"{settings.method} on {len(bank.files)} images); finetune from it with {route} {settings.out} "
            f"(Detectron2) or {kind}(checkpoint='{settings.out}') (MMDetection)",
            flush=True,
        )
    if proc.world > 1:
        dist.barrier()
    return settings.out
