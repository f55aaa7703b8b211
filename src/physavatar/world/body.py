"""Kinematics: identity + motion controls -> ground-truth keypoints (F, 127, 3) and the rig the renderer uses.

Geometry is in head units u (half the face height); `Framing.unit` maps u to frame fractions. The face is
a 3-D landmark model (x right in the image, y down, z toward the camera) rotated by the head pose and
projected orthographically, so nods and turns move the features consistently. Arms are a 2-link chain
solved by inverse kinematics from a wrist target (rest pose in front of the belly, gesture reach).
Keypoints outside the frame get confidence 0 and are clipped to [0, 1] (clip format contract).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from physavatar.constants import NUM_KEYPOINTS
from physavatar.physstate.layout import B, BODY, FACE, LEFT_HAND, RIGHT_HAND
from physavatar.world.behaviour import Motion
from physavatar.world.identity import Identity

SHOULDER_DROP = 1.75  # head centre -> shoulder line
SHOULDER_HALF = 1.6
HIP_DROP = 6.0  # head centre -> hips
HIP_HALF = 1.25
UPPER_ARM, FOREARM, HAND = 2.3, 2.0, 1.15
REST_WRIST = (0.9, 4.8)  # |x| from the midline, y below the head centre
WRIST_DEPTH = 1.4  # hands rest and gesture in front of the body (toward the camera)
MOUTH_Y, MOUTH_Z = 0.55, 0.72
HEAD_PIVOT = np.array([0.0, 0.4, -0.7])  # nods and turns rotate about the neck / skull centre
JAW_PHI = np.radians(np.linspace(170.0, 370.0, 17))  # jaw points 0-16 on an ellipse, ear to chin to ear


@dataclass
class Rig:
    """What the renderer needs beyond the keypoints (all in frame fractions)."""

    unit: float  # head unit as a fraction of the frame
    xy: np.ndarray  # (F, 127, 2) keypoints before clipping to the frame (the renderer draws these)
    head_centre: np.ndarray  # (F, 2)
    head_rot: np.ndarray  # (F, 3, 3) rotation applied to canonical face points
    mouth_open: np.ndarray  # (F,)


def _face_canonical(id_: Identity) -> np.ndarray:
    """Neutral 68 face landmarks (68, 3) in head units."""
    a, chin = id_.appearance.face_width, id_.appearance.chin
    pts = np.zeros((68, 3))
    phi = JAW_PHI
    below = np.maximum(0.0, -np.sin(phi))
    pts[0:17, 0] = a * np.cos(phi) * (1 - 0.3 * chin * below**2)
    pts[0:17, 1] = -np.sin(phi) * (1.0 + 0.06 * chin * below**4)
    pts[0:17, 2] = 0.15 + 0.45 * below * (1 - np.abs(np.cos(phi)))
    bx = np.linspace(-0.6, -0.13, 5)
    pts[17:22] = np.stack([bx, -0.36 - 0.07 * np.sin(np.linspace(0.3, 2.8, 5)), np.full(5, 0.6)], 1)
    pts[22:27] = pts[17:22][::-1] * [-1, 1, 1]
    pts[27:31] = np.stack([np.zeros(4), np.linspace(-0.15, 0.22, 4), np.linspace(0.62, 0.95, 4)], 1)
    pts[31:36] = np.stack(
        [np.linspace(-0.15, 0.15, 5), [0.28, 0.31, 0.32, 0.31, 0.28], [0.7, 0.78, 0.82, 0.78, 0.7]], 1
    )
    for start, cx in ((36, -0.34), (42, 0.34)):
        # iBUG order for both eyes: left corner, 2 upper lid left -> right, right corner, 2 lower lid
        # right -> left (for the right eye the left corner is the outer one, for the left eye the inner).
        xs = cx + np.array([-0.17, -0.06, 0.06, 0.17, 0.06, -0.06])
        ys = -0.12 + np.array([0.0, -0.08, -0.08, 0.0, 0.05, 0.05])
        pts[start : start + 6] = np.stack([xs, ys, np.full(6, 0.58)], 1)
    return pts


def _mouth(open_: np.ndarray, width: np.ndarray, gain_w: float) -> np.ndarray:
    """Mouth landmarks (F, 20, 3) = face rows 48-67 for aperture `open_` and shape `width` (F,)."""
    f = len(open_)
    hw = (0.33 * (1 + 0.18 * width) * (1 - 0.12 * open_) * gain_w)[:, None]  # half width
    gap = (0.36 * open_)[:, None]  # inner lip gap
    out = np.zeros((f, 20, 3))
    xo = np.array([-1.0, -0.62, -0.25, 0.0, 0.25, 0.62, 1.0])  # 48..54 (corners included)
    top = np.array([0.0, -0.07, -0.11, -0.085, -0.11, -0.07, 0.0])  # cupid's bow
    out[:, 0:7, 0] = xo * hw
    out[:, 0:7, 1] = top - 0.2 * gap * (np.abs(xo) < 1)
    xl = np.array([0.62, 0.25, 0.0, -0.25, -0.62])  # 55..59, right -> left in the image
    out[:, 7:12, 0] = xl * hw
    out[:, 7:12, 1] = gap + np.array([0.07, 0.11, 0.12, 0.11, 0.07])
    xi = np.array([-0.85, -0.45, 0.0, 0.45, 0.85])  # 60..64
    out[:, 12:17, 0] = xi * hw
    out[:, 12:17, 1] = -0.2 * gap * (np.abs(xi) < 0.8)
    out[:, 17:20, 0] = np.array([0.45, 0.0, -0.45]) * hw  # 65..67
    out[:, 17:20, 1] = gap * np.array([0.85, 1.0, 0.85])
    out[..., 1] += MOUTH_Y
    out[..., 2] = MOUTH_Z
    return out


def rotation(pitch: np.ndarray, yaw: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """(F, 3, 3) rotations R = Rz(roll) Ry(yaw) Rx(pitch); pitch > 0 tips the face down."""
    cp, sp, cy, sy = np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw)
    cr, sr = np.cos(roll), np.sin(roll)
    one, zero = np.ones_like(pitch), np.zeros_like(pitch)
    rx = np.stack([one, zero, zero, zero, cp, -sp, zero, sp, cp], -1).reshape(-1, 3, 3)
    ry = np.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(-1, 3, 3)
    rz = np.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], -1).reshape(-1, 3, 3)
    return rz @ ry @ rx


def project_head(pts: np.ndarray, rot: np.ndarray, centre: np.ndarray, unit: float) -> np.ndarray:
    """Canonical head points (F, N, 3) or (N, 3) -> frame fractions (F, N, 2)."""
    pts = np.broadcast_to(pts, (len(rot), *pts.shape[-2:]))
    turned = np.einsum("fij,fnj->fni", rot, pts - HEAD_PIVOT) + HEAD_PIVOT
    return centre[:, None, :] + unit * turned[..., :2]


def _two_link(shoulder: np.ndarray, wrist: np.ndarray, outward: float) -> np.ndarray:
    """Elbow (F, 3) of a 3-D shoulder->wrist chain (F, 3); `outward` = +1 / -1: the body's outside in x.

    The elbow lies on a circle around the shoulder-wrist axis; we take the point of that circle closest
    to "down, a little outward and back", which is how relaxed arms hang and how beat gestures keep the
    elbow low. Working in 3-D (hands are in front of the body, z > 0) gives the foreshortened 2-D arms
    of a real frontal view instead of elbows sticking out sideways.
    """
    d = wrist - shoulder
    norm = np.linalg.norm(d, axis=1, keepdims=True).clip(1e-6)
    u = d / norm
    dist = np.clip(norm, abs(UPPER_ARM - FOREARM) + 1e-3, UPPER_ARM + FOREARM - 1e-3)
    along = (UPPER_ARM**2 - FOREARM**2 + dist**2) / (2 * dist)
    h = np.sqrt(np.clip(UPPER_ARM**2 - along**2, 0, None))
    prefer = np.array([0.5 * outward, 1.0, -0.3])
    perp = prefer - (u @ prefer)[:, None] * u
    perp /= np.linalg.norm(perp, axis=1, keepdims=True).clip(1e-6)
    return shoulder + u * along + perp * h


def _hand(wrist: np.ndarray, direction: np.ndarray, curl: np.ndarray, medial: float) -> np.ndarray:
    """21 hand landmarks (F, 21, 2) in head units; `medial` = x sign pointing toward the body midline."""
    f = len(wrist)
    v = direction / np.linalg.norm(direction, axis=1, keepdims=True).clip(1e-6)  # along the hand
    w = np.stack([-v[:, 1], v[:, 0]], 1)
    w *= np.sign(w[:, :1] * medial + 1e-9)  # w points to the thumb side
    pts = np.zeros((f, 21, 2))
    # (root v, root w, spread angle, segment lengths) in hand lengths; thumb first.
    fingers = (
        (0.12, 0.2, 0.9, (0.2, 0.16, 0.14)),
        (0.5, 0.16, 0.18, (0.22, 0.14, 0.1)),
        (0.52, 0.04, 0.02, (0.25, 0.16, 0.11)),
        (0.5, -0.08, -0.12, (0.23, 0.14, 0.1)),
        (0.45, -0.18, -0.28, (0.18, 0.11, 0.08)),
    )
    for i, (rv, rw, ang, segs) in enumerate(fingers):
        pos = rv * v + rw * w  # (F, 2)
        pts[:, 1 + 4 * i] = pos
        bend = np.zeros(f)
        k = curl * (0.6 if i == 0 else 1.0)
        for j, seg in enumerate(segs):
            bend = bend + k * (1.1, 1.3, 0.9)[j]  # curling folds the finger toward the palm (shortens)
            dv, dw = np.cos(ang), np.sin(ang)
            fwd = np.cos(bend)[:, None] * (dv * v + dw * w)
            pos = pos + seg * fwd
            pts[:, 2 + 4 * i + j] = pos
    return wrist[:, None, :] + HAND * pts


def pose_keypoints(identity: Identity, motion: Motion) -> tuple[np.ndarray, Rig]:
    """Ground-truth keypoints (F, 127, 3) float32 in frame fractions, and the render rig."""
    fr = identity.framing
    unit = fr.unit
    f = len(motion.mouth_open)
    centre = np.stack([np.full(f, fr.center_x), np.full(f, fr.head_y)], 1) + unit * motion.sway
    # 1. face: canonical landmarks + mouth + brows + eyelids, rotated by the head pose.
    face = np.broadcast_to(_face_canonical(identity), (f, 68, 3)).copy()
    face[:, 48:68] = _mouth(motion.mouth_open, motion.mouth_width, 0.9 + 0.1 * identity.style.mouth_gain)
    jaw_drop = 0.3 * motion.mouth_open[:, None] * np.maximum(0, -np.sin(JAW_PHI))  # the chin drops most
    face[:, 0:17, 1] += jaw_drop
    face[:, 17:27, 1] -= motion.brow[:, None] * np.array([0.7, 0.9, 1, 1, 1, 1, 1, 1, 0.9, 0.7])
    lid = 1.0 - motion.blink[:, None]
    for s in (36, 42):
        eye_y = face[:, s, 1:2]
        face[:, s + 1 : s + 3, 1] = eye_y + (face[:, s + 1 : s + 3, 1] - eye_y) * lid
        face[:, s + 4 : s + 6, 1] = eye_y + (face[:, s + 4 : s + 6, 1] - eye_y) * (0.3 + 0.7 * lid)
    rot = rotation(motion.head[:, 0], motion.head[:, 1], motion.head[:, 2])
    face_xy = project_head(face, rot, centre, unit)
    ear_x = 0.98 * identity.appearance.face_width
    ears = project_head(np.array([[-ear_x, -0.05, -0.2], [ear_x, -0.05, -0.2]]), rot, centre, unit)
    # 2. torso and arms (head units relative to the head centre, which sways with the torso).
    kp = np.zeros((f, NUM_KEYPOINTS, 3), np.float32)
    body = np.zeros((f, 17, 2))
    body[:, B["nose"]] = face_xy[:, 30]
    body[:, B["right eye"]] = face_xy[:, 36:42].mean(1)
    body[:, B["left eye"]] = face_xy[:, 42:48].mean(1)
    body[:, B["right ear"]], body[:, B["left ear"]] = ears[:, 0], ears[:, 1]
    for side, sgn in (("left", 1.0), ("right", -1.0)):
        h = 0 if side == "left" else 1
        shrug = 0.15 * motion.lift[:, h]  # the shoulder rises a little with the arm
        shoulder = np.stack([np.full(f, sgn * SHOULDER_HALF), SHOULDER_DROP - shrug], 1)
        rest = np.array([sgn * REST_WRIST[0], REST_WRIST[1]])
        reach = motion.reach[:, h] * [sgn, -1.0]  # outward, up
        wrist = rest + motion.lift[:, h : h + 1] * reach + np.stack([np.zeros(f), motion.beat[:, h]], 1)
        depth = WRIST_DEPTH + 0.4 * motion.lift[:, h : h + 1]  # hands work in front of the body
        elbow = _two_link(np.c_[shoulder, np.zeros(f)], np.c_[wrist, depth], sgn)[:, :2]
        # the hand continues the forearm, tipping upward as the hand lifts
        fore = wrist - elbow
        tilt = -0.9 * motion.lift[:, h] * sgn
        c, s_ = np.cos(tilt), np.sin(tilt)
        hand_dir = np.stack([c * fore[:, 0] - s_ * fore[:, 1], s_ * fore[:, 0] + c * fore[:, 1]], 1)
        hand = _hand(wrist, hand_dir, motion.curl[:, h], medial=-sgn)
        body[:, B[f"{side} shoulder"]] = shoulder
        body[:, B[f"{side} elbow"]] = elbow
        body[:, B[f"{side} wrist"]] = wrist
        body[:, B[f"{side} hip"]] = (sgn * HIP_HALF, HIP_DROP)
        body[:, B[f"{side} knee"]] = (sgn * 1.5, HIP_DROP + 4.2)
        body[:, B[f"{side} ankle"]] = (sgn * 1.4, HIP_DROP + 8.4)
        hand_slice = LEFT_HAND if side == "left" else RIGHT_HAND
        kp[:, hand_slice, :2] = centre[:, None] + unit * hand
    for name in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
        for side in ("left", "right"):
            i = B[f"{side} {name}"]
            body[:, i] = centre + unit * body[:, i]
    kp[:, BODY, :2] = body
    kp[:, FACE, :2] = face_xy
    # 3. confidence: 1 inside the frame, 0 outside (then clipped to the frame, per the clip format).
    xy = kp[..., :2].copy()
    inside = np.all((kp[..., :2] >= 0.0) & (kp[..., :2] <= 1.0), axis=-1)
    kp[..., 2] = inside
    kp[..., :2] = np.clip(kp[..., :2], 0.0, 1.0)
    return kp, Rig(unit=unit, xy=xy, head_centre=centre, head_rot=rot, mouth_open=motion.mouth_open)


def mouth_aperture(kp: np.ndarray) -> np.ndarray:
    """Inner-lip gap (F,) from keypoints: mean distance of inner upper (61-63) and lower (67-65) lips."""
    upper = kp[:, FACE.start + 61 : FACE.start + 64, :2]
    lower = kp[:, FACE.start + 65 : FACE.start + 68, :2][:, ::-1]
    return np.linalg.norm(upper - lower, axis=-1).mean(axis=1)
