"""The count arguments MMN and MPANet check share one refusal (harness.models.base.check_count):
the config key, the minimum, why, and the value given."""

from __future__ import annotations

import pytest

from methods.mmn.model import MMN
from methods.mpanet.model import MPANet

TINY = dict(backbone=dict(pretrained=False, blocks=(1, 1, 1, 1)))


@pytest.mark.parametrize(
    'model, args, message',
    [
        (
            MMN,
            dict(num_classes=1),
            r'model.num_classes must be >= 2 \(training identities\), got 1',
        ),
        (MMN, dict(num_classes=4, num_stripes=0), 'model.num_stripes must be >= 1, got 0'),
        (MPANet, dict(num_classes=1), r'model.num_classes must be >= 2 \(training identities\)'),
        (
            MPANet,
            dict(num_classes=4, num_patterns=1),
            r'model.num_patterns must be >= 2 \(the overlap loss pairs them\), got 1',
        ),
    ],
)
def test_a_count_below_its_minimum_is_refused(model, args, message):
    with pytest.raises(ValueError, match=message):
        model(**args, **TINY)


@pytest.mark.parametrize(
    'model, args', [(MMN, dict(num_stripes=1)), (MPANet, dict(num_patterns=2))]
)
def test_the_minimum_itself_builds(model, args):
    assert isinstance(model(num_classes=2, **args, **TINY), model)
