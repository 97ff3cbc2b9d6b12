"""Training: the loop and its checkpoints, and building a run's model on its data."""

from untwine.train.trainer import (
    TrainingDiverged,
    TrainingInterrupted,
    build,
    resolve_device,
    sample_batch,
    train,
)

__all__ = [
    "TrainingDiverged",
    "TrainingInterrupted",
    "build",
    "resolve_device",
    "sample_batch",
    "train",
]
