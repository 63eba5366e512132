"""Per-part heads: one head for each part of a part-level feature ``[B, C, P]``."""

from __future__ import annotations

from torch import Tensor, nn

from harness.models.necks.parts import stack_parts
from harness.registry import MODELS


@MODELS.register_module()
class PartHeads(nn.ModuleList):
    """``num_parts`` heads built from one config; head ``k`` sees part ``k`` (``x[:, :, k]``).

    The part-level counterpart of a head: behind a part pooling (``HorizontalPartPooling``; PCB,
    Sun et al. ECCV 2018: one classifier per stripe) it gives ``[B, D, P]`` outputs, stacked
    along the last dimension (a head returning a tuple, as ``BNNeckHead``, gives a tuple of them).
    Parts share no weights. ``in_channels`` and ``num_classes``, when given (the generic model fills
    them in), reach every head. Keys are those of a ``ModuleList`` (``0.*``, ``1.*`` ...): MMN's
    stripe BNNecks and classifiers and the two-stream MHSA's part heads keep their checkpoint
    layout.
    """

    def __init__(
        self,
        head: dict,
        num_parts: int,
        in_channels: int | None = None,
        num_classes: int | None = None,
    ) -> None:
        if int(num_parts) < 1:
            raise ValueError(f'PartHeads needs num_parts >= 1, got {num_parts}')
        defaults = {
            k: v
            for k, v in dict(in_channels=in_channels, num_classes=num_classes).items()
            if v is not None
        }
        super().__init__(MODELS.build(head, default_args=defaults) for _ in range(int(num_parts)))

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, ...]:
        if x.dim() != 3 or x.shape[2] != len(self):
            raise ValueError(
                f'PartHeads of {len(self)} parts expects part features [B, C, {len(self)}], '
                f'got shape {tuple(x.shape)}'
            )
        outs = [head(part) for head, part in zip(self, x.unbind(dim=2))]
        if isinstance(outs[0], tuple):
            return tuple(stack_parts(list(values)) for values in zip(*outs))
        return stack_parts(outs)
