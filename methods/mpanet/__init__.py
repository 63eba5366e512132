"""MPANet (Wu et al., CVPR 2021) as a vireid-bench plugin; see README.md."""

from pathlib import Path

from harness.plugins import MethodSpec

from . import hooks, model, sampler  # noqa: F401  (registration side effects)

METHOD = MethodSpec(
    name='mpanet',
    title='MPANet',
    configs=Path(__file__).parent / 'configs',
    paper='Q. Wu, P. Dai, J. Chen, C.-W. Lin, Y. Wu, F. Huang, B. Zhong, R. Ji, '
    '"Discover Cross-Modality '
    'Nuances for Visible-Infrared Person Re-Identification", CVPR 2021, pp. 4330-4339',
    code='DoubtedSteam/MPANet@f57fd5c',
    converter='methods.mpanet.convert:convert',
    released='methods.mpanet.released:RELEASED',
)
