"""CAJ (Ye et al., ICCV 2021): the model ``ICCV21_CAJ/train_ext.py --method adp`` trains is AGW's
``embed_net`` (``ICCV21_CAJ/model.py`` is the repository's root ``model.py`` unchanged,
mangye16/Cross-Modal-Re-ID-baseline@e817a26). So CAJ has no class of its own:
``configs/caj_sysu.py`` inherits AGW's composition of :class:`harness.models.CrossModalityReID`
and swaps the triplet loss for :class:`~methods.caj.losses.TripletLossADP` and the test feature
for the flip-averaged one.
:func:`CAJ` builds that model outside a run (the converter and the tests use it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.engine.config import method_config
from harness.models.cross_modality import CrossModalityReID
from harness.registry import MODELS

CONFIG = Path(__file__).parent / 'configs' / 'caj_sysu.py'


def CAJ(num_classes: int, **overrides: Any) -> CrossModalityReID:
    """The model of ``configs/caj_sysu.py`` (over its ``method_base``) with ``overrides`` merged
    into its ``model`` dict (nested dicts merge key by key)."""
    cfg = method_config(CONFIG)
    cfg.merge_from_dict(dict(model=overrides))
    return MODELS.build(dict(cfg.model.to_dict(), num_classes=num_classes))
