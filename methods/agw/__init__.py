"""AGW baseline plugin (Ye et al., TPAMI 2021; mangye16/Cross-Modal-Re-ID-baseline)."""

from pathlib import Path

import harness.engine.schedulers  # noqa: F401  (registers WarmupMultiStepLR used by the configs)
import harness.models  # noqa: F401  (registers the parts configs/agw_sysu.py composes)
from harness.plugins import MethodSpec

METHOD = MethodSpec(
    name='agw',
    title='AGW',
    configs=Path(__file__).parent / 'configs',
    paper='Ye et al., "Deep Learning for Person Re-identification: A Survey and Outlook", '
    'TPAMI 2021',
    code='mangye16/Cross-Modal-Re-ID-baseline@e817a2672c1e14e8802617acb980a79520ef9545',
    converter='methods.agw.convert:convert',
    released='methods.agw.released:RELEASED',
)
