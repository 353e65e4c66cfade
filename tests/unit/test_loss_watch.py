"""LossWatch hands back every step's loss: at once on the CPU, one step later on a GPU."""

from __future__ import annotations

import math

import pytest
import torch

from stackcast.training.loss_watch import LossWatch, StepLoss


def test_on_the_cpu_each_loss_is_read_at_once() -> None:
    watch = LossWatch()
    assert watch.push(torch.tensor(0.5), 1, 0, 1) == StepLoss(0.5, 1, 0, 1)
    nan = watch.push(torch.tensor(float("nan")), 2, 0, 2)
    assert nan is not None and math.isnan(nan.value) and nan.step == 2
    assert watch.settle() is None  # nothing left behind


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_a_gpu_each_loss_is_read_one_step_later_and_none_is_lost() -> None:
    watch = LossWatch()
    device = torch.device("cuda")
    assert watch.push(torch.tensor(float("inf"), device=device), 7, 1, 0) is None
    late = watch.push(torch.tensor(0.25, device=device), 8, 1, 1)
    assert late is not None and math.isinf(late.value) and (late.step, late.batch_idx) == (7, 0)
    assert watch.settle() == StepLoss(0.25, 8, 1, 1)
    assert watch.settle() is None
