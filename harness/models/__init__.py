"""Reusable model pieces (backbones, necks, losses) and the model contract."""
from harness.models import data_preprocessor  # noqa: F401  (registers ReIDDataPreprocessor)
from harness.models.base import VIReIDModel  # noqa: F401
