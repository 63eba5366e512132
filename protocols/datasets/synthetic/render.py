"""Procedural pedestrians rendered in visible colour, near-infrared and thermal.

A person is a fixed set of body parts (head, hair, torso, arms, legs, shoes, optional hat and bag),
each painted with a *material*. A material has two tones (primary and secondary) mixed by a texture
pattern (stripes, checks, blotches, a chest logo), so an image is ``table[label, tone]``.

The modality gap is a knob, ``gap`` in [0, 1]: every material carries an RGB colour, and its
near-infrared and thermal tones are ``(1 - gap) * luma(colour) + gap * independent draw``. At 0 the
infrared image is the grey level of the visible one (up to camera, light and noise); at 1 the
infrared tones are drawn independently of the colours, so colour cannot be matched across
modalities and only shape, coarse texture layout and accessories are shared. Everything is
vectorised over the pixel grid; randomness comes only from the ``Generator`` passed in, so a caller
that derives one generator per (id, camera, image) gets output independent of generation order.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

RenderModality = Literal['visible', 'nir', 'thermal']

# Material labels. BACKGROUND must stay 0: label maps start zeroed.
BACKGROUND, SKIN, HAIR, UPPER, LOWER, SHOES, BAG, HAT = range(8)
N_MATERIALS = 8

# Texture kinds; LOGO is a chest print only seen from the front.
PLAIN, HSTRIPES, VSTRIPES, CHECKS, DIAGONAL, BLOTCH, LOGO = range(7)

VIEWS = ('front', 'back', 'side')


@dataclass(frozen=True)
class Person:
    """Identity: everything that stays the same across images and modalities (except colour)."""

    head_r: float
    shoulder: float  # half widths, in units of body height
    hip: float
    torso_len: float
    arm_r: float
    leg_r: float
    height: float  # fraction of the frame height the body fills at scale 1
    sleeve: str  # long | short
    lower: str  # trousers | shorts | skirt
    hair: str  # short | long | none
    hat: bool
    bag: str  # none | backpack | handbag | shoulder
    rgb: np.ndarray  # (N_MATERIALS, 2, 3) float32 in [0, 1]
    nir: np.ndarray  # (N_MATERIALS, 2) near-infrared reflectance: luma of rgb mixed by the gap knob
    thermal: np.ndarray  # (N_MATERIALS, 2) thermal intensity, likewise
    pattern: tuple[tuple[int, float, float], ...]  # per material: (kind, period, phase)
    blotch: np.ndarray  # (8, 4) bool: the person's own random print for BLOTCH textures
    logo: tuple[
        float, float, float, float
    ]  # chest print box: u centre, half width, v0, v1 (from shoulders)


@dataclass(frozen=True)
class Pose:
    """One image's body configuration and placement."""

    view: str
    facing: int  # +1 / -1: walking direction in side view, also which hand holds a handbag
    phase: float  # walking cycle
    stride: float
    swing: float
    dx: float  # horizontal offset, fraction of the frame width
    dy: float  # vertical offset, fraction of the frame height
    scale: float


@dataclass(frozen=True)
class Camera:
    """What one camera does to every image: geometry, light, optics, background."""

    size: tuple[int, int]  # (H, W)
    flip: bool
    shear: float
    scale: float  # body height / frame height
    views: tuple[float, float, float]  # probabilities of front, back, side
    gain: float
    cast: tuple[float, float, float]  # visible colour cast (ignored for infrared)
    gamma: float
    blur: float  # Gaussian blur radius in pixels
    noise: float  # std of additive noise, in [0, 1] intensity units
    bg_rgb: tuple[float, float, float]
    bg_ir: float
    floor: float  # where the floor starts, fraction of the frame height
    clutter: int  # number of random background boxes


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32)


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    # Garments are often grey/black/white: give low saturation a real share.
    s = rng.uniform(0.0, 0.25) if rng.random() < 0.3 else rng.uniform(0.35, 0.95)
    return _hsv(rng.random(), s, rng.uniform(0.12, 0.95))


def _second_tone(rng: np.random.Generator, first: np.ndarray) -> np.ndarray:
    # A secondary tone must differ enough from the first for the texture to show.
    for _ in range(8):
        c = _random_colour(rng)
        if np.abs(c - first).sum() > 0.5:
            return c
    return np.clip(1.0 - first, 0.0, 1.0).astype(np.float32)


def _ir_pair(
    rng: np.random.Generator, lo: float, hi: float, contrast: tuple[float, float]
) -> tuple[float, float]:
    a = rng.uniform(lo, hi)
    d = rng.uniform(*contrast) * (1 if rng.random() < 0.5 else -1)
    b = a + d
    if not 0.03 <= b <= 0.97:
        b = a - d
    return a, float(np.clip(b, 0.03, 0.97))


LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601 grey level of an RGB colour
TEXTURE_PERIOD = (0.06, 0.14)  # stripe/check period in body heights: 3-8 pixels at a 64-pixel input


def check_gap(gap: float) -> float:
    """``gap`` as a float in [0, 1], or a ValueError saying what it means."""
    if isinstance(gap, bool) or not isinstance(gap, (int, float)) or not 0.0 <= float(gap) <= 1.0:
        raise ValueError(
            f'gap must be a number in [0, 1] (0: infrared = grey level of the '
            f'colours, 1: infrared independent of colour), got {gap!r}'
        )
    return float(gap)


def sample_person(rng: np.random.Generator, gap: float = 1.0) -> Person:
    """Draw one identity; ``gap`` mixes its infrared tones between luma (0) and independent (1).

    Every draw is made whatever the gap, so two gaps give the same people, garments and poses:
    only the infrared tones differ.
    """
    gap = check_gap(gap)
    build = rng.uniform(0.85, 1.2)
    rgb = np.zeros((N_MATERIALS, 2, 3), np.float32)
    nir = np.zeros((N_MATERIALS, 2), np.float32)
    thermal = np.zeros((N_MATERIALS, 2), np.float32)

    skin = _hsv(rng.uniform(0.02, 0.1), rng.uniform(0.25, 0.6), rng.uniform(0.35, 0.95))
    rgb[SKIN] = skin
    hair = _hsv(rng.uniform(0.02, 0.12), rng.uniform(0.2, 0.7), rng.choice([0.08, 0.15, 0.3, 0.6]))
    rgb[HAIR] = hair
    shoes = _hsv(rng.random(), rng.uniform(0, 0.4), rng.choice([0.1, 0.2, 0.85]))
    rgb[SHOES] = shoes
    for m in (UPPER, LOWER, BAG, HAT):
        first = _random_colour(rng)
        rgb[m, 0] = first
        rgb[m, 1] = _second_tone(rng, first)

    # Independent infrared tones; mixed with the colours' grey level below, by the gap knob.
    nir[SKIN] = rng.uniform(0.55, 0.85)
    nir[HAIR] = rng.uniform(0.1, 0.55)
    nir[SHOES] = rng.uniform(0.1, 0.7)
    thermal[SKIN] = rng.uniform(0.82, 0.97)
    thermal[HAIR] = rng.uniform(0.45, 0.65)
    thermal[SHOES] = rng.uniform(0.3, 0.5)
    for m, (tlo, thi) in (
        (UPPER, (0.4, 0.75)),
        (LOWER, (0.35, 0.7)),
        (BAG, (0.15, 0.45)),
        (HAT, (0.4, 0.7)),
    ):
        nir[m] = _ir_pair(rng, 0.08, 0.95, (0.15, 0.45))
        thermal[m] = _ir_pair(rng, tlo, thi, (0.05, 0.15))

    kinds = {
        UPPER: (
            [PLAIN, HSTRIPES, VSTRIPES, CHECKS, DIAGONAL, BLOTCH, LOGO],
            [0.2, 0.16, 0.1, 0.14, 0.1, 0.12, 0.18],
        ),
        LOWER: ([PLAIN, VSTRIPES, CHECKS, BLOTCH], [0.55, 0.15, 0.15, 0.15]),
        BAG: ([PLAIN, HSTRIPES, CHECKS], [0.6, 0.2, 0.2]),
        HAT: ([PLAIN, HSTRIPES], [0.7, 0.3]),
    }
    pattern = []
    for m in range(N_MATERIALS):
        if m in kinds:
            options, p = kinds[m]
            pattern.append(
                (
                    int(rng.choice(options, p=p)),
                    float(rng.uniform(*TEXTURE_PERIOD)),
                    float(rng.random()),
                )
            )
        else:
            pattern.append((PLAIN, 1.0, 0.0))

    luma = rgb @ LUMA  # (N_MATERIALS, 2); row 0 (background) stays 0
    nir = ((1.0 - gap) * luma + gap * nir).astype(np.float32)
    thermal = ((1.0 - gap) * luma + gap * thermal).astype(np.float32)
    nir[BACKGROUND] = thermal[BACKGROUND] = 0.0

    shoulder = rng.uniform(0.1, 0.13) * build
    return Person(
        head_r=rng.uniform(0.055, 0.07),
        shoulder=shoulder,
        hip=rng.uniform(0.075, 0.1) * build,
        torso_len=rng.uniform(0.27, 0.33),
        arm_r=rng.uniform(0.021, 0.029) * build,
        leg_r=rng.uniform(0.03, 0.042) * build,
        height=rng.uniform(0.88, 0.98),
        sleeve=str(rng.choice(['long', 'short'])),
        lower=str(rng.choice(['trousers', 'shorts', 'skirt'], p=[0.55, 0.2, 0.25])),
        hair=str(rng.choice(['short', 'long', 'none'], p=[0.5, 0.35, 0.15])),
        hat=bool(rng.random() < 0.25),
        bag=str(rng.choice(['none', 'backpack', 'handbag', 'shoulder'], p=[0.35, 0.3, 0.2, 0.15])),
        rgb=rgb,
        nir=nir,
        thermal=thermal,
        pattern=tuple(pattern),
        blotch=rng.random((8, 4)) < 0.45,
        logo=(
            rng.uniform(-0.3, 0.3) * shoulder,
            rng.uniform(0.25, 0.5) * shoulder,
            rng.uniform(0.03, 0.07),
            rng.uniform(0.1, 0.16),
        ),
    )


def sample_pose(rng: np.random.Generator, camera: Camera) -> Pose:
    """Draw one image's pose; the camera decides which views are likely."""
    view = VIEWS[min(2, int(np.searchsorted(np.cumsum(camera.views), rng.random(), side='right')))]
    side = view == 'side'
    return Pose(
        view=view,
        facing=1 if rng.random() < 0.5 else -1,
        phase=rng.uniform(0, 2 * np.pi),
        stride=rng.uniform(0.05, 0.11) if side else rng.uniform(0.0, 0.035),
        swing=rng.uniform(0.04, 0.1) if side else rng.uniform(0.0, 0.03),
        dx=rng.uniform(-0.07, 0.07),
        dy=rng.uniform(-0.03, 0.03),
        scale=rng.uniform(0.93, 1.05),
    )


@lru_cache(maxsize=32)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return ys + 0.5, xs + 0.5


class _Canvas:
    """Label painting in body coordinates; each shape is evaluated only inside its pixel bounding
    box."""

    def __init__(self, camera: Camera, bh: float, top: float, xc: float):
        h, w = camera.size
        ys, xs = _grid(h, w)
        self.h, self.w, self.bh, self.top, self.xc = h, w, bh, top, xc
        self.shear, self.flip = camera.shear, camera.flip
        self.v = (ys - top) / bh
        u = (xs - xc) / bh + camera.shear * (self.v - 0.5)
        self.u = -u if camera.flip else u
        self.lab = np.zeros((h, w), np.int8)

    def window(self, u0: float, u1: float, v0: float, v1: float) -> tuple[slice, slice] | None:
        y0 = max(0, int(np.floor(self.top + v0 * self.bh)) - 1)
        y1 = min(self.h, int(np.ceil(self.top + v1 * self.bh)) + 1)
        if self.flip:
            u0, u1 = -u1, -u0
        s0, s1 = sorted((self.shear * (v0 - 0.5), self.shear * (v1 - 0.5)))
        x0 = max(0, int(np.floor(self.xc + (u0 - s1) * self.bh)) - 1)
        x1 = min(self.w, int(np.ceil(self.xc + (u1 - s0) * self.bh)) + 1)
        if y0 >= y1 or x0 >= x1:
            return None
        return slice(y0, y1), slice(x0, x1)

    def paint(self, material: int, shape: tuple, vmax: float = np.inf) -> None:
        """Paint ``shape`` (see the ``*_shape`` helpers), optionally only where ``v < vmax``."""
        kind, box, params = shape
        win = self.window(*box)
        if win is None:
            return
        u, v = self.u[win], self.v[win]
        mask = kind(u, v, *params)
        if vmax != np.inf:
            mask &= v < vmax
        self.lab[win][mask] = material


def _ellipse(u, v, cu, cv, ru, rv):
    return ((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2 <= 1.0


def _capsule(u, v, a, b, r):
    du, dv = b[0] - a[0], b[1] - a[1]
    pu, pv = u - a[0], v - a[1]
    t = (pu * du + pv * dv) * (1.0 / (du * du + dv * dv + 1e-9))
    np.maximum(t, 0.0, out=t)
    np.minimum(t, 1.0, out=t)
    pu -= t * du
    pv -= t * dv
    return pu * pu + pv * pv <= r * r


def _box(u, v, u0, u1, v0, v1):
    return (u >= u0) & (u <= u1) & (v >= v0) & (v <= v1)


def _trapezoid(u, v, v0, v1, hw0, hw1):
    t = (v - v0) / (v1 - v0)
    return (t >= 0) & (t <= 1) & (np.abs(u) <= hw0 + (hw1 - hw0) * t)


def ellipse_shape(cu, cv, ru, rv):
    return _ellipse, (cu - ru, cu + ru, cv - rv, cv + rv), (cu, cv, ru, rv)


def capsule_shape(a, b, r):
    box = (min(a[0], b[0]) - r, max(a[0], b[0]) + r, min(a[1], b[1]) - r, max(a[1], b[1]) + r)
    return _capsule, box, (a, b, r)


def box_shape(u0, u1, v0, v1):
    return _box, (u0, u1, v0, v1), (u0, u1, v0, v1)


def trapezoid_shape(v0, v1, hw0, hw1):
    hw = max(hw0, hw1)
    return _trapezoid, (-hw, hw, v0, v1), (v0, v1, hw0, hw1)


def _texture(
    kind: int, period: float, phase: float, u, v, person: Person, v_shoulder: float, view: str
):
    if kind == PLAIN:
        return None
    if kind == HSTRIPES:
        return (np.floor(v / period + phase) % 2).astype(bool)
    if kind == VSTRIPES:
        return (np.floor(u / period + phase) % 2).astype(bool)
    if kind == CHECKS:
        return ((np.floor(u / period + phase) + np.floor(v / period)) % 2).astype(bool)
    if kind == DIAGONAL:
        return (np.floor((u + v) / period + phase) % 2).astype(bool)
    if kind == BLOTCH:
        gi = np.clip(((v - v_shoulder) / 0.6 * 8).astype(np.int32), 0, 7)
        gj = np.clip(((u + 0.15) / 0.3 * 4).astype(np.int32), 0, 3)
        return person.blotch[gi, gj]
    if kind == LOGO:
        if view != 'front':
            return None
        cu, hw, v0, v1 = person.logo
        return _box(u, v, cu - hw, cu + hw, v_shoulder + v0, v_shoulder + v1)
    raise ValueError(f'unknown texture kind {kind}')


def person_labels(
    person: Person, pose: Pose, camera: Camera
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Material label map, tone map (0 primary / 1 secondary) and a shading coordinate for one
    image."""
    h, w = camera.size
    bh = camera.scale * person.height * pose.scale * h
    cv = _Canvas(camera, bh, top=(h - bh) * 0.5 + pose.dy * h, xc=w * (0.5 + pose.dx))
    paint = cv.paint

    p = person
    side = pose.view == 'side'
    f = pose.facing
    sw = p.shoulder * (0.6 if side else 1.0)
    hw = p.hip * (0.7 if side else 1.0)
    head_cv = p.head_r * 1.05
    v_s = 2 * p.head_r + 0.02  # shoulder line
    v_h = v_s + p.torso_len  # hip line
    v_foot = 0.965
    s = np.sin(pose.phase)

    # Behind the body: backpack seen from the side, long hair seen from the front.
    if p.bag == 'backpack' and side:
        c = -f * (sw + 0.035)
        paint(BAG, box_shape(c - 0.035, c + 0.035, v_s + 0.02, v_s + 0.2))
    if p.hair == 'long' and pose.view == 'front':
        paint(HAIR, box_shape(-p.head_r * 1.05, p.head_r * 1.05, head_cv, v_s + 0.1))

    # Legs, with the lower garment covering all, the top, or (skirt) none of them.
    if side:
        hip_pts = ((0.0, v_h), (0.0, v_h))
        feet = ((pose.stride * s, v_foot), (-pose.stride * s, v_foot))
    else:
        hip_pts = ((-hw * 0.5, v_h), (hw * 0.5, v_h))
        feet = ((-hw * 0.55 + pose.stride * s, v_foot), (hw * 0.55 - pose.stride * s, v_foot))
    for a, b in zip(hip_pts, feet):
        leg = capsule_shape(a, b, p.leg_r)
        if p.lower == 'trousers':
            paint(LOWER, leg)
        else:
            paint(SKIN, leg)
            if p.lower == 'shorts':
                paint(LOWER, leg, vmax=v_h + 0.18)
        paint(
            SHOES, ellipse_shape(b[0] + (0.02 * f if side else 0.0), v_foot, p.leg_r * 1.3, 0.022)
        )
    paint(LOWER, box_shape(-hw, hw, v_h - 0.01, v_h + 0.07))
    if p.lower == 'skirt':
        paint(LOWER, trapezoid_shape(v_h - 0.01, v_h + 0.22, hw, hw * 1.6))

    # Torso, then arms (long sleeves: garment to the wrist; short: to the elbow).
    paint(UPPER, trapezoid_shape(v_s, v_h, sw, hw * 1.05))
    paint(UPPER, ellipse_shape(0.0, v_s + 0.015, sw, 0.03))  # rounded shoulders
    arm_len = 0.36
    if side:
        hands = [((pose.swing * s * f, v_s + arm_len), (0.0, v_s + 0.02))]
    else:
        hands = [
            ((-(sw + 0.03) + pose.swing * s, v_s + arm_len), (-(sw - 0.01), v_s + 0.02)),
            (((sw + 0.03) - pose.swing * s, v_s + arm_len), ((sw - 0.01), v_s + 0.02)),
        ]
    for hand, shoulder in hands:
        arm = capsule_shape(shoulder, hand, p.arm_r)
        if p.sleeve == 'long':
            paint(UPPER, arm)
        else:
            paint(SKIN, arm)
            paint(UPPER, arm, vmax=v_s + 0.12)
        paint(SKIN, ellipse_shape(hand[0], hand[1] + 0.01, p.arm_r * 1.1, 0.02))

    # Bags in front of the torso.
    if p.bag == 'backpack' and pose.view == 'back':
        paint(BAG, box_shape(-sw * 0.8, sw * 0.8, v_s + 0.03, v_s + 0.22))
    elif p.bag == 'backpack' and pose.view == 'front':
        for c in (-sw * 0.55, sw * 0.55):
            paint(BAG, box_shape(c - 0.012, c + 0.012, v_s, v_s + 0.18))
    elif p.bag == 'handbag':
        hand = hands[0][0] if side or f < 0 else hands[-1][0]
        paint(BAG, box_shape(hand[0] - 0.045, hand[0] + 0.045, hand[1] + 0.005, hand[1] + 0.1))
    elif p.bag == 'shoulder':
        paint(BAG, capsule_shape((-sw * 0.7, v_s), (hw * 0.9, v_h - 0.02), 0.01))
        paint(BAG, box_shape(hw * 0.6, hw * 0.6 + 0.09, v_h - 0.05, v_h + 0.05))

    # Head, hair, hat.
    r = p.head_r
    paint(SKIN, ellipse_shape(0.0, head_cv, r * 0.82, r))
    if p.hair != 'none':
        if pose.view == 'back':
            paint(HAIR, ellipse_shape(0.0, head_cv, r * 0.86, r * 1.04))
            if p.hair == 'long':
                paint(HAIR, box_shape(-r * 0.95, r * 0.95, head_cv, v_s + 0.12))
        else:
            cap = ellipse_shape(
                -0.2 * r * f if side else 0.0, head_cv - 0.25 * r, r * 0.9, r * 0.85
            )
            paint(HAIR, cap, vmax=head_cv - 0.1 * r)
            if side:
                paint(HAIR, ellipse_shape(-0.45 * r * f, head_cv, r * 0.5, r * 0.8))
    if p.hat:
        paint(HAT, ellipse_shape(0.0, head_cv - 0.55 * r, r * 0.95, r * 0.6))
        paint(HAT, box_shape(-r * 1.25, r * 1.25, head_cv - 0.35 * r, head_cv - 0.2 * r))

    lab, u, v = cv.lab, cv.u, cv.v
    tone = np.zeros((h, w), np.int8)
    flat_lab, flat_tone = lab.ravel(), tone.ravel()
    for m in (UPPER, LOWER, BAG, HAT):
        kind, period, phase = p.pattern[m]
        if kind == PLAIN:
            continue
        at = np.flatnonzero(flat_lab == m)  # texture only where the material is
        if at.size == 0:
            continue
        t = _texture(kind, period, phase, u.ravel()[at], v.ravel()[at], p, v_s, pose.view)
        if t is not None:
            flat_tone[at[t]] = 1
    return lab, tone, u / (sw * 1.4)


def _background(rng: np.random.Generator, camera: Camera, modality: RenderModality) -> np.ndarray:
    h, w = camera.size
    ys, _ = _grid(h, w)
    if modality == 'visible':
        base = np.asarray(camera.bg_rgb, np.float32)
        jitter = rng.uniform(-0.06, 0.06, 3).astype(np.float32)
    else:
        base = np.full(1, camera.bg_ir, np.float32)
        jitter = rng.uniform(-0.05, 0.05, 1).astype(np.float32)
    c = base + jitter
    img = (c * (0.9 + 0.2 * ys[:, :1] / h)[..., None]).repeat(w, axis=1)  # vertical light gradient
    floor = int(camera.floor * h)
    img[floor:] = img[floor:] * 0.75 + 0.1
    if camera.clutter:
        boxes = rng.random((camera.clutter, 4))
        colours = 0.5 * c + 0.5 * rng.uniform(0.1, 0.9, (camera.clutter, c.size)).astype(np.float32)
        for (fy, fx, fh, fw), colour in zip(boxes, colours):
            y0, x0 = int(fy * (h - 4)), int(fx * (w - 4))
            img[y0 : y0 + 4 + int(fh * (h // 3 - 4)), x0 : x0 + 4 + int(fw * (w // 2 - 4))] = colour
    return img


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian-like blur by repeated 3-tap passes (variance 2w per pass), edges
    replicated."""
    passes = int(np.ceil(sigma * sigma / (2 * 0.3)))
    w = np.float32(sigma * sigma / (2 * passes))
    c = np.float32(1.0) - 2 * w
    for _ in range(passes):
        pad = np.concatenate([img[:1], img, img[-1:]], axis=0)
        img = img * c + (pad[:-2] + pad[2:]) * w
        pad = np.concatenate([img[:, :1], img, img[:, -1:]], axis=1)
        img = img * c + (pad[:, :-2] + pad[:, 2:]) * w
    return img


@lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    # Fixed table of normal deviates; images read it at random offsets (much cheaper than drawing).
    return np.random.default_rng(20240601).standard_normal(1 << 20, dtype=np.float32)


def _noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    bank = _noise_bank()
    size = int(np.prod(shape))
    start = int(rng.integers(0, bank.size - size))
    return bank[start : start + size].reshape(shape)


@lru_cache(maxsize=16)
def _gamma_lut(gamma: float) -> np.ndarray:
    return (255.0 * (np.arange(256) / 255.0) ** gamma + 0.5).astype(np.uint8)


def render(
    person: Person,
    pose: Pose,
    camera: Camera,
    modality: RenderModality,
    rng: np.random.Generator,
    labels: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Render one (H, W, 3) uint8 image; infrared modalities give grey images in 3 equal channels.

    ``labels`` may pass a precomputed :func:`person_labels` result (e.g. to render a visible/thermal
    pair of the same instant); ``rng`` drives background, light jitter and noise only.
    """
    lab, tone, ub = labels if labels is not None else person_labels(person, pose, camera)
    body = lab > 0
    if modality == 'visible':
        table = person.rgb
    elif modality == 'nir':
        table = person.nir[..., None]
    elif modality == 'thermal':
        table = person.thermal[..., None]
    else:
        raise ValueError(f"modality must be 'visible', 'nir' or 'thermal', got {modality!r}")
    img = _background(rng, camera, modality)
    channels = table.shape[-1]
    # Row 0 (background) of every table is zero, so fg is zero off the body.
    fg = np.take(table.reshape(-1, channels), lab.astype(np.intp) * 2 + tone, axis=0)
    # Rough cylindrical shading: the body darkens away from its vertical axis.
    shade = 1.0 - 0.3 * ub * ub
    np.maximum(shade, 0.65, out=shade)
    img *= (~body)[..., None]
    img += fg * shade[..., None]

    gain = camera.gain * rng.uniform(0.9, 1.1)
    if modality == 'visible':
        img *= np.asarray(camera.cast, np.float32) * np.float32(gain)
    else:
        img *= np.float32(gain)
    if camera.blur > 0:
        img = _blur(img, camera.blur)
    if camera.noise > 0:
        img += _noise(rng, img.shape) * np.float32(camera.noise)
    if channels == 1:
        img = img[..., 0]
    np.clip(img, 0.0, 1.0, out=img)
    out = _gamma_lut(camera.gamma)[(img * 255.0 + 0.5).astype(np.uint8)]
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=2)
    return out
