"""World renderer: sizes, anti-aliasing, the picture follows the ground truth."""

import numpy as np
import pytest

from physavatar.physstate.layout import B
from physavatar.world.behaviour import neutral_motion
from physavatar.world.body import pose_keypoints
from physavatar.world.clip import reference_image
from physavatar.world.identity import make_identity
from physavatar.world.render import SIZES, Renderer


@pytest.mark.parametrize("size", SIZES)
def test_sizes_and_anti_aliasing(size):
    img = reference_image(make_identity(4), size)
    assert img.shape == (size, size, 3) and img.dtype == np.uint8
    # anti-aliased edges blend colours: many more distinct colours than the ~20 flat fills
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 100


def test_picture_follows_the_keypoints():
    ident = make_identity(6)
    m = neutral_motion(2)
    m.lift[1, 0] = 1.0  # frame 1: left hand raised
    m.reach[1, 0] = (1.0, 2.5)
    m.curl[1, 0] = 0.1
    kp, rig = pose_keypoints(ident, m)
    frames = Renderer(ident, 256).video(rig)
    changed = np.abs(frames[1].astype(int) - frames[0]).sum(-1) > 30
    ys, xs = np.nonzero(changed)
    # the pixels that change are around the left arm (image right) and not at the face
    wrist = kp[1, B["left wrist"], :2] * 256
    assert changed.sum() > 200
    assert np.median(xs) > kp[1, B["nose"], 0] * 256
    assert np.min(np.hypot(xs - wrist[0], ys - wrist[1])) < 3
    face_box = changed[: int(kp[1, 17 + 8, 1] * 256)]  # everything above the chin
    assert face_box.sum() == 0


def test_too_small_size_is_refused():
    with pytest.raises(ValueError, match="too small"):
        Renderer(make_identity(0), 16)
