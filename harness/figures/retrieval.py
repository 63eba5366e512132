"""Ranked-retrieval grids: queries beside their top-k gallery images, framed by ground truth.

One row per query: the query (blue frame), then its gallery list best first, each image framed
green when it shows the query's identity and red when not, with its rank and distance under it.
The lists come from :mod:`protocols.retrieval`, so rank k here is rank k of the run's CMC. Drawn
with PIL at pixel level (as torchreid's ``visrank``), so a test can check every frame and image.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from protocols.metrics import QueryRanks
from protocols.retrieval import RankedList, RetrievalSetting
from protocols.trials import LLCM_SETTING_TEXT

PICKS = ('random', 'hardest', 'failures')
CORRECT = (0, 160, 60)
WRONG = (215, 25, 30)
QUERY = (40, 90, 200)
BACKGROUND = (255, 255, 255)
TEXT = (20, 20, 20)
FRAME = 4  # frame width, pixels
GAP = 6  # between gallery images
QUERY_GAP = 22  # between the query and its list
MARGIN = 12
IMAGE_HEIGHT = 128  # every image is shown at this height, at the network's input aspect
CSV_FIELDS = (
    'query',
    'query_path',
    'query_pid',
    'query_cam',
    'first_match_rank',
    'rank',
    'gallery_path',
    'gallery_pid',
    'gallery_cam',
    'distance',
    'correct',
)


def pick_queries(
    ranks: QueryRanks, n: int, how: str = 'random', seed: int = 0, pids: np.ndarray | None = None
) -> list[int]:
    """Indices of ``n`` queries that have a match in their gallery, chosen reproducibly.

    ``random``: a seeded draw; ``hardest``: the latest first correct match (then the lowest AP),
    one query per identity when the query ``pids`` are given (else one hard identity's similar
    images fill the grid); ``failures``: a seeded draw among the queries whose rank-1 image is
    wrong. Fewer than ``n`` when fewer qualify.
    """
    if how not in PICKS:
        raise ValueError(f'--pick must be one of {", ".join(PICKS)}, got {how!r}')
    if n < 1:
        raise ValueError(f'--queries must be >= 1, got {n}')
    valid = np.flatnonzero(ranks.valid)
    if how == 'hardest':
        order = sorted(valid, key=lambda q: (-ranks.first_rank[q], ranks.ap[q], q))
        if pids is not None:
            first_of_id = {}
            for q in order:
                first_of_id.setdefault(int(pids[q]), int(q))
            order = sorted(first_of_id.values(), key=order.index)
        return [int(q) for q in order[:n]]
    pool = valid[ranks.first_rank[valid] > 1] if how == 'failures' else valid
    rng = np.random.default_rng(seed)
    return sorted(int(q) for q in rng.choice(pool, size=min(n, pool.size), replace=False))


@lru_cache(maxsize=4)
def font(size: int) -> ImageFont.ImageFont:
    """DejaVu Sans (shipped with matplotlib), the font of the other figures; PIL's own otherwise."""
    try:
        from matplotlib import font_manager

        return ImageFont.truetype(
            font_manager.findfont('DejaVu Sans', fallback_to_default=True), size
        )
    except (OSError, ValueError):
        return ImageFont.load_default()


def load_image(path: Path, size: tuple[int, int]) -> Image.Image:
    """The image at ``path`` as RGB, resized to ``size`` (height, width)."""
    with Image.open(path) as im:
        return im.convert('RGB').resize((size[1], size[0]), Image.BILINEAR)


@dataclass(frozen=True)
class Cell:
    """Where one image sits in the grid: ``box`` is the frame's outer box (x0, y0, x1, y1)."""

    row: int
    col: int  # 0 = the query, k = rank k
    path: str  # relative to the dataset root
    box: tuple[int, int, int, int]
    colour: tuple[int, int, int]


def render_grid(
    setting: RetrievalSetting,
    lists: Sequence[RankedList],
    root: str | Path,
    title: str,
    image_size: tuple[int, int],
) -> tuple[Image.Image, list[Cell]]:
    """The grid image and the place of every image in it (``image_size``: shown (H, W))."""
    if not lists:
        raise ValueError('no query to draw: no query of this setting has a match in its gallery')
    root = Path(root)
    h, w = image_size
    small, big = font(11), font(13)
    labels = [_labels(setting, ranked) for ranked in lists]
    text_w = max(_width(line, small) for rows in labels for pair in rows for line in pair)
    col_w = max(w + 2 * FRAME, text_w + 2)
    cell_h = h + 2 * FRAME + 2 * 14 + 8
    topk = max(len(ranked.gallery) for ranked in lists)
    header = [
        title,
        _setting_text(setting),
        f'green frame: same identity as the query, red: another identity; '
        f'under each image: rank: {setting.distance} distance',
    ]
    head_h = len(header) * 18 + 8
    width = 2 * MARGIN + col_w + QUERY_GAP + topk * col_w + (topk - 1) * GAP
    width = max(width, 2 * MARGIN + max(_width(line, big) for line in header))
    height = head_h + MARGIN + len(lists) * cell_h + MARGIN
    canvas = Image.new('RGB', (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(header):
        draw.text((MARGIN, MARGIN + i * 18), line, fill=TEXT, font=big)
    cells = []
    for row, (ranked, rows) in enumerate(zip(lists, labels)):
        y = head_h + MARGIN + row * cell_h
        entries = [(setting.query[ranked.query].path, QUERY)]
        entries += [
            (setting.gallery[g].path, CORRECT if ok else WRONG)
            for g, ok in zip(ranked.gallery, ranked.correct)
        ]
        for col, ((path, colour), lines) in enumerate(zip(entries, rows)):
            x = MARGIN + (0 if col == 0 else col_w + QUERY_GAP + (col - 1) * (col_w + GAP))
            x0 = x + (col_w - w - 2 * FRAME) // 2
            box = (x0, y, x0 + w + 2 * FRAME, y + h + 2 * FRAME)
            draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=colour)
            canvas.paste(load_image(root / path, image_size), (x0 + FRAME, y + FRAME))
            for k, line in enumerate(lines):
                tx = x + (col_w - _width(line, small)) // 2
                draw.text((tx, box[3] + 3 + 14 * k), line, fill=TEXT, font=small)
            cells.append(Cell(row, col, path, box, colour))
    return canvas, cells


def _width(text: str, fnt: ImageFont.ImageFont) -> int:
    left, _, right, _ = fnt.getbbox(text)
    return int(right - left)


def _setting_text(setting: RetrievalSetting) -> str:
    if setting.dataset == 'llcm':
        return f'LLCM {setting.setting} draw {setting.trial} ({LLCM_SETTING_TEXT[setting.setting]})'
    if setting.dataset == 'sysu':
        return (
            f'SYSU-MM01 {setting.setting} gallery trial {setting.trial} (infrared query, visible '
            f'gallery; camera-3 queries skip camera 2)'
        )
    way = (
        'visible query, thermal gallery'
        if setting.setting == 'v2t'
        else 'thermal query, visible gallery'
    )
    return f'RegDB split {setting.trial} {setting.setting} ({way})'


def _labels(setting: RetrievalSetting, ranked: RankedList) -> list[tuple[str, str]]:
    q = setting.query[ranked.query]
    first = ranked.first_match
    rows = [
        (f'query id {q.pid}', f'cam {q.cam}, 1st hit {first}' if first else f'cam {q.cam}, no hit')
    ]
    for k, (g, d) in enumerate(zip(ranked.gallery, ranked.distances), start=1):
        rec = setting.gallery[g]
        rows.append((f'{k}: {d:.3f}', f'id {rec.pid} cam {rec.cam}'))
    return rows


def write_csv(path: str | Path, setting: RetrievalSetting, lists: Sequence[RankedList]) -> Path:
    """One row per shown gallery image."""
    path = Path(path)
    with path.open('w', newline='') as fh:
        out = csv.writer(fh)
        out.writerow(CSV_FIELDS)
        for ranked in lists:
            q = setting.query[ranked.query]
            for k, (g, d, ok) in enumerate(
                zip(ranked.gallery, ranked.distances, ranked.correct), start=1
            ):
                rec = setting.gallery[g]
                out.writerow(
                    [
                        ranked.query,
                        q.path,
                        q.pid,
                        q.cam,
                        ranked.first_match,
                        k,
                        rec.path,
                        rec.pid,
                        rec.cam,
                        f'{d:.6f}',
                        int(ok),
                    ]
                )
    return path


def draw_retrieval(
    setting: RetrievalSetting,
    root: str | Path,
    out_png: str | Path,
    out_csv: str | Path,
    title: str,
    queries: int = 8,
    topk: int = 10,
    pick: str = 'random',
    seed: int = 0,
    input_size: Sequence[int] = (256, 128),
) -> dict:
    """Draws the grid and writes its CSV; returns what the manifest says about it."""
    pids = np.array([r.pid for r in setting.query])
    chosen = pick_queries(setting.query_ranks(), queries, pick, seed, pids)
    if not chosen:
        what = 'has a wrong rank-1 image' if pick == 'failures' else 'has a match in its gallery'
        raise ValueError(f'no query of {setting.setting} {what}; try another --pick')
    lists = setting.ranked(chosen, topk)
    size = (IMAGE_HEIGHT, max(8, round(IMAGE_HEIGHT * input_size[1] / input_size[0])))
    canvas, _ = render_grid(setting, lists, root, title, size)
    canvas.save(out_png)
    write_csv(out_csv, setting, lists)
    hits = [r.first_match for r in lists]
    return dict(
        queries=[setting.query[q].path for q in chosen],
        pick=pick,
        topk=topk,
        rank1_correct=sum(h == 1 for h in hits),
        first_match_ranks=hits,
    )
