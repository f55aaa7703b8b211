"""Anti-aliased 2-D renderer of world avatars: keypoints + rig -> RGB frames (OpenCV, LINE_AA, sub-pixel).

Everything visible that carries a keypoint is drawn *from* the keypoints (face contour, eyes, brows,
lips, arms, hands), so the ground truth matches the picture by construction. Parts without keypoints
(hair, forehead, neck, torso outline, ears) are placed from the head rig and body keypoints. Per identity
and size, the background and the shirt pattern are drawn once and reused for every frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from physavatar.physstate.layout import B, BODY, FACE, LEFT_HAND, RIGHT_HAND
from physavatar.world.body import SHOULDER_DROP, Rig, project_head
from physavatar.world.identity import Identity

SIZES = (128, 256, 512)
_SHIFT = 4
_ONE = 1 << _SHIFT


def _shade(rgb, k: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(c * k, 0, 255)) for c in rgb)


def _background(identity: Identity, size: int) -> np.ndarray:
    app = identity.appearance
    rng = np.random.default_rng([identity.seed, 0xB6])
    a, b = np.array(app.bg_colour_a, np.float32), np.array(app.bg_colour_b, np.float32)
    if app.background == "flat":
        return np.broadcast_to(a.astype(np.uint8), (size, size, 3)).copy()
    if app.background == "gradient":
        t = np.linspace(0, 1, size, dtype=np.float32)
        angle = rng.uniform(0, np.pi)
        ramp = np.cos(angle) * t[None, :] + np.sin(angle) * t[:, None]
        ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
        return (a + (b - a) * ramp[..., None]).astype(np.uint8)
    # textured: low-frequency blotches + fine grain + a few framed rectangles (pictures, a window)
    coarse = cv2.resize(rng.random((5, 5), np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    fine = cv2.resize(rng.random((32, 32), np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
    mix = np.clip(0.75 * coarse + 0.25 * fine, 0, 1)[..., None]
    img = (a + (b - a) * mix).astype(np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        x0, y0 = rng.uniform(0, 0.8, 2) * size
        w, h = rng.uniform(0.12, 0.35, 2) * size
        col = tuple(int(c) for c in rng.integers(30, 230, 3))
        p0, p1 = (int(x0), int(y0)), (int(x0 + w), int(y0 + h))
        cv2.rectangle(img, p0, p1, col, -1, cv2.LINE_AA)
        cv2.rectangle(img, p0, p1, _shade(col, 0.55), max(1, size // 90), cv2.LINE_AA)
    return img


def _pattern(identity: Identity, size: int) -> np.ndarray:
    app = identity.appearance
    img = np.empty((size, size, 3), np.uint8)
    img[:] = app.shirt
    step = max(4, int(size * identity.framing.unit * 0.45))
    if app.pattern == "stripes":
        for y in range(0, size, step):
            cv2.rectangle(img, (0, y), (size, y + max(1, step // 3)), app.shirt_accent, -1)
    elif app.pattern == "dots":
        r = max(1, step // 5)
        for y in range(0, size + step, step):
            for x in range((y // step % 2) * step // 2, size + step, step):
                cv2.circle(img, (x, y), r, app.shirt_accent, -1, cv2.LINE_AA)
    elif app.pattern == "checks":
        for k in range(0, size, step):
            cv2.line(img, (k, 0), (k, size), app.shirt_accent, max(1, step // 4))
            cv2.line(img, (0, k), (size, k), app.shirt_accent, max(1, step // 4))
    return img


def _head_shapes(identity: Identity) -> dict[str, np.ndarray]:
    """Canonical (head-unit, 3-D) outlines of the forehead and hair."""
    a = identity.appearance.face_width
    psi = np.radians(np.linspace(10, 170, 13))
    forehead = np.stack([a * np.cos(psi), -0.17 - 1.05 * np.sin(psi), 0.2 + 0.3 * np.sin(psi)], 1)
    psi_h = np.radians(np.linspace(-5, 185, 17))
    cap = np.stack([1.1 * a * np.cos(psi_h), -0.12 - 1.22 * np.sin(psi_h), 0.2 + 0.3 * np.sin(psi_h)], 1)
    hairline = np.array(
        [[-1.0 * a, -0.2], [-0.8 * a, -0.62], [-0.3 * a, -0.82], [0.1 * a, -0.72], [0.6 * a, -0.8],
         [0.95 * a, -0.45], [1.05 * a, -0.2]]
    )  # fmt: skip
    hairline = np.concatenate([hairline, np.full((len(hairline), 1), 0.45)], 1)
    shapes = {"forehead": forehead, "cap": np.concatenate([cap, hairline], 0)}  # over the top, then the hairline
    style = identity.appearance.hair_style
    if style in ("long", "bob"):
        drop = 2.9 if style == "long" else 0.95
        w = 1.25 * a
        back = np.concatenate(
            [cap[:, :2] * [1.12, 1.0], [[-w, drop], [-0.6 * w, drop + 0.15], [0.6 * w, drop + 0.15],
                                         [w, drop]]]  # fmt: skip
        )
        shapes["back"] = np.concatenate([back, np.full((len(back), 1), -0.6)], 1)
    if style == "bun":
        t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        shapes["bun"] = np.stack([0.38 * np.cos(t), -1.42 + 0.32 * np.sin(t), np.full(16, -0.2)], 1)
    return shapes


class Renderer:
    """Renders one identity at one size; create once per clip, call `frame` per frame."""

    def __init__(self, identity: Identity, size: int = 128):
        if size < 32:
            raise ValueError(f"render size {size} is too small; use one of {SIZES} (or >= 32)")
        self.identity, self.size = identity, size
        self.background = _background(identity, size)
        self.pattern = _pattern(identity, size)
        self.shapes = _head_shapes(identity)
        app = identity.appearance
        self.skin, self.skin_dark = app.skin, _shade(app.skin, 0.72)
        self.sleeve = _shade(app.shirt, 0.88)
        self.hair, self.hair_dark = app.hair, _shade(app.hair, 0.7)
        self.lips = app.lips

    # -- primitives (points in frame fractions) --
    def _p(self, xy: np.ndarray) -> np.ndarray:
        return np.round(np.asarray(xy) * self.size * _ONE).astype(np.int32)

    def _w(self, head_units: float) -> int:
        return max(1, int(round(head_units * self.identity.framing.unit * self.size)))

    def _poly(self, img, xy, fill, outline=None, width: float = 0.05) -> None:
        p = self._p(xy).reshape(-1, 1, 2)
        cv2.fillPoly(img, [p], fill, cv2.LINE_AA, _SHIFT)
        if outline is not None:
            cv2.polylines(img, [p], True, outline, self._w(width), cv2.LINE_AA, _SHIFT)

    def _line(self, img, xy, colour, width: float, outline=None, closed: bool = False) -> None:
        p = self._p(xy).reshape(-1, 1, 2)
        if outline is not None:
            wide = self._w(width) + max(2, self._w(0.08))
            cv2.polylines(img, [p], closed, outline, wide, cv2.LINE_AA, _SHIFT)
        cv2.polylines(img, [p], closed, colour, self._w(width), cv2.LINE_AA, _SHIFT)

    # -- the frame --
    def frame(self, rig: Rig, t: int) -> np.ndarray:
        """Frame t (size, size, 3) uint8 of `rig`, drawn from its unclipped keypoints."""
        img = self.background.copy()
        kp = rig.xy[t]
        u = rig.unit
        rot, centre = rig.head_rot[t : t + 1], rig.head_centre[t : t + 1]
        head = lambda pts: project_head(pts, rot, centre, u)[0]  # noqa: E731
        body, face = kp[BODY], kp[FACE]
        c = centre[0]
        # 1. hair behind the head and shoulders
        if "back" in self.shapes:
            self._poly(img, head(self.shapes["back"]), self.hair, self.hair_dark)
        # 2. legs (trousers, hips to knees: usually below the frame), neck, torso (patterned), arms
        rk, lk = body[B["right knee"]], body[B["left knee"]]
        hips_y = body[B["right hip"], 1] + 0.5 * u
        legs = np.array([(body[B["right hip"], 0] - 0.35 * u, hips_y), (body[B["left hip"], 0] + 0.35 * u, hips_y),
                         (lk[0] + 0.75 * u, lk[1]), (rk[0] - 0.75 * u, rk[1])])  # fmt: skip
        trousers = self.identity.appearance.trousers
        self._poly(img, legs, trousers, _shade(trousers, 0.6))
        sy = c[1] + u * SHOULDER_DROP
        neck = np.array([[-0.4, 0.5], [0.4, 0.5], [0.45, SHOULDER_DROP + 0.2], [-0.45, SHOULDER_DROP + 0.2]])
        self._poly(img, c + u * neck, _shade(self.skin, 0.88), self.skin_dark)
        rs, ls = body[B["right shoulder"]], body[B["left shoulder"]]
        rh, lh = body[B["right hip"]], body[B["left hip"]]
        torso = np.array([
            (c[0] - 0.5 * u, sy - 0.3 * u), (rs[0] + 0.2 * u, rs[1] - 0.45 * u),
            (rs[0] - 0.45 * u, rs[1] + 0.3 * u),
            (rs[0] - 0.35 * u, rs[1] + 1.8 * u), (rh[0] - 0.25 * u, rh[1] + 0.6 * u),
            (lh[0] + 0.25 * u, lh[1] + 0.6 * u), (ls[0] + 0.35 * u, ls[1] + 1.8 * u),
            (ls[0] + 0.45 * u, ls[1] + 0.3 * u), (ls[0] - 0.2 * u, ls[1] - 0.45 * u),
            (c[0] + 0.5 * u, sy - 0.3 * u), (c[0], sy + 0.45 * u),
        ])  # fmt: skip
        mask = np.zeros(img.shape[:2], np.uint8)
        cv2.fillPoly(mask, [self._p(torso).reshape(-1, 1, 2)], 255, cv2.LINE_AA, _SHIFT)
        alpha = (mask.astype(np.float32) / 255.0)[..., None]
        img[:] = (img * (1 - alpha) + self.pattern * alpha).astype(np.uint8)
        self._line(img, torso, _shade(self.identity.appearance.shirt, 0.6), 0.04, closed=True)
        for side in ("right", "left"):
            self._arm(img, kp, side)
        # 3. head: ears, face, hair, features
        for ear in (body[B["right ear"]], body[B["left ear"]]):
            axes = (self._w(0.14) * _ONE, self._w(0.24) * _ONE)
            ear_colour = _shade(self.skin, 0.9)
            cv2.ellipse(img, tuple(self._p(ear)), axes, 0, 0, 360, ear_colour, -1, cv2.LINE_AA, _SHIFT)
        outline = np.concatenate([face[0:17], head(self.shapes["forehead"])])
        self._poly(img, outline, self.skin, self.skin_dark, 0.04)
        style = self.identity.appearance.hair_style
        if style != "bald":
            self._poly(img, head(self.shapes["cap"]), self.hair, self.hair_dark, 0.03)
        if style == "bun":
            self._poly(img, head(self.shapes["bun"]), self.hair, self.hair_dark, 0.03)
        self._face_features(img, face, rig.mouth_open[t])
        return img

    def _arm(self, img, kp, side: str) -> None:
        body = kp[BODY]
        s, e, w = body[B[f"{side} shoulder"]], body[B[f"{side} elbow"]], body[B[f"{side} wrist"]]
        inward = np.array([0.35 if side == "right" else -0.35, 0.25]) * self.identity.framing.unit
        s = s + inward  # the arm hangs from inside the shoulder outline
        fore = self.skin if self.identity.appearance.short_sleeves else self.sleeve
        fore_out = self.skin_dark if self.identity.appearance.short_sleeves else _shade(self.sleeve, 0.65)
        self._line(img, np.stack([e, w]), fore, 0.58, outline=fore_out)
        if self.identity.appearance.short_sleeves:
            mid = s + 0.55 * (e - s)
            self._line(img, np.stack([mid, e]), self.skin, 0.62, outline=self.skin_dark)
            self._line(img, np.stack([s, mid]), self.sleeve, 0.78, outline=_shade(self.sleeve, 0.65))
        else:
            self._line(img, np.stack([s, e]), self.sleeve, 0.72, outline=_shade(self.sleeve, 0.65))
            self._line(img, np.stack([e, w]), fore, 0.58)  # redraw over the elbow joint outline
        hand = kp[LEFT_HAND if side == "left" else RIGHT_HAND]
        palm = hand[[0, 1, 5, 9, 13, 17]]
        self._poly(img, palm, self.skin, self.skin_dark, 0.04)
        for f in range(5):
            chain = hand[[1 + 4 * f, 2 + 4 * f, 3 + 4 * f, 4 + 4 * f]] if f else hand[[1, 2, 3, 4]]
            self._line(img, chain, self.skin, 0.17 if f else 0.19, outline=self.skin_dark)
        self._poly(img, palm, self.skin)  # cover finger roots' outlines

    def _face_features(self, img, face: np.ndarray, mouth_open: float) -> None:
        app = self.identity.appearance
        dark = (35, 25, 25)
        u = self.identity.framing.unit
        # eyes: whites + iris + lid line; a shut eye is just the lid line
        for s in (36, 42):
            eye = face[s : s + 6]
            height = np.linalg.norm(eye[[1, 2]] - eye[[5, 4]], axis=1).mean()
            if height > 0.035 * u:
                self._poly(img, eye, (245, 243, 238))
                r = min(0.075 * u, 0.55 * height)
                ctr = eye.mean(0)
                for radius, colour in ((r, app.eyes), (0.45 * r, (15, 10, 10))):  # iris, pupil
                    rad = max(1, int(radius * self.size * _ONE))
                    cv2.circle(img, tuple(self._p(ctr)), rad, colour, -1, cv2.LINE_AA, _SHIFT)
            self._line(img, eye[[0, 1, 2, 3]], dark, 0.045)
        # brows
        thick = app.brow_thickness
        self._line(img, face[17:22], self.hair_dark, thick)
        self._line(img, face[22:27], self.hair_dark, thick)
        # nose: a soft bridge shadow and the nostril line
        self._line(img, face[[28, 29, 30]], _shade(self.skin, 0.86), 0.05)
        self._line(img, face[31:36], _shade(self.skin, 0.62), 0.05)
        # mouth: lips, dark opening, upper teeth, lip seam
        lip_dark = _shade(self.lips, 0.8)
        self._poly(img, face[48:60], self.lips, lip_dark, 0.03)
        inner = face[60:68]
        gap = np.linalg.norm(inner[[1, 2, 3]] - inner[[7, 6, 5]], axis=1).mean()
        if gap > 0.01 * u:
            self._poly(img, inner, (35, 5, 12))  # analyse.MOUTH_INSIDE
            if mouth_open > 0.25:
                upper = inner[[0, 1, 2, 3, 4]]
                teeth = np.concatenate([upper, upper[::-1] + [0, min(0.35 * gap, 0.09 * u)]])
                self._poly(img, teeth, (240, 238, 230))
        self._line(img, inner[[0, 1, 2, 3, 4]], lip_dark, 0.035)

    def video(self, rig: Rig) -> np.ndarray:
        """All frames (F, size, size, 3) uint8."""
        return np.stack([self.frame(rig, t) for t in range(len(rig.xy))])
