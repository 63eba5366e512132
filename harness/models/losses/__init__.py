"""Reusable metric-learning losses."""
from harness.models.losses.triplet import (BatchHardTripletLoss, WeightedRegularizedTriplet,
                                           euclidean_dist)

__all__ = ['BatchHardTripletLoss', 'WeightedRegularizedTriplet', 'euclidean_dist']
