"""Registered losses that more than one method can use.

A loss is a module called as ``loss(x, labels)``, plus ``modality=`` (per-row codes) when its
class sets ``takes_modality = True``. It returns a scalar, or ``(scalar, n_correct)`` where
``n_correct`` counts the anchors it ranks correctly (logged as an accuracy). Models call them
through the loss set of their config (:mod:`harness.models.loss_set`, which also describes
``takes_labels`` and ``per_sample``).
"""

from harness.models.losses.center_cluster import CenterClusterLoss, center_cluster_loss
from harness.models.losses.hetero_center import (
    HeteroCenterLoss,
    HeteroCenterTripletLoss,
    hetero_center_loss,
    hetero_center_triplet_loss,
)
from harness.models.losses.identity import IdentityLoss
from harness.models.losses.triplet import (
    BatchHardTripletLoss,
    WeightedRegularizedTriplet,
    euclidean_dist,
)

__all__ = [
    'BatchHardTripletLoss',
    'CenterClusterLoss',
    'HeteroCenterLoss',
    'HeteroCenterTripletLoss',
    'IdentityLoss',
    'WeightedRegularizedTriplet',
    'center_cluster_loss',
    'euclidean_dist',
    'hetero_center_loss',
    'hetero_center_triplet_loss',
]
