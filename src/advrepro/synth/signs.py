"""The offline GTSRB: traffic signs drawn with PIL and photographed, in exactly the folder layout that
torchvision.datasets.GTSRB reads (gtsrb/GTSRB/Training/<class>/<track>_<image>.ppm with GT-<class>.csv,
gtsrb/GTSRB/Final_Test/Images/<n>.ppm with gtsrb/GT-final_test.csv).

Every class is drawn from its real appearance (shape, colours, digits or pictogram; see SIGNS), then
photographed: random size, position, rotation and perspective, a cluttered background, lighting, blur
and sensor noise. Every image is drawn from its own seeded stream, so the worker processes give
byte-identical files. write_corpus() writes the layout and nothing else; data/gtsrb.py checksums,
installs and reads it.
"""
from __future__ import annotations

import functools
import io
import math
from pathlib import Path

import numpy as np

from ..data.corpus import Stream, stream, worker_pool, write_manifest
from ..data.gtsrb import COLUMNS, N_CLASSES, TEST_CSV, TEST_DIR, TRAIN_DIR

RENDERER = 1  # bump when the drawing changes: a corpus made by another renderer is made again
TRACK = 30  # images per track (one physical sign), as in the real training set


# ---- the signs, drawn flat -----------------------------------------------------------------------
# Drawn at DRAW px on a transparent canvas in coordinates u in [-1, 1] (y down), reduced 2x for
# anti-aliasing. A Pen maps a pictogram's own [-1, 1] box into part of the sign (and may mirror it).

DRAW = 512
RED, WHITE, BLACK, BLUE = (200, 25, 35), (245, 245, 240), (25, 25, 25), (25, 75, 170)
YELLOW, GREY, DARK, GREEN, AMBER = (245, 185, 20), (120, 120, 120), (60, 60, 60), (30, 160, 70), (245, 165, 20)


class Pen:
    """Draws in a local [-1, 1] box centred at (cx, cy) with half-size s in sign units."""

    def __init__(self, draw, cx: float = 0.0, cy: float = 0.0, s: float = 1.0, flip: bool = False):
        self.draw, self.cx, self.cy, self.s, self.flip = draw, cx, cy, s, flip

    def sub(self, cx: float, cy: float, s: float, flip: bool = False) -> Pen:
        x, y = self.p(cx, cy)
        return Pen(self.draw, (x / DRAW) * 2 - 1, (y / DRAW) * 2 - 1, self.s * s, self.flip != flip)

    def p(self, x: float, y: float) -> tuple[float, float]:
        x = -x if self.flip else x
        return ((self.cx + self.s * x + 1) * DRAW / 2, (self.cy + self.s * y + 1) * DRAW / 2)

    def w(self, width: float) -> int:
        return max(1, int(round(width * self.s * DRAW / 2)))

    def poly(self, pts, fill) -> None:
        self.draw.polygon([self.p(*q) for q in pts], fill=fill)

    def disc(self, x: float, y: float, r: float, fill, ry: float | None = None) -> None:
        (x0, y0), (x1, y1) = self.p(x - r, y - (ry or r)), self.p(x + r, y + (ry or r))
        self.draw.ellipse([min(x0, x1), y0, max(x0, x1), y1], fill=fill)

    def ring(self, x: float, y: float, r: float, width: float, fill) -> None:
        (x0, y0), (x1, y1) = self.p(x - r, y - r), self.p(x + r, y + r)
        self.draw.ellipse([min(x0, x1), y0, max(x0, x1), y1], outline=fill, width=self.w(width))

    def line(self, pts, width: float, fill, caps: bool = True) -> None:
        self.draw.line([self.p(*q) for q in pts], fill=fill, width=self.w(width), joint="curve")
        if caps:
            for q in (pts[0], pts[-1]):
                self.disc(*q, width / 2, fill)

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill) -> None:
        self.poly([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], fill)

    def arrow(self, pts, width: float, fill, head: float = 2.6) -> None:
        """A shaft along pts ending in a triangular head at pts[-1] (the tip)."""
        (xa, ya), (xb, yb) = pts[-2], pts[-1]
        d = math.hypot(xb - xa, yb - ya)
        ux, uy = (xb - xa) / d, (yb - ya) / d
        length = head * width * 0.8
        bx, by = xb - ux * length, yb - uy * length
        self.line(list(pts[:-1]) + [(bx + ux * 0.05 * width, by + uy * 0.05 * width)], width, fill, caps=False)
        hw = head * width / 2
        self.poly([(xb, yb), (bx - uy * hw, by + ux * hw), (bx + uy * hw, by - ux * hw)], fill)

    def text(self, s: str, x: float, y: float, height: float, fill, max_width: float = 9.0, bold: float = 0.06) -> None:
        from PIL import ImageFont

        probe = ImageFont.load_default(size=100)
        x0, y0, x1, y1 = probe.getbbox(s, anchor="mm")
        px = min(height * self.s * DRAW / 2 / (y1 - y0), max_width * self.s * DRAW / 2 / (x1 - x0)) * 100
        font = ImageFont.load_default(size=max(4, int(round(px))))
        stroke = max(0, int(round(bold * px)))
        self.draw.text(self.p(x, y), s, fill=fill, font=font, anchor="mm", stroke_width=stroke, stroke_fill=fill)


def _bezier(p0, p1, p2, p3, n: int = 24) -> list[tuple[float, float]]:
    t = np.linspace(0, 1, n)[:, None]
    pts = ((1 - t) ** 3 * np.array(p0) + 3 * (1 - t) ** 2 * t * np.array(p1) + 3 * (1 - t) * t ** 2 * np.array(p2)
           + t ** 3 * np.array(p3))
    return [tuple(q) for q in pts]


def _arc(cx: float, cy: float, r: float, a0: float, a1: float, n: int = 24) -> list[tuple[float, float]]:
    """Points on a circle from angle a0 to a1 (degrees, 0 = +x, counted towards +y, i.e. clockwise on screen)."""
    a = np.radians(np.linspace(a0, a1, n))
    return [(cx + r * math.cos(t), cy + r * math.sin(t)) for t in a]


def _shrink(pts, k: float, centre) -> list[tuple[float, float]]:
    return [(centre[0] + k * (x - centre[0]), centre[1] + k * (y - centre[1])) for x, y in pts]


# -- vehicles and people, in a pictogram box --

def _car(pen: Pen, x: float, y: float, s: float, fill) -> None:
    """A car seen from behind, about 2s wide."""
    pen.poly([(x - 0.62 * s, y - 0.1 * s), (x - 0.42 * s, y - 0.62 * s), (x + 0.42 * s, y - 0.62 * s),
              (x + 0.62 * s, y - 0.1 * s)], fill)
    pen.poly([(x - 0.45 * s, y - 0.16 * s), (x - 0.32 * s, y - 0.5 * s), (x + 0.32 * s, y - 0.5 * s),
              (x + 0.45 * s, y - 0.16 * s)], WHITE)
    pen.rect(x - 0.9 * s, y - 0.12 * s, x + 0.9 * s, y + 0.45 * s, fill)
    pen.rect(x - 0.8 * s, y + 0.4 * s, x - 0.45 * s, y + 0.75 * s, fill)
    pen.rect(x + 0.45 * s, y + 0.4 * s, x + 0.8 * s, y + 0.75 * s, fill)
    pen.rect(x - 0.75 * s, y + 0.05 * s, x - 0.5 * s, y + 0.2 * s, WHITE)
    pen.rect(x + 0.5 * s, y + 0.05 * s, x + 0.75 * s, y + 0.2 * s, WHITE)


def _truck_rear(pen: Pen, x: float, y: float, s: float, fill) -> None:
    """A lorry seen from behind: a tall box on wheels."""
    pen.rect(x - 0.85 * s, y - 0.95 * s, x + 0.85 * s, y + 0.45 * s, fill)
    pen.rect(x - 0.7 * s, y - 0.8 * s, x + 0.7 * s, y - 0.65 * s, WHITE)
    pen.rect(x - 0.8 * s, y + 0.4 * s, x - 0.35 * s, y + 0.75 * s, fill)
    pen.rect(x + 0.35 * s, y + 0.4 * s, x + 0.8 * s, y + 0.75 * s, fill)


def _truck_side(pen: Pen, fill) -> None:
    """A lorry seen from the side, facing right, filling the box."""
    pen.rect(-0.85, -0.45, 0.25, 0.3, fill)
    pen.poly([(0.32, 0.3), (0.32, -0.25), (0.62, -0.25), (0.85, 0.02), (0.85, 0.3)], fill)
    pen.poly([(0.42, -0.15), (0.6, -0.15), (0.74, 0.02), (0.42, 0.02)], WHITE)
    for wx in (-0.6, -0.3, 0.58):
        pen.disc(wx, 0.38, 0.16, fill)
        pen.disc(wx, 0.38, 0.06, WHITE)


def _person(pen: Pen, x: float, y: float, s: float, fill, stride: float = 1.0) -> None:
    """A walking figure about 2s tall, facing left."""
    pen.disc(x + 0.02 * s, y - 0.78 * s, 0.19 * s, fill)
    pen.line([(x, y - 0.52 * s), (x + 0.05 * s, y + 0.15 * s)], 0.26 * s, fill)
    pen.line([(x + 0.05 * s, y + 0.1 * s), (x - 0.35 * stride * s, y + 0.55 * s), (x - 0.4 * stride * s, y + 0.95 * s)],
             0.16 * s, fill)
    pen.line([(x + 0.05 * s, y + 0.1 * s), (x + 0.3 * stride * s, y + 0.5 * s), (x + 0.45 * stride * s, y + 0.95 * s)],
             0.16 * s, fill)
    pen.line([(x, y - 0.42 * s), (x - 0.35 * s, y - 0.05 * s)], 0.13 * s, fill)
    pen.line([(x + 0.02 * s, y - 0.42 * s), (x + 0.35 * s, y - 0.1 * s)], 0.13 * s, fill)


# -- sign bodies --

def _prohibitory(pen: Pen) -> Pen:
    pen.disc(0, 0, 1.0, WHITE)
    pen.disc(0, 0, 0.95, RED)
    pen.disc(0, 0, 0.74, WHITE)
    return pen.sub(0, 0, 0.7)


def _end_of(pen: Pen) -> Pen:
    pen.disc(0, 0, 1.0, GREY)
    pen.disc(0, 0, 0.96, WHITE)
    return pen.sub(0, 0, 0.72)


def _end_stripes(pen: Pen, n: int = 5, spacing: float = 0.075, width: float = 0.035, r: float = 0.93) -> None:
    """The black band of diagonal lines (upper right to lower left) across the "end of" signs."""
    for k in np.arange(n) - (n - 1) / 2:
        o = k * spacing  # offset along the normal (1, 1) / sqrt 2
        half = math.sqrt(max(r * r - o * o, 0.0))
        ox, oy = o / math.sqrt(2), o / math.sqrt(2)
        dx, dy = -half / math.sqrt(2), half / math.sqrt(2)
        pen.line([(ox - dx, oy - dy), (ox + dx, oy + dy)], width, BLACK, caps=False)


_TRIANGLE = [(0.0, -0.93), (1.0, 0.8), (-1.0, 0.8)]
_TRIANGLE_CENTRE = (0.0, (0.8 + 0.8 - 0.93) / 3)


def _warning(pen: Pen) -> Pen:
    """A white triangle with a red border, pointing up, rounded corners; returns the pictogram box."""
    rounded = 0.06
    for k, fill in ((1.0, WHITE), (0.93, RED), (0.64, WHITE)):
        pts = _shrink(_TRIANGLE, k * (1 - rounded * 1.6), _TRIANGLE_CENTRE)
        pen.poly(pts, fill)
        pen.line(pts + [pts[0]], 2 * rounded * k, fill, caps=False)
        for q in pts:
            pen.disc(*q, rounded * k, fill)
    return pen.sub(0, 0.25, 0.35)


def _mandatory(pen: Pen) -> Pen:
    pen.disc(0, 0, 1.0, WHITE)
    pen.disc(0, 0, 0.95, BLUE)
    return pen.sub(0, 0, 0.62)


# -- one function per class: draws the whole sign with a Pen over the sign --

def _speed(limit: str):
    def draw(pen):
        inner = _prohibitory(pen)
        inner.text(limit, 0, 0.02, 0.95, BLACK, max_width=1.75 if len(limit) > 2 else 1.45)
    return draw


def _end_speed(pen):
    inner = _end_of(pen)
    inner.text("80", 0, 0.02, 0.95, GREY, max_width=1.45)
    _end_stripes(pen)


def _no_passing(pen):
    inner = _prohibitory(pen)
    _car(inner, -0.45, 0.05, 0.48, RED)
    _car(inner, 0.45, 0.05, 0.48, BLACK)


def _no_passing_trucks(pen):
    inner = _prohibitory(pen)
    _truck_rear(inner, -0.45, 0.15, 0.45, RED)
    _car(inner, 0.45, 0.1, 0.46, BLACK)


def _right_of_way(pen):
    p = _warning(pen)
    p.poly([(-0.13, -0.95), (0.13, -0.95), (0.2, 0.95), (-0.2, 0.95)], BLACK)
    p.rect(-0.7, -0.1, 0.7, 0.06, BLACK)


def _priority(pen):
    diamond = [(0, -1.0), (1.0, 0), (0, 1.0), (-1.0, 0)]
    pen.poly(diamond, DARK)
    pen.poly(_shrink(diamond, 0.95, (0, 0)), WHITE)
    pen.poly(_shrink(diamond, 0.6, (0, 0)), YELLOW)


def _yield(pen):
    tri = [(-1.0, -0.8), (1.0, -0.8), (0.0, 0.93)]
    centre = (0.0, (-0.8 - 0.8 + 0.93) / 3)
    for k, fill in ((1.0, WHITE), (0.93, RED), (0.58, WHITE)):
        pen.poly(_shrink(tri, k, centre), fill)


def _stop(pen):
    octagon = [(math.cos(math.radians(22.5 + 45 * k)), math.sin(math.radians(22.5 + 45 * k))) for k in range(8)]
    pen.poly(octagon, WHITE)
    pen.poly(_shrink(octagon, 0.94, (0, 0)), RED)
    pen.text("STOP", 0, 0.02, 0.42, WHITE, max_width=1.45, bold=0.05)


def _no_vehicles(pen):
    _prohibitory(pen)


def _trucks_prohibited(pen):
    _truck_side(_prohibitory(pen), BLACK)


def _no_entry(pen):
    pen.disc(0, 0, 1.0, WHITE)
    pen.disc(0, 0, 0.95, RED)
    pen.rect(-0.62, -0.15, 0.62, 0.15, WHITE)


def _caution(pen):
    p = _warning(pen)
    p.poly([(-0.17, -0.95), (0.17, -0.95), (0.08, 0.38), (-0.08, 0.38)], BLACK)
    p.disc(0, 0.72, 0.17, BLACK)


def _curve(flip: bool):
    def draw(pen):
        p = _warning(pen).sub(0, 0, 1, flip)
        p.arrow([(0.3, 0.95)] + _bezier((0.3, 0.5), (0.3, -0.15), (0.0, -0.35), (-0.55, -0.75))[1:], 0.24, BLACK)
    return draw


def _double_curve(pen):
    p = _warning(pen)
    y = np.linspace(0.95, -0.55, 30)
    pts = [(-0.38 * math.sin(math.pi * (0.95 - v) / 0.95), v) for v in y]
    p.arrow(pts + [(pts[-1][0] + 0.1, -0.95)], 0.22, BLACK)


def _bumpy(pen):
    p = _warning(pen)
    xs = np.linspace(-0.95, 0.95, 41)
    top = [(x, 0.45 - 0.6 * max(0.0, math.sin(math.pi * (abs(x) - 0.05) / 0.85)) if abs(x) > 0.05 else 0.45)
           for x in xs]
    p.poly(top + [(0.95, 0.75), (-0.95, 0.75)], BLACK)


def _slippery(pen):
    p = _warning(pen)
    _car(p, 0, -0.4, 0.5, BLACK)
    for x0 in (-0.3, 0.3):
        pts = [(x0 + 0.16 * math.sin(3 * math.pi * t), 0.15 + 0.8 * t) for t in np.linspace(0, 1, 20)]
        p.line(pts, 0.1, BLACK)


def _narrows_right(pen):
    p = _warning(pen)
    p.line([(-0.45, 0.95), (-0.45, -0.95)], 0.16, BLACK)
    p.line([(0.45, 0.95), (0.45, 0.3), (0.05, -0.15), (0.05, -0.95)], 0.16, BLACK)


def _road_work(pen):
    p = _warning(pen)
    p.disc(0.12, -0.7, 0.17, BLACK)
    p.line([(0.05, -0.48), (-0.2, 0.2)], 0.24, BLACK)
    p.line([(-0.2, 0.2), (-0.5, 0.9)], 0.15, BLACK)
    p.line([(-0.2, 0.2), (0.1, 0.55), (0.1, 0.9)], 0.15, BLACK)
    p.line([(-0.02, -0.35), (0.42, -0.1)], 0.12, BLACK)
    p.line([(0.75, -0.6), (0.38, 0.55)], 0.08, BLACK)
    p.poly([(0.28, 0.45), (0.5, 0.52), (0.4, 0.8), (0.22, 0.7)], BLACK)
    p.poly([(0.4, 0.95), (0.65, 0.62), (0.95, 0.95)], BLACK)


def _traffic_signals(pen):
    p = _warning(pen)
    p.rect(-0.38, -0.98, 0.38, 0.98, BLACK)
    for y, colour in ((-0.6, RED), (0.0, AMBER), (0.6, GREEN)):
        p.disc(0, y, 0.24, colour)


def _pedestrians(pen):
    _person(_warning(pen), 0, 0, 1.0, BLACK)


def _children(pen):
    p = _warning(pen)
    _person(p, -0.3, -0.05, 0.95, BLACK, 0.8)
    _person(p, 0.45, 0.2, 0.72, BLACK, 0.8)


def _bicycles(pen):
    p = _warning(pen)
    for x in (-0.55, 0.55):
        p.ring(x, 0.45, 0.38, 0.09, BLACK)
    p.line([(-0.55, 0.45), (-0.1, 0.45), (0.32, -0.12), (-0.3, -0.12), (-0.55, 0.45)], 0.09, BLACK)
    p.line([(0.55, 0.45), (0.25, -0.38), (0.45, -0.38)], 0.09, BLACK)
    p.line([(-0.1, 0.45), (-0.35, -0.3)], 0.09, BLACK)
    p.line([(-0.48, -0.32), (-0.22, -0.32)], 0.1, BLACK)


def _snow(pen):
    p = _warning(pen)
    for a in (90, 30, 150):
        ux, uy = math.cos(math.radians(a)), math.sin(math.radians(a))
        p.line([(-0.9 * ux, -0.9 * uy), (0.9 * ux, 0.9 * uy)], 0.1, BLACK)
        for sign in (-1, 1):
            bx, by = sign * 0.55 * ux, sign * 0.55 * uy
            for turn in (-1, 1):
                c, s = math.cos(math.radians(40 * turn)), math.sin(math.radians(40 * turn))
                vx, vy = sign * (ux * c - uy * s), sign * (ux * s + uy * c)
                p.line([(bx, by), (bx + 0.3 * vx, by + 0.3 * vy)], 0.08, BLACK)


def _deer(pen):
    p = _warning(pen)
    p.disc(0.1, 0.05, 0.47, BLACK, ry=0.2)
    p.line([(-0.25, 0.0), (-0.55, -0.45)], 0.17, BLACK)
    p.disc(-0.66, -0.5, 0.16, BLACK, ry=0.1)
    p.line([(-0.55, -0.58), (-0.45, -0.95)], 0.06, BLACK)
    p.line([(-0.5, -0.78), (-0.28, -0.9)], 0.05, BLACK)
    p.line([(-0.62, -0.6), (-0.8, -0.93)], 0.06, BLACK)
    p.line([(-0.25, 0.15), (-0.6, 0.5), (-0.92, 0.45)], 0.1, BLACK)
    p.line([(-0.15, 0.15), (-0.45, 0.6), (-0.75, 0.65)], 0.1, BLACK)
    p.line([(0.4, 0.15), (0.7, 0.5), (0.92, 0.88)], 0.1, BLACK)
    p.line([(0.3, 0.18), (0.55, 0.6), (0.7, 0.92)], 0.1, BLACK)
    p.line([(0.55, -0.05), (0.72, -0.22)], 0.08, BLACK)


def _end_all(pen):
    _end_of(pen)
    _end_stripes(pen)


def _turn(flip: bool):
    def draw(pen):
        p = _mandatory(pen).sub(0, 0, 1, flip)
        p.arrow([(-0.4, 0.95), (-0.4, 0.05)] + _arc(0.0, 0.05, 0.4, 180, 270, 12)[1:] + [(0.95, -0.35)], 0.32, WHITE)
    return draw


def _ahead(pen):
    _mandatory(pen).arrow([(0, 0.95), (0, -0.95)], 0.34, WHITE)


def _straight_or(flip: bool):
    def draw(pen):
        p = _mandatory(pen).sub(0, 0, 1, flip)
        p.arrow([(-0.3, 0.95), (-0.3, -0.95)], 0.3, WHITE, head=2.4)
        p.arrow([(-0.3, 0.5)] + _bezier((-0.3, 0.35), (-0.3, -0.05), (0.1, -0.05), (0.95, -0.05))[1:], 0.26, WHITE,
                head=2.4)
    return draw


def _keep(flip: bool):
    def draw(pen):
        _mandatory(pen).sub(0, 0, 1, flip).arrow([(-0.62, -0.62), (0.7, 0.7)], 0.34, WHITE)
    return draw


def _roundabout(pen):
    p = _mandatory(pen)
    for start in (-60, 60, 180):  # three arrows chasing each other counter-clockwise on screen
        p.arrow(_arc(0, 0, 0.62, start + 80, start, 16), 0.24, WHITE, head=2.3)


def _end_no_passing(pen):
    inner = _end_of(pen)
    _car(inner, -0.45, 0.05, 0.48, GREY)
    _car(inner, 0.45, 0.05, 0.48, GREY)
    _end_stripes(pen)


def _end_no_passing_trucks(pen):
    inner = _end_of(pen)
    _truck_rear(inner, -0.45, 0.15, 0.45, GREY)
    _car(inner, 0.45, 0.1, 0.46, GREY)
    _end_stripes(pen)


SIGNS = (
    _speed("20"), _speed("30"), _speed("50"), _speed("60"), _speed("70"), _speed("80"), _end_speed,
    _speed("100"), _speed("120"), _no_passing, _no_passing_trucks, _right_of_way, _priority, _yield, _stop,
    _no_vehicles, _trucks_prohibited, _no_entry, _caution, _curve(False), _curve(True), _double_curve, _bumpy,
    _slippery, _narrows_right, _road_work, _traffic_signals, _pedestrians, _children, _bicycles, _snow, _deer,
    _end_all, _turn(False), _turn(True), _ahead, _straight_or(False), _straight_or(True), _keep(False),
    _keep(True), _roundabout, _end_no_passing, _end_no_passing_trucks,
)
assert len(SIGNS) == N_CLASSES


@functools.cache
def draw_sign(class_id: int):
    """The flat sign of a class: RGBA [DRAW/2 x DRAW/2], transparent around it (cached per process)."""
    from PIL import Image, ImageDraw

    canvas = Image.new("RGBA", (DRAW, DRAW), (128, 128, 128, 0))
    SIGNS[class_id](Pen(ImageDraw.Draw(canvas)))
    return canvas.reduce(2)


# ---- the photograph --------------------------------------------------------------------------------

SUPERSAMPLE = 4


def _perspective_coeffs(dst, src) -> tuple:
    """PIL's PERSPECTIVE data mapping output points dst to input points src (four pairs)."""
    a = []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        a.append([x, y, 1, 0, 0, 0, -x * u, -y * u])
        a.append([0, 0, 0, x, y, 1, -x * v, -y * v])
    return tuple(np.linalg.solve(np.array(a, float), np.array(src, float).reshape(8)))


def _background(rng, size: int):
    """A random two-colour gradient with random shapes on it (trees, buildings, sky, other signs), in
    mostly muted colours: random colours pulled towards a random grey."""
    from PIL import Image, ImageDraw

    def colour() -> np.ndarray:
        grey = rng.uniform(30, 220)
        return np.clip(grey + rng.uniform(0.1, 0.8) * (rng.uniform(0, 255, 3) - grey), 0, 255)

    c0, c1 = colour(), colour()
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1) - 0.5
    t = np.clip(0.5 + xx * np.cos(angle) + yy * np.sin(angle), 0, 1)[..., None]
    img = Image.fromarray(np.round(c0 * (1 - t) + c1 * t).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 12))):
        kind = int(rng.integers(4))
        fill = tuple(int(v) for v in np.round(colour()))
        x0, y0 = rng.uniform(-0.2, 1.0, 2) * size
        w, h = rng.uniform(0.1, 0.7, 2) * size
        box = [x0, y0, x0 + w, y0 + h]
        if kind == 0:
            draw.rectangle(box, fill=fill)
        elif kind == 1:
            draw.ellipse(box, fill=fill)
        elif kind == 2:
            draw.polygon([tuple(q) for q in rng.uniform(-0.1, 1.1, (int(rng.integers(3, 6)), 2)) * size], fill=fill)
        else:
            draw.line([tuple(q) for q in rng.uniform(0, 1, (2, 2)) * size], fill=fill,
                      width=max(1, int(rng.uniform(0.01, 0.06) * size)))
    return img


def render_image(class_id: int, size: int, rng: np.random.Generator):
    """One photograph of a sign of the class: RGB [size x size] and its ROI (x1, y1, x2, y2), inclusive.
    The sign's square spans 60-95 % of the frame, rotated by up to 15 degrees, tilted in perspective,
    on a cluttered background, lit, blurred and noisy."""
    from PIL import Image, ImageDraw, ImageFilter

    big = size * SUPERSAMPLE
    sign = draw_sign(class_id)
    side = rng.uniform(0.60, 0.95) * big
    theta = np.radians(rng.uniform(-15, 15))
    tilt_x, tilt_y = rng.uniform(-0.15, 0.15, 2)  # the far edge of a sign seen at an angle looks shorter
    square = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float) * side / 2
    square[:, 1] *= 1 + tilt_x * np.sign(square[:, 0])
    square[:, 0] *= 1 + tilt_y * np.sign(square[:, 1])
    square += rng.uniform(-0.03, 0.03, (4, 2)) * side
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    quad = square @ rot.T
    lo, hi = quad.min(axis=0), quad.max(axis=0)
    slack = big - (hi - lo)
    centre = -lo + np.where(slack > 0, rng.uniform(0, 1, 2) * np.maximum(slack, 0), slack / 2)
    quad += centre

    img = _background(rng, big)
    if rng.uniform() < 0.5:  # the post below the sign
        cx, cy = quad.mean(axis=0)
        half = rng.uniform(0.03, 0.07) * side
        grey = int(rng.integers(90, 200))
        ImageDraw.Draw(img).rectangle([cx - half, cy, cx + half, big], fill=(grey, grey, grey))
    n = sign.width
    warp = sign.transform((big, big), Image.Transform.PERSPECTIVE,
                          _perspective_coeffs([tuple(q) for q in quad], [(0, 0), (n, 0), (n, n), (0, n)]),
                          Image.Resampling.BICUBIC, fillcolor=(128, 128, 128, 0))
    img.paste(warp, (0, 0), warp)
    box = warp.getchannel("A").point(lambda a: 255 if a >= 128 else 0).getbbox() or (0, 0, big, big)
    roi = (box[0] // SUPERSAMPLE, box[1] // SUPERSAMPLE, min(-(-box[2] // SUPERSAMPLE), size) - 1,
           min(-(-box[3] // SUPERSAMPLE), size) - 1)

    img = img.reduce(SUPERSAMPLE)
    radius = rng.uniform(0, 1.5)
    if radius > 0.05:
        img = img.filter(ImageFilter.GaussianBlur(radius))
    x = np.asarray(img, np.float64) / 255
    contrast, brightness, gamma = rng.uniform(0.6, 1.15), rng.uniform(0.45, 1.25), rng.uniform(0.8, 1.25)
    cast = rng.uniform(0.85, 1.15, 3)
    mean = x.mean()
    x = np.clip((x - mean) * contrast + mean, 0, 1) ** gamma * brightness * cast
    x += rng.normal(0, rng.uniform(0.005, 0.04), x.shape)
    return Image.fromarray(np.round(np.clip(x, 0, 1) * 255).astype(np.uint8), "RGB"), roi


# ---- the corpus ------------------------------------------------------------------------------------

def _render_and_write(task: tuple) -> dict:
    """One image, written as PPM; returns its CSV row (a worker of write_corpus)."""
    root, purpose, class_id, index, relpath, size, seed = task
    img, (x1, y1, x2, y2) = render_image(class_id, size, stream(seed, purpose, class_id, index))
    buf = io.BytesIO()
    img.save(buf, format="PPM")
    (root / relpath).write_bytes(buf.getvalue())
    return {"Filename": Path(relpath).name, "Width": img.width, "Height": img.height, "Roi.X1": x1, "Roi.Y1": y1,
            "Roi.X2": x2, "Roi.Y2": y2, "ClassId": class_id}


def write_corpus(data_cfg: dict, root: Path, seed: int) -> None:
    """Write the tree torchvision's GTSRB loader reads into root: gtsrb/GTSRB/Training/<class>/*.ppm with
    GT-<class>.csv, gtsrb/GTSRB/Final_Test/Images/*.ppm and gtsrb/GT-final_test.csv.

    Every image on its own seeded stream, so the worker processes (one per CPU) may take them in any
    order: the files and the CSVs (in plan order) are the same bytes. The test images are numbered in a
    seeded random order, so their names do not give the class away (as in the real test set)."""
    from tqdm import tqdm

    size, n_train, n_test = data_cfg["render_size"], data_cfg["train_per_class"], data_cfg["test_per_class"]
    tasks = []
    for c in range(N_CLASSES):
        (root / TRAIN_DIR / f"{c:05d}").mkdir(parents=True)
        tasks += [(root, Stream.GTSRB_TRAIN, c, i, f"{TRAIN_DIR}/{c:05d}/{i // TRACK:05d}_{i % TRACK:05d}.ppm", size,
                   seed) for i in range(n_train)]
    (root / TEST_DIR).mkdir(parents=True)
    order = stream(seed, Stream.GTSRB_ORDER).permutation(N_CLASSES * n_test)
    tests = [(root, Stream.GTSRB_TEST, int(k) // n_test, int(k) % n_test, f"{TEST_DIR}/{j:05d}.ppm", size, seed)
             for j, k in enumerate(order)]
    with worker_pool() as pool:
        rows = list(tqdm(pool.map(_render_and_write, tasks + tests, chunksize=16), total=len(tasks) + len(tests),
                         desc="render signs", unit="image", mininterval=2))
    for c in range(N_CLASSES):
        write_manifest(root / TRAIN_DIR / f"{c:05d}" / f"GT-{c:05d}.csv", rows[c * n_train:(c + 1) * n_train],
                       COLUMNS, ";")
    write_manifest(root / TEST_CSV, rows[len(tasks):], COLUMNS, ";")
