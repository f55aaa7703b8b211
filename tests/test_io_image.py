"""Image loading (orientation, alpha, odd modes, bad files) and face-aware fitting."""

import numpy as np
import pytest
from PIL import Image

from physavatar.io.errors import MediaError, MediaNotFoundError
from physavatar.io.image import crop_box, detect_face, fit_image, load_image


def marked_image(w=60, h=40):
    """White image with a red block in its top-left corner (shows where 'up' and 'left' went)."""
    a = np.full((h, w, 3), 255, np.uint8)
    a[: h // 3, : w // 3] = (255, 0, 0)
    return Image.fromarray(a)


def _is_red(px):
    r, g, b = px
    return r > 200 and g < 60 and b < 60


@pytest.mark.parametrize("orientation,corner", [(1, "tl"), (3, "br"), (6, "tr"), (8, "bl")])
def test_exif_orientation_applied(tmp_path, orientation, corner):
    img = marked_image()
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    img.save(path, quality=95, exif=exif.tobytes())
    out = load_image(path)
    assert out.mode == "RGB"
    assert out.size == ((60, 40) if orientation in (1, 3) else (40, 60))
    w, h = out.size
    probes = {"tl": (3, 3), "tr": (w - 4, 3), "bl": (3, h - 4), "br": (w - 4, h - 4)}
    for name, xy in probes.items():
        assert _is_red(out.getpixel(xy)) == (name == corner), (orientation, name)


def test_alpha_composited_on_white(tmp_path):
    a = np.zeros((40, 40, 4), np.uint8)
    a[:, :20] = (255, 0, 0, 0)  # fully transparent red -> white
    a[:, 20:] = (255, 0, 0, 128)  # half-transparent red -> pink
    Image.fromarray(a, "RGBA").save(tmp_path / "rgba.png")
    out = np.asarray(load_image(tmp_path / "rgba.png")).astype(int)
    assert (out[:, :20] == 255).all()
    assert np.abs(out[5, 30] - (255, 127, 127)).max() <= 2

    la = np.zeros((40, 40, 2), np.uint8)
    la[..., 0], la[..., 1] = 0, 255  # opaque black
    la[:10, :, 1] = 0  # transparent rows -> white
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    out = np.asarray(load_image(tmp_path / "la.png"))
    assert (out[:10] == 255).all() and (out[10:] == 0).all()

    p = Image.new("P", (40, 40), 0)
    p.putpalette([0, 0, 255] + [0, 255, 0] * 255)
    p.paste(1, (0, 0, 40, 20))
    p.save(tmp_path / "pal.png", transparency=0)  # palette index 0 (blue) is transparent
    out = np.asarray(load_image(tmp_path / "pal.png"))
    assert (out[25:] == 255).all() and (out[:20] == (0, 255, 0)).all()


def test_grayscale_cmyk_16bit_and_webp(tmp_path):
    Image.fromarray(np.full((40, 50), 77, np.uint8), "L").save(tmp_path / "g.png")
    assert np.asarray(load_image(tmp_path / "g.png"))[0, 0].tolist() == [77, 77, 77]

    Image.new("CMYK", (40, 40), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=95)  # pure red in CMYK
    out = np.asarray(load_image(tmp_path / "c.jpg")).astype(int)
    assert np.abs(out[20, 20] - (255, 0, 0)).max() < 12

    ramp = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)  # 0 .. 65520
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    out = np.asarray(load_image(tmp_path / "deep.png"))[..., 0].astype(int)
    assert np.abs(out - np.round(ramp / 65535 * 255)).max() <= 1  # scaled, not clipped at 255

    marked_image().save(tmp_path / "m.webp", lossless=True)
    out = load_image(tmp_path / "m.webp")
    assert out.size == (60, 40) and _is_red(out.getpixel((2, 2)))


def test_bad_images_raise_media_error(tmp_path):
    (tmp_path / "text.png").write_text("hello, not an image\n" * 10)
    marked_image(200, 200).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    marked_image(20, 100).save(tmp_path / "thin.png")
    (tmp_path / "zero.jpg").write_bytes(b"")
    cases = {"text.png": "not a readable image", "cut.png": "truncated or corrupt",
             "thin.png": r"too small \(20x100\)", "zero.jpg": "empty"}
    for name, pattern in cases.items():
        with pytest.raises(MediaError, match=f"{name}.*{pattern}"):
            load_image(tmp_path / name)
    with pytest.raises(MediaNotFoundError, match="nope.png"):
        load_image(tmp_path / "nope.png")


def test_face_aware_fit_on_a_real_portrait():
    skimage_data = pytest.importorskip("skimage.data")
    portrait = Image.fromarray(skimage_data.astronaut())  # 512 x 512, face near the top centre
    box = detect_face(portrait)
    assert box is not None
    x0, y0, x1, y1 = box
    assert 120 < (x0 + x1) / 2 < 320 and 40 < (y0 + y1) / 2 < 200 and 60 < y1 - y0 < 160

    for size in (256, (256, 192)):
        out = fit_image(portrait, size)
        th, tw = (size, size) if isinstance(size, int) else size
        assert out.size == (tw, th)
        face = detect_face(out)
        assert face is not None
        fx0, fy0, fx1, fy1 = face
        assert fy1 <= th / 2 + 2  # the whole face is in the upper half
        assert abs((fx0 + fx1) / 2 - tw / 2) < 0.12 * tw  # and centred horizontally
        assert 2.8 < th / (fy1 - fy0) < 4.5  # upper-body framing: ~3.5 face heights tall


def test_crop_box_geometry():
    # no face: centre crop of the largest box of the target aspect
    assert crop_box((400, 200), (100, 100)) == (100, 0, 300, 200)
    assert crop_box((200, 400), (100, 50), mode="center") == (0, 0, 200, 400)
    # face near the right edge: the crop shifts to stay inside the image, the face stays in it
    left, top, right, bottom = crop_box((1000, 800), (256, 256), (900, 100, 980, 180))
    assert (right, bottom - top) == (1000, 3.5 * 80) and left <= 900
    assert top == pytest.approx(140 - 0.30 * 280) and top >= 0
    # a face bigger than the image allows: fall back to the largest crop
    assert crop_box((300, 300), (64, 64), (0, 0, 300, 300)) == (0, 0, 300, 300)


def test_fit_without_face_is_centre_crop():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (120, 200, 3), dtype=np.uint8)
    out = fit_image(Image.fromarray(a), 60)
    ref = Image.fromarray(a[:, 40:160]).resize((60, 60), Image.Resampling.LANCZOS, reducing_gap=3.0)
    diff = np.abs(np.asarray(out).astype(int) - np.asarray(ref))
    assert diff[3:-3, 3:-3].max() <= 1  # the edges differ: resizing inside the full image filters across them
    assert detect_face(a) is None
