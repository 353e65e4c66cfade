"""The GPU part of the training benchmark (run by bench/train.py when CUDA is available).

- Training throughput of the Lightning module at a batch that fills the GPU, fp32 and bf16
  mixed precision, against the cuDNN kernel alone: one forward + backward of the bare
  `nn.LSTM` / `nn.GRU` / `nn.RNN` stack with the same shape (the recurrence our model runs).
- Seconds per epoch by cell and depth, as on the CPU.
- Inference: series/s of the bare batched forward at batch 1, 64, 1024, 8192.

Every function takes the device, so the code path can be exercised on the CPU with small sizes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from timing import WARMUP, module_seconds_per_step
from torch import nn

from stackcast.models import StackedRNNForecaster
from stackcast.training.config import TrainConfig
from stackcast.training.datamodule import SeriesDataModule

CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru")
DEPTHS = (1, 2, 4, 8)
INFERENCE_BATCHES = (1, 64, 1024, 8192)
GPU_BATCH = 4096  # windows per step: enough to keep an H100 busy at hidden 256


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Mean seconds of `fn` after WARMUP calls (synchronised on CUDA)."""
    for _ in range(WARMUP):
        fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / repeats


def kernel_seconds_per_step(
    config: TrainConfig, batch: int, device: torch.device, bf16: bool, repeats: int
) -> float:
    """One forward + backward of the bare cuDNN recurrence with our model's shape."""
    m = config.model
    steps = m.input_size // m.patch_size  # recurrent steps per window
    kinds: dict[str, Callable[..., nn.Module]] = {
        "lstm": nn.LSTM,
        "gru": nn.GRU,
        "rnn_tanh": lambda **kw: nn.RNN(nonlinearity="tanh", **kw),
        "rnn_relu": lambda **kw: nn.RNN(nonlinearity="relu", **kw),
    }
    # one cuDNN call for the whole stack (ours runs one per layer, to see each layer's output)
    rnn = kinds[m.cell](
        input_size=m.patch_size,
        hidden_size=m.hidden_size,
        num_layers=m.num_layers,
        batch_first=True,
    ).to(device)
    x = torch.randn(batch, steps, m.patch_size, device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out, _ = rnn(x)
        out.float().sum().backward()

    return timed(step, device, repeats)


def inference_series_per_second(
    config: TrainConfig, device: torch.device, batches: tuple[int, ...], repeats: int
) -> dict[int, float]:
    """Series/s of the bare batched forward (no HTTP) at each batch size."""
    model = StackedRNNForecaster(config.model).to(device).eval()
    out = {}
    for batch in batches:
        x = torch.rand(batch, config.model.input_size, device=device) * 100 + 1
        with torch.inference_mode():
            seconds = timed(lambda x=x: model(x), device, repeats)
        out[batch] = batch / seconds
    return out


def gpu_section(config: TrainConfig, dm: SeriesDataModule, steps: int) -> str:
    """The GPU table (markdown), for config at a GPU-filling batch."""
    device = torch.device("cuda")
    big = config.model_copy(
        update={"optim": config.optim.model_copy(update={"batch_size": GPU_BATCH})}
    )
    dm.batch_size = GPU_BATCH
    lines = [
        f"GPU: {torch.cuda.get_device_name()}, batch {GPU_BATCH} windows, {steps} timed steps.",
        "",
        "| precision | module s/step | cuDNN kernel s/step | module / kernel throughput |",
        "|---|---:|---:|---:|",
    ]
    for precision, bf16 in (("32-true", False), ("bf16-mixed", True)):
        ours = module_seconds_per_step(big, dm, steps, None, "gpu", precision)
        kernel = kernel_seconds_per_step(big, GPU_BATCH, device, bf16, steps)
        lines.append(f"| {precision} | {ours:.4f} | {kernel:.4f} | {kernel / ours:.2f} |")
    lines += [
        "",
        "Seconds per epoch (65,536 windows) by cell and depth, bf16-mixed:",
        "",
        "| cell | " + " | ".join(str(d) for d in DEPTHS) + " |",
        "|---|" + "---:|" * len(DEPTHS),
    ]
    per_epoch = 65_536 // GPU_BATCH
    for cell in CELLS:
        row = []
        for depth in DEPTHS:
            model = big.model.model_copy(update={"cell": cell, "num_layers": depth})
            if cell != "lstm":
                model = model.model_copy(update={"forget_bias": None})
            c = big.model_copy(update={"model": model})
            row.append(module_seconds_per_step(c, dm, steps, None, "gpu", "bf16-mixed") * per_epoch)
        lines.append(f"| {cell} | " + " | ".join(f"{v:.2f}" for v in row) + " |")
    rates = inference_series_per_second(config, device, INFERENCE_BATCHES, 50)
    lines += [
        "",
        "Inference, bare batched forward (fp32): "
        + ", ".join(f"batch {b}: {r:,.0f} series/s" for b, r in rates.items()),
    ]
    dm.batch_size = config.optim.batch_size
    return "\n".join(lines) + "\n"
