"""Training: the loop and its checkpoints."""

from untwine.train.trainer import resolve_device, sample_batch, train

__all__ = ["resolve_device", "sample_batch", "train"]
