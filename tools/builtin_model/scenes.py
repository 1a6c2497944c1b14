"""Procedural training scenes for the built-in model: flat shapes on flat or gradient backgrounds.

Every scene is a pure function of (seed, index), so the dataset is reproducible without files.
Some (colour, shape, background colour) triples never appear in training; the evaluation
prompts are drawn from exactly those triples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIZE = 128

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 30),
    "purple": (140, 40, 180),
    "orange": (245, 140, 20),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
}
SHAPES = ("circle", "square", "triangle", "star", "ring", "cross")
SIZES = {"small": 18.0, "large": 30.0}
SIZE_WORDS = {"small": ("small", "small", "little"), "large": ("large", "large", "big")}
POSITIONS: dict[str, tuple[float, float]] = {
    "centre": (64.0, 64.0),
    "left": (34.0, 64.0),
    "right": (94.0, 64.0),
    "top": (64.0, 34.0),
    "bottom": (64.0, 94.0),
}
POSITION_PHRASES = {
    "centre": ("in the centre", "in the center", "in the middle"),
    "left": ("on the left",),
    "right": ("on the right",),
    "top": ("at the top",),
    "bottom": ("at the bottom",),
}
COLOUR_NAMES = tuple(COLOURS)


def is_held_out(colour: str, shape: str, background: str) -> bool:
    """Whether this (foreground colour, shape, background colour) triple is kept out of training."""
    c, s, b = COLOUR_NAMES.index(colour), SHAPES.index(shape), COLOUR_NAMES.index(background)
    return colour != background and (c * 7 + s * 3 + b * 5) % 9 == 0


def held_out_triples() -> list[tuple[str, str, str]]:
    """All held-out (colour, shape, background) triples, in a fixed order."""
    return [
        (c, s, b)
        for c in COLOUR_NAMES
        for s in SHAPES
        for b in COLOUR_NAMES
        if is_held_out(c, s, b)
    ]


@dataclass(frozen=True)
class Shape:
    """One shape in a scene."""

    kind: str
    colour: str
    size: str
    position: str


@dataclass(frozen=True)
class Scene:
    """A scene description; `render` turns it into pixels and `caption` into words."""

    shapes: tuple[Shape, ...]
    background: str
    gradient: bool


def _shape_mask(kind: str, cx: float, cy: float, r: float, ss: int = 2) -> np.ndarray:
    """Anti-aliased coverage (SIZE x SIZE, 0..1) of one shape, by supersampling."""
    n = SIZE * ss
    coords = (np.arange(n, dtype=np.float32) + 0.5) / ss
    x = coords[None, :] - cx
    y = coords[:, None] - cy
    if kind == "circle":
        inside = x * x + y * y <= r * r
    elif kind == "ring":
        d2 = x * x + y * y
        inside = (d2 <= r * r) & (d2 >= (0.55 * r) ** 2)
    elif kind == "square":
        s = 0.82 * r
        inside = (np.abs(x) <= s) & (np.abs(y) <= s)
    elif kind == "cross":
        s, w = 0.95 * r, 0.32 * r
        inside = ((np.abs(x) <= s) & (np.abs(y) <= w)) | ((np.abs(x) <= w) & (np.abs(y) <= s))
    elif kind in ("triangle", "star"):
        inside = _polygon_inside(_polygon(kind, r), x, y)
    else:
        raise ValueError(f"unknown shape {kind!r}")
    return inside.reshape(SIZE, ss, SIZE, ss).mean(axis=(1, 3))


def _polygon(kind: str, r: float) -> np.ndarray:
    if kind == "triangle":
        ang = np.deg2rad([-90.0, 30.0, 150.0])
        pts = np.stack([np.cos(ang), np.sin(ang)], 1) * r * 1.1
        return pts + np.array([0.0, 0.15 * r])
    ang = np.deg2rad(-90.0 + 36.0 * np.arange(10))
    rad = np.where(np.arange(10) % 2 == 0, r * 1.1, r * 0.45)
    return np.stack([np.cos(ang) * rad, np.sin(ang) * rad], 1)


def _polygon_inside(poly: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test, vectorised over the grid."""
    x, y = np.broadcast_arrays(x, y)
    inside = np.zeros(x.shape, dtype=bool)
    for (x0, y0), (x1, y1) in zip(poly, np.roll(poly, -1, axis=0), strict=True):
        if y0 == y1:
            continue
        crosses = (y0 > y) != (y1 > y)
        xint = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (x < xint)
    return inside


def _background(colour: str, gradient: bool, jitter: np.ndarray) -> np.ndarray:
    top = np.clip(np.array(COLOURS[colour], np.float32) + jitter, 0, 255)
    if not gradient:
        return np.broadcast_to(top, (SIZE, SIZE, 3)).copy()
    bottom = np.full(3, 90.0, np.float32) if colour == "black" else top * 0.5
    t = np.linspace(0.0, 1.0, SIZE, dtype=np.float32)[:, None, None]
    return np.broadcast_to(top * (1 - t) + bottom * t, (SIZE, SIZE, 3)).copy()


def render(scene: Scene, rng: np.random.Generator | None = None) -> np.ndarray:
    """Pixels of a scene as uint8 HxWx3; `rng` adds small colour and placement jitter."""
    rng = rng or np.random.default_rng(0)
    img = _background(scene.background, scene.gradient, rng.uniform(-10, 10, 3))
    for shape in scene.shapes:
        cx, cy = POSITIONS[shape.position]
        cx, cy = cx + rng.uniform(-5, 5), cy + rng.uniform(-5, 5)
        r = SIZES[shape.size] * rng.uniform(0.9, 1.1)
        cov = _shape_mask(shape.kind, cx, cy, r)[..., None]
        colour = np.clip(np.array(COLOURS[shape.colour], np.float32) + rng.uniform(-10, 10, 3), 0, 255)
        img = img * (1 - cov) + colour * cov
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _shape_phrase(shape: Shape, rng: np.random.Generator, full: bool) -> str:
    words = []
    if full or rng.random() < 0.6:
        words.append(str(rng.choice(SIZE_WORDS[shape.size])))
    words += [shape.colour, shape.kind]
    phrase = f"{_article(words[0])} {' '.join(words)}"
    if full or rng.random() < 0.65:
        phrase += " " + str(rng.choice(POSITION_PHRASES[shape.position]))
    return phrase


def caption(scene: Scene, rng: np.random.Generator, full: bool = False) -> str:
    """A caption for the scene; `full` names every attribute, otherwise some are left out."""
    text = " and ".join(_shape_phrase(s, rng, full) for s in scene.shapes)
    if full or rng.random() < 0.8:
        bg = f"{scene.background} gradient" if scene.gradient else scene.background
        if not full and rng.random() < 0.25:
            text += f", {bg} background"
        else:
            text += f" on {_article(bg)} {bg} background"
    return text


def sample_scene(rng: np.random.Generator, allow_held_out: bool = False) -> Scene:
    """A random training scene (never a held-out triple unless `allow_held_out`)."""
    background = str(rng.choice(COLOUR_NAMES))
    gradient = bool(rng.random() < 0.25)
    two = rng.random() < 0.25
    if two:
        positions = list(rng.permutation(["left", "right"] if rng.random() < 0.5 else ["top", "bottom"]))
    else:
        positions = [str(rng.choice(list(POSITIONS)))]
    shapes: list[Shape] = []
    for pos in positions:
        while True:
            colour = str(rng.choice(COLOUR_NAMES))
            kind = str(rng.choice(SHAPES))
            if colour == background or any(s.colour == colour for s in shapes):
                continue
            if allow_held_out or not is_held_out(colour, kind, background):
                break
        shapes.append(Shape(kind, colour, str(rng.choice(list(SIZES))), str(pos)))
    return Scene(tuple(shapes), background, gradient)


def training_example(seed: int, index: int) -> tuple[np.ndarray, str, Scene]:
    """Image, caption and scene number `index` of the dataset with this seed."""
    rng = np.random.default_rng([seed, index])
    scene = sample_scene(rng)
    return render(scene, rng), caption(scene, rng), scene


def all_words() -> list[str]:
    """Every word a caption can contain (the tokenizer gives each a single token)."""
    words = {"a", "an", "and", "on", "the", "in", "at", "background", "gradient", ","}
    words |= set(COLOURS) | set(SHAPES)
    for options in list(SIZE_WORDS.values()) + list(POSITION_PHRASES.values()):
        for phrase in options:
            words |= set(phrase.split())
    # Words a person is likely to type; the model has not been trained on them, but they
    # stay single tokens instead of falling apart into letters.
    words |= {"of", "with", "shape", "picture", "image", "photo", "pink", "grey", "gray", "brown",
              "cyan", "heart", "hexagon", "dark", "light", "bright", "two", "one", "colour", "color"}
    return sorted(words)
