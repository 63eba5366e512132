"""Feature distributions: a seeded t-SNE of a few identities and cross-modality distance histograms,
each for the trained network beside the same network untrained.

A network that learned the task puts each identity's visible and infrared images in one cluster
(the modality gap closes) and pulls same-identity cross-modality distances below those between
identities; the histograms' overlap (the area both share, 0 = fully separated, 1 = identical)
says how far.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from protocols.datasets import INFO
from protocols.datasets.base import ImageRecord, Modality
from protocols.metrics import pairwise_distance

MAX_PER_ID_MODALITY = 40  # images of one identity in one modality in the t-SNE (seeded draw)
BINS = 60
EXACT_TSNE_MAX = 2000  # points; above it t-SNE uses the Barnes-Hut approximation
MARKERS = {Modality.VISIBLE: 'o', Modality.INFRARED: '^'}
# What the infrared modality is called in each dataset's figures.
INFRARED_NAME = {name: info.infrared for name, info in INFO.items()}


def select_identities(records: Sequence[ImageRecord], n: int, seed: int) -> list[int]:
    """``n`` test identities seen in both modalities, drawn with ``seed`` (sorted)."""
    if n < 1:
        raise ValueError(f'--ids must be >= 1, got {n}')
    both = sorted(
        {r.pid for r in records if r.modality == Modality.VISIBLE}
        & {r.pid for r in records if r.modality == Modality.INFRARED}
    )
    rng = np.random.default_rng(seed)
    return sorted(int(p) for p in rng.choice(both, size=min(n, len(both)), replace=False))


def select_images(
    records: Sequence[ImageRecord],
    pids: Sequence[int],
    seed: int,
    per_group: int = MAX_PER_ID_MODALITY,
) -> np.ndarray:
    """Row indices of the images of ``pids``, at most ``per_group`` per (identity, modality)."""
    rng = np.random.default_rng(seed)
    chosen = []
    for pid in pids:
        for modality in (Modality.VISIBLE, Modality.INFRARED):
            rows = np.array(
                [i for i, r in enumerate(records) if r.pid == pid and r.modality == modality]
            )
            if rows.size > per_group:
                rows = np.sort(rng.choice(rows, size=per_group, replace=False))
            chosen.extend(rows.tolist())
    return np.asarray(chosen, dtype=np.int64)


def embed(features: np.ndarray, seed: int, distance: str = 'cosine') -> np.ndarray:
    """2-D t-SNE (scikit-learn, PCA init, ``random_state=seed``) of ``features``, N x 2.

    Cosine runs embed the L2-normalised features, so the map shows the geometry the ranking uses.
    """
    from sklearn.manifold import TSNE

    x = np.asarray(features, dtype=np.float64)
    if distance == 'cosine':
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    n = x.shape[0]
    if n < 4:
        raise ValueError(f't-SNE needs at least 4 images, got {n}; choose more --ids')
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
    # Exact gradients: faster than Barnes-Hut at the few hundred points drawn here (measured 3x).
    tsne = TSNE(
        n_components=2,
        perplexity=perplexity,
        init='pca',
        random_state=seed,
        learning_rate='auto',
        method='exact' if n <= EXACT_TSNE_MAX else 'barnes_hut',
    )
    return tsne.fit_transform(x).astype(np.float64)


def cross_modality_distances(
    features: np.ndarray, records: Sequence[ImageRecord], distance: str = 'cosine'
) -> tuple[np.ndarray, np.ndarray]:
    """(same-identity, different-identity) distances of every visible-infrared test image pair."""
    pids = np.array([r.pid for r in records])
    vis = np.array([r.modality == Modality.VISIBLE for r in records])
    dist = pairwise_distance(features[~vis], features[vis], distance)
    same = pids[~vis][:, None] == pids[vis][None, :]
    return dist[same], dist[~same]


def overlap(same: np.ndarray, other: np.ndarray, bins: int = BINS) -> tuple[float, np.ndarray]:
    """(overlap coefficient of the two normalised histograms on common bins, the bin edges)."""
    lo, hi = float(min(same.min(), other.min())), float(max(same.max(), other.max()))
    edges = np.linspace(lo, hi if hi > lo else lo + 1e-6, bins + 1)
    p = np.histogram(same, edges)[0] / same.size
    q = np.histogram(other, edges)[0] / other.size
    return float(np.minimum(p, q).sum()), edges


def draw_embedding(
    panels: Sequence[tuple[str, np.ndarray]],
    records: Sequence[ImageRecord],
    out: str | Path,
    title: str,
    infrared: str = 'infrared',
) -> None:
    """Side-by-side scatter plots: colour = identity, marker = modality (``infrared``: its name)."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    pids = np.array([r.pid for r in records])
    mods = np.array([int(r.modality) for r in records])
    ids = sorted(set(pids.tolist()))
    cmap = plt.get_cmap('tab10' if len(ids) <= 10 else 'tab20')
    colour = {p: cmap(i % cmap.N) for i, p in enumerate(ids)}
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 5.2), squeeze=False)
    for ax, (name, xy) in zip(axes[0], panels):
        for modality, marker in MARKERS.items():
            for p in ids:
                m = (pids == p) & (mods == int(modality))
                ax.scatter(
                    xy[m, 0],
                    xy[m, 1],
                    s=22,
                    marker=marker,
                    color=colour[p],
                    alpha=0.85,
                    edgecolors='black' if modality == Modality.INFRARED else 'none',
                    linewidths=0.4,
                )
        ax.set_title(name, fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
    names = {Modality.VISIBLE: 'visible', Modality.INFRARED: infrared}
    handles = [
        Line2D([], [], ls='', marker=mk, color='grey', label=names[m]) for m, mk in MARKERS.items()
    ]
    handles += [Line2D([], [], ls='', marker='s', color=colour[p], label=f'id {p}') for p in ids]
    fig.legend(handles=handles, loc='center right', fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=12)
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    fig.savefig(out, dpi=150)
    plt.close(fig)


def draw_distances(
    panels: Sequence[tuple[str, np.ndarray, np.ndarray]],
    out: str | Path,
    title: str,
    distance: str,
    infrared: str = 'infrared',
) -> list[float]:
    """Histograms of same-identity vs different-identity cross-modality distances, one panel each;
    returns each panel's overlap."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False)
    overlaps = []
    for ax, (name, same, other) in zip(axes[0], panels):
        value, edges = overlap(same, other)
        overlaps.append(value)
        ax.hist(
            other,
            bins=edges,
            density=True,
            alpha=0.55,
            color='#d7191c',
            label=f'different identity ({other.size:,} pairs)',
        )
        ax.hist(
            same,
            bins=edges,
            density=True,
            alpha=0.55,
            color='#1a9641',
            label=f'same identity ({same.size:,} pairs)',
        )
        ax.set_ylim(top=ax.get_ylim()[1] * 1.3)  # room for the overlap and the legend
        ax.set_title(name, fontsize=11)
        ax.set_xlabel(f'{distance} distance, {infrared} to visible')
        ax.set_ylabel('density')
        ax.text(
            0.03,
            0.96,
            f'overlap {value:.2f}',
            transform=ax.transAxes,
            va='top',
            fontsize=11,
            bbox=dict(facecolor='white', edgecolor='grey', alpha=0.9),
        )
        ax.legend(fontsize=8, loc='upper right', frameon=True, framealpha=0.9)
    fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    fig.savefig(out, dpi=150)
    plt.close(fig)
    return overlaps
