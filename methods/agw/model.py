"""AGW (Ye et al., TPAMI 2021) cross-modality baseline: the ``--method agw`` model of
mangye16/Cross-Modal-Re-ID-baseline @ e817a26 (``model.py`` ``embed_net``, ``train.py``,
``test.py``).

AGW has no class of its own: it is :class:`harness.models.CrossModalityReID` composed of registered
parts, written down once, in ``configs/agw_sysu.py``: a two-stream ResNet-50 (modality-specific
stems, shared layer1-4, last stride 1), non-local blocks after the last blocks of layer2/layer3,
GeM pooling (p = 3), a BNNeck head with a bias-free classifier; cross-entropy on the logits plus
the weighted regularised triplet on the pre-BN pooled feature; the L2-normalised BNNeck feature at
test (AGW's "fc" row, the reported one). :func:`AGW` builds that model outside a run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmengine.config import Config

from harness.models.cross_modality import CrossModalityReID
from harness.registry import MODELS

CONFIG = Path(__file__).parent / 'configs' / 'agw_sysu.py'


def AGW(num_classes: int, **overrides: Any) -> CrossModalityReID:
    """The model of ``configs/agw_sysu.py`` with ``overrides`` merged into its ``model`` dict
    (nested dicts merge key by key: ``backbone=dict(pretrained=False)`` keeps the other trunk
    settings). Used by the converter and the tests."""
    cfg = Config.fromfile(str(CONFIG))
    cfg.merge_from_dict(dict(model=overrides))
    return MODELS.build(dict(cfg.model.to_dict(), num_classes=num_classes))
