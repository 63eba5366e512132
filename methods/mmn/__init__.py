"""MMN plugin: "Towards a Unified Middle Modality Learning for Visible-Infrared Person Re-ID"."""

from pathlib import Path

from harness.plugins import MethodSpec
from methods.mmn import model  # noqa: F401  (registers MMN in MODELS)

METHOD = MethodSpec(
    name='mmn',
    title='MMN',
    configs=Path(__file__).parent / 'configs',
    paper='Y. Zhang, Y. Yan, Y. Lu, H. Wang. Towards a Unified Middle Modality Learning for '
    'Visible-Infrared Person Re-Identification. ACM Multimedia 2021, pp. 788-796.',
    code='ZYK100/MMN@01d70d5',
    converter='methods.mmn.convert:convert',
    released='methods.mmn.released:RELEASED',
)
