"""Data pipeline: decode-once cache, tensor transforms, samplers, datasets for the Runner."""

from harness.data import datasets, samplers, transforms  # noqa: F401  (register into harness registries)
