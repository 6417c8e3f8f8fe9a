"""The training comparison's outputs: the loss-curve figure and the per-step losses (``.npz``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FIGURE_NAME", "LOSSES_NAME", "write_training"]

FIGURE_NAME = "training_curves.png"
LOSSES_NAME = "training_losses.npz"


def write_training(out_dir: Path, result: Any) -> dict[str, str]:
    """Write the training figure and the per-step losses of ``result`` (a
    :class:`~npoptim.experiments.training.TrainingResult`) into ``out_dir``; return ``{name: file}``."""
    from .plotting import save_figure, training_curves_figure

    out_dir.mkdir(parents=True, exist_ok=True)
    save_figure(training_curves_figure(result.results, result.raw_loss, result.smoothed_loss), out_dir / FIGURE_NAME)
    np.savez_compressed(
        out_dir / LOSSES_NAME,
        **{f"raw_{name}": arr for name, arr in result.raw_loss.items()},
        **{f"smoothed_{name}": arr for name, arr in result.smoothed_loss.items()},
    )
    files = {"training_curves": FIGURE_NAME, "losses": LOSSES_NAME}
    result.results["files"] = files
    return files
