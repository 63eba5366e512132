"""Reusable model parts (trunks, necks, heads, losses), registered in ``harness.registry.MODELS``
by class name, the generic :class:`CrossModalityReID` composed of them, and the model contract."""

from harness.models import backbones, data_preprocessor, heads, losses, necks  # noqa: F401
from harness.models.base import VIReIDModel  # noqa: F401
from harness.models.cross_modality import CrossModalityReID  # noqa: F401
