"""A registered model on series of odd level or sign, and what its scaling changes on M4.

For a model version (default `models:/stackcast@champion`, the `make demo` model), prints:

1. Per synthetic series (daily sine of amplitude 3 at several levels, constants, a noisy
   negative one): the forecast MAE over one horizon under the model's own scaling, under
   `mean_abs` with the same weights (the scaling before `mean_abs_centred`), and seasonal
   naive's.
2. On the bundled M4 subset the version trained on: how many windows hold a value <= 0 and
   the largest forecast difference between the two scalings, then both test score rows.

    .venv/bin/python bench/scaling.py --model models:/stackcast@champion
"""

from __future__ import annotations

import argparse

import mlflow
import numpy as np
import torch

from stackcast.models.config import Scaling
from stackcast.models.forecaster import StackedRNNForecaster
from stackcast.models.window import model_inputs
from stackcast.training.evaluate import (
    OURS,
    TrainedOn,
    evaluation_data,
    run_params,
    score_against_baselines,
)
from stackcast.training.tracking import configure_tracking

CASES = {  # name -> (level, amplitude, noise std)
    "shifted +20 (reference)": (15.0, 3.0, 0.0),
    "negative -5": (-5.0, 3.0, 0.0),
    "zero-crossing": (0.0, 3.0, 0.0),
    "near-zero level 0.5": (0.5, 3.0, 0.0),
    "constant 7": (7.0, 0.0, 0.0),
    "constant 0": (0.0, 0.0, 0.0),
    "constant -3": (-3.0, 0.0, 0.0),
    "negative -5, noise 1": (-5.0, 3.0, 1.0),
}


def forecast(network: StackedRNNForecaster, scaling: Scaling, windows: np.ndarray) -> np.ndarray:
    """`network`'s forecasts of `windows` (S, T) with its scaling replaced by `scaling`."""
    config = network.config
    network.config = config.model_copy(update={"scaling": scaling})
    try:
        with torch.inference_mode():
            return network(torch.from_numpy(windows.astype(np.float32))).double().numpy()
    finally:
        network.config = config


def odd_series(network: StackedRNNForecaster) -> None:
    """Part 1: the synthetic series table."""
    config = network.config
    t = np.arange(config.input_size + config.horizon)
    m = config.season_length or 1
    print(f"{'series':26} {config.scaling:>17} {'mean_abs':>9} {'sNaive':>7}   (MAE)")
    for name, (level, amp, noise) in CASES.items():
        rng = np.random.default_rng(0)
        y = level + amp * np.sin(2 * np.pi * t / m) + noise * rng.normal(size=t.size)
        history, future = y[: config.input_size], y[config.input_size :]
        snaive = np.resize(history[-m:], config.horizon)
        errors = [
            np.abs(forecast(network, s, history[None])[0] - future).mean()
            for s in (config.scaling, "mean_abs")
        ]
        print(f"{name:26} {errors[0]:17.3f} {errors[1]:9.3f} {np.abs(snaive - future).mean():7.3f}")


def m4_effect(model_uri: str, network: StackedRNNForecaster) -> None:
    """Part 2: the two scalings on the M4 subset the version trained on."""
    python_model = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    info = mlflow.models.get_model_info(model_uri)
    trained = TrainedOn.of(getattr(python_model, "data_contract", None), run_params(info.run_id))
    data = evaluation_data(trained, None, None, None, False)
    windows = model_inputs(data.train, network.config)
    horizon = len(data.test[0])
    odd = int((windows <= 0).any(axis=1).sum())
    print(f"\n{data.description}: {odd} of {len(windows)} windows hold a value <= 0")
    ours = forecast(network, network.config.scaling, windows)[:, :horizon]
    before = forecast(network, "mean_abs", windows)[:, :horizon]
    print(f"largest forecast difference between the scalings: {np.abs(ours - before).max():.3g}")
    for label, values in ((network.config.scaling, ours), ("mean_abs", before)):
        table = score_against_baselines(data.train, data.test, {OURS: values}, data.seasonality)
        row = table.loc[OURS]
        print(f"test, {label:17} sMAPE {row.sMAPE:.3f}  MASE {row.MASE:.3f}  OWA {row.OWA:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models:/stackcast@champion")
    parser.add_argument("--no-m4", action="store_true", help="Only the synthetic series.")
    args = parser.parse_args()
    configure_tracking()
    network: StackedRNNForecaster = (
        mlflow.pyfunc.load_model(args.model).unwrap_python_model().model.cpu().eval()
    )
    print(f"{args.model}: {network.config.cell}, scaling {network.config.scaling}")
    odd_series(network)
    if not args.no_m4:
        m4_effect(args.model, network)


if __name__ == "__main__":
    main()
