"""Test hook, on PYTHONPATH only in tests/e2e/test_ddp.py: every process of a training run
(Lightning's DDP launcher copies the environment to the ranks it starts) appends the rows of
each training batch it loads to `$STACKCAST_TEST_ROWS/rank<LOCAL_RANK>.jsonl`, and the torch
threads it trains with to `rank<LOCAL_RANK>.threads`."""

from __future__ import annotations

import json
import os
from pathlib import Path

if os.environ.get("STACKCAST_TEST_ROWS"):
    from stackcast.training import datamodule

    _load = datamodule.WindowTensors.__getitem__

    def _recording_load(self: datamodule.WindowTensors, rows: list[int]) -> object:
        if len(self.tensors) == 2:  # training windows (validation also carries MASE scales)
            rank = os.environ.get("LOCAL_RANK", "0")
            out = Path(os.environ["STACKCAST_TEST_ROWS"]) / f"rank{rank}.jsonl"
            with out.open("a") as file:
                file.write(json.dumps(rows) + "\n")
            import torch

            out.with_suffix(".threads").write_text(str(torch.get_num_threads()))
        return _load(self, rows)

    datamodule.WindowTensors.__getitem__ = _recording_load  # type: ignore[method-assign,assignment]
