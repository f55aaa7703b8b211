"""World behaviour: determinism, silence -> closed mouth, lip sync, many-to-one motion, rest, blinks."""

from dataclasses import replace

import numpy as np
import pytest

from physavatar.constants import SAMPLES_PER_FRAME
from physavatar.world.analyse import mouth_opening_area
from physavatar.world.behaviour import audio_features, drive
from physavatar.world.body import mouth_aperture, pose_keypoints
from physavatar.world.clip import drive_avatar, make_clip
from physavatar.world.identity import make_identity


@pytest.fixture(scope="module")
def clips():
    # clip seeds 400-403: three clips of phrases and pauses, one of running speech (402)
    return [make_clip(identity_seed=i, clip_seed=400 + i, num_frames=81, size=128) for i in range(4)]


def test_clip_is_deterministic_from_seeds(clips):
    again = make_clip(identity_seed=0, clip_seed=400, num_frames=81, size=128)
    np.testing.assert_array_equal(again.frames, clips[0].frames)
    np.testing.assert_array_equal(again.wav, clips[0].wav)
    np.testing.assert_array_equal(again.keypoints, clips[0].keypoints)
    other = make_clip(identity_seed=0, clip_seed=401, num_frames=81, size=128)
    assert not np.array_equal(other.wav, clips[0].wav)


def test_shapes_and_ranges(clips):
    c = clips[0]
    assert c.frames.shape == (81, 128, 128, 3) and c.frames.dtype == np.uint8
    assert c.wav.shape == (81 * SAMPLES_PER_FRAME,) and c.wav.dtype == np.float32
    assert c.keypoints.shape == (81, 127, 3) and c.tokens.shape == (81, 4, 256)
    assert c.keypoints.min() >= 0 and c.keypoints.max() <= 1
    assert set(np.unique(c.keypoints[..., 2])) <= {0.0, 1.0}
    assert c.reference.shape == (128, 128, 3)


def test_keypoint_sides_follow_the_subject(clips):
    """Figure S2 / COCO / iBUG: 'left' is the subject's left, i.e. the image's right for a frontal person."""
    kp = clips[1].keypoints[0]
    body, face = kp[:17], kp[17:85]
    assert body[5, 0] > body[6, 0] and body[1, 0] > body[2, 0]  # left shoulder / eye on the image right
    assert face[0, 0] < face[16, 0] and face[36, 0] < face[45, 0]  # right cheekbone 1, right eye outer corner
    assert face[8, 1] > face[30, 1] > face[27, 1]  # chin below nose tip below nasal bridge
    np.testing.assert_allclose(kp[85, :2], body[9, :2], atol=1e-6)  # left hand wrist == body left wrist
    np.testing.assert_allclose(kp[106, :2], body[10, :2], atol=1e-6)


def test_silence_means_closed_mouth_in_every_frame(clips):
    assert [c.speech.running for c in clips] == [False, False, True, False]
    for c in clips:
        silent = c.speech.silent_frames()
        if c.speech.running:  # no inserted pauses: speech from the first frame to the last
            assert not c.speech.pauses and not silent.any() and c.speech.text.startswith("…")
            continue
        assert silent.sum() >= 5, "every clip of phrases and pauses holds a pause of >= 0.3 s"
        assert np.all(mouth_aperture(c.keypoints)[silent] == 0.0)
        # measured on the rendered pixels too: no dark mouth interior or teeth in any silent frame
        area = mouth_opening_area(c.frames, c.keypoints, c.identity.framing.unit)
        assert np.all(area[silent] == 0.0)
        assert area[~silent].max() > 0.02


def test_mouth_aperture_follows_speech_envelope(clips):
    r_gt, r_px = [], []
    for c in clips:
        env = c.features.rms
        r_gt.append(np.corrcoef(mouth_aperture(c.keypoints), env)[0, 1])
        area = mouth_opening_area(c.frames, c.keypoints, c.identity.framing.unit)
        r_px.append(np.corrcoef(area, env)[0, 1])
    print(f"corr(mouth aperture, speech RMS envelope): keypoints {np.mean(r_gt):.3f}, pixels {np.mean(r_px):.3f}")
    assert min(r_gt) > 0.7
    assert np.mean(r_px) > 0.6


def test_two_identities_differ(clips):
    a, b = clips[0].reference.astype(int), clips[1].reference.astype(int)
    assert np.abs(a - b).mean() > 10
    ia, ib = make_identity(0), make_identity(1)
    assert ia != ib and make_identity(0) == ia


def test_same_audio_two_styles_gives_different_plausible_motion(clips):
    wav = clips[0].wav
    assert len(clips[0].features.emphasis) >= 2
    person = make_identity(10)
    calm = replace(person, style=replace(person.style, gesture_rate=0.0, head_amp=0.05, favoured_hand="left"))
    lively = replace(person, style=replace(person.style, gesture_rate=1.0, gesture_amp=1.3, head_amp=0.2,
                                           favoured_hand="right"))  # fmt: skip
    a = drive_avatar(calm, wav, clip_seed=1)
    b = drive_avatar(lively, wav, clip_seed=1)
    c = drive_avatar(lively, wav, clip_seed=2)  # same person and style, another seed

    def travel(clip, rows):  # total path length of keypoints, frame fractions
        return np.abs(np.diff(clip.keypoints[:, rows, :2], axis=0)).sum()

    assert travel(b, [9, 10]) > 2 * travel(a, [9, 10])  # the lively style gestures, the calm one hardly
    assert a.motion.lift.max() < 1e-6 < 0.3 < b.motion.lift.max()
    assert travel(b, [0]) > travel(a, [0])  # and moves its head more
    assert np.abs(b.keypoints - c.keypoints)[..., :2].max() > 0.02  # another seed, another performance
    # ... yet all of them talk in sync with the same audio: closed mouth on the same silent frames
    for x in (a, b, c):
        np.testing.assert_array_equal(x.motion.mouth_open == 0, clips[0].motion.mouth_open == 0)


def test_rest_during_pauses_and_emphasis_drives_motion():
    clip = make_clip(identity_seed=3, clip_seed=7, num_frames=161)
    m, silent = clip.motion, clip.speech.silent_frames()
    assert len(clip.features.emphasis) >= 2
    # hands are lifted more while speaking than in pauses
    speaking = clip.features.voiced
    assert m.lift[speaking].max() > 0.1
    assert m.lift[silent].mean() < m.lift[speaking].mean()
    # eyebrows rise only around emphasis
    far = np.ones(len(m.brow), bool)
    for e in clip.features.emphasis:
        far[max(0, e - 8) : e + 9] = False
    assert np.all(m.brow[far] < 1e-6)


def test_blinks_happen():
    ident = make_identity(5)
    feats = audio_features(np.zeros(250 * SAMPLES_PER_FRAME, np.float32))  # 10 s of silence
    m = drive(feats, ident.style, seed=0)
    closed = m.blink > 0.9
    starts = np.flatnonzero(closed[1:] & ~closed[:-1])
    assert 1 <= len(starts) <= 10
    kp, _ = pose_keypoints(ident, m)
    lid = np.linalg.norm(kp[:, 17 + 37, :2] - kp[:, 17 + 41, :2], axis=1)
    assert lid[closed].max() < 0.2 * lid[m.blink == 0].min()
    assert np.all(m.mouth_open == 0) and np.all(m.lift < 1e-3)  # silence: closed mouth, hands at rest
