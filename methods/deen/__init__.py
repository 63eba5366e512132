"""DEEN plugin: "Diverse Embedding Expansion Network and Low-Light Cross-Modality Benchmark for
Visible-Infrared Person Re-identification" (Zhang & Wang, CVPR 2023); see README.md."""

from pathlib import Path

import harness.engine.schedulers  # noqa: F401  (registers WarmupMultiStepLR used by the configs)
from harness.plugins import MethodSpec
from methods.deen import model  # noqa: F401  (registers DEEN, CPMLoss, OrthogonalLoss)

METHOD = MethodSpec(
    name='deen',
    title='DEEN',
    aliases=('DEEN',),  # its rows in harness/tables/reported.csv
    configs=Path(__file__).parent / 'configs',
    paper='Y. Zhang, H. Wang. Diverse Embedding Expansion Network and Low-Light Cross-Modality '
    'Benchmark for Visible-Infrared Person Re-identification. CVPR 2023, pp. 2153-2162.',
    code='ZYK100/LLCM@886e27caca0f5dbd7424df1ea81b4ad02f95cfb6 (DEEN/)',
    converter='methods.deen.convert:convert',
    released='methods.deen.released:RELEASED',
)
