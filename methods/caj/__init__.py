"""CAJ plugin: "Channel Augmented Joint Learning for Visible-Infrared Recognition" (Ye et al.,
ICCV 2021; mangye16/Cross-Modal-Re-ID-baseline ``ICCV21_CAJ/``). See README.md."""

from pathlib import Path

import harness.engine.schedulers  # noqa: F401  (registers WarmupMultiStepLR used by the configs)
import harness.models  # noqa: F401  (registers the parts the configs compose)
from harness.plugins import MethodSpec
from methods.caj import losses, transforms  # noqa: F401  (register TripletLossADP, channel augs)

METHOD = MethodSpec(
    name='caj',
    title='CAJ',
    configs=Path(__file__).parent / 'configs',
    paper='M. Ye, W. Ruan, B. Du, M. Z. Shou, "Channel Augmented Joint Learning for '
    'Visible-Infrared Recognition", ICCV 2021, pp. 13567-13576',
    code='mangye16/Cross-Modal-Re-ID-baseline@e817a2672c1e14e8802617acb980a79520ef9545 '
    '(ICCV21_CAJ/)',
    converter='methods.caj.convert:convert',
    aliases=('CAJ',),
    released='methods.caj.released:RELEASED',
)
