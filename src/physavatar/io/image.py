"""Images in: any PIL-readable file to clean 8-bit RGB; face detection; subject-keeping crop + resize.

`load_image` undoes EXIF rotation, composites transparency on white and converts grayscale, palette,
CMYK and 16-bit images, so downstream code only ever sees RGB. `fit_image` crops to the target aspect with
the subject kept: with a face, an upper-body framing (face centred horizontally, in the upper third, frame
about 3.5 face heights tall, like the paper's talking-avatar clips); without one, a centre crop.
"""

from __future__ import annotations

import functools
import io
import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from physavatar.io.errors import MediaError, media_error, require_file, MediaWarning

MIN_SIDE = 32  # smaller images carry no usable identity
# Upper-body framing: crop height in face heights, and where the face centre sits (fraction from the top).
FRAMING = {"upper_body": (3.5, 0.30), "face": (1.8, 0.45)}


def _to_rgb(img: Image.Image, name: str) -> Image.Image:
    """Any PIL mode -> 8-bit RGB; transparency composited on white, 16/32-bit and float scaled to 8 bits."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode == "P":  # palette images may carry transparency in their info
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode == "CMYK":
        return _cmyk_to_rgb(img)
    if mode.startswith("I") or mode == "F":  # I;16, I;16B, I (32-bit int), F (float)
        a = np.asarray(img).astype(np.float64)
        top = 65535.0 if mode.startswith("I;16") or (a.size and a.max() > 255) else 255.0
        if mode == "F" and a.size and a.max() <= 1.0:
            top = 1.0  # float images in [0, 1]
        a8 = np.clip(np.round(a / top * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(a8, mode="L").convert("RGB")
    try:
        return img.convert("RGB")  # L, 1, YCbCr, LAB, HSV
    except (ValueError, OSError) as e:
        raise media_error(name, f"image mode {mode} cannot be converted to RGB ({e})",
                          "save it as an ordinary RGB jpg/png") from None


def _cmyk_to_rgb(img: Image.Image) -> Image.Image:
    # With an embedded ICC profile (print-ready files) a colour-managed conversion is far more faithful
    # than PIL's naive one; fall back to the naive one if littleCMS is unavailable or the profile is bad.
    icc = img.info.get("icc_profile")
    if icc:
        try:
            from PIL import ImageCms
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(img, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except Exception:  # noqa: BLE001 - any CMS failure means "use the plain conversion"
            pass
    return img.convert("RGB")


def load_image(path: str | os.PathLike, *, min_side: int = MIN_SIDE) -> Image.Image:
    """Read an image file as RGB (EXIF orientation applied); MediaError if unreadable or too small."""
    p = require_file(path, "image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as img:
                img.load()  # decode now, so truncated files fail here and not later
                img = ImageOps.exif_transpose(img) or img
                rgb = _to_rgb(img, p)
                rgb.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise media_error(p, f"image is too large to load safely ({e})", "downscale it first") from None
    except UnidentifiedImageError:
        raise media_error(p, "is not a readable image", "give a jpg, png or webp image (a renamed file of another "
                          "type will not work)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        if isinstance(e, MediaError):
            raise
        raise media_error(p, f"image could not be decoded ({e})", "the file is probably truncated or corrupt: "
                          "re-export or re-download it") from None
    w, h = rgb.size
    if min(w, h) < min_side:
        raise media_error(p, f"image is too small ({w}x{h})", f"give an image at least {min_side} px on each side "
                          "(512 px or more for good results)")
    return rgb


def haar_cascade(name: str):
    """OpenCV's Haar cascade `name` (e.g. "haarcascade_frontalface_default.xml"), or None where this OpenCV has
    no cascade files (the 5.x headless wheels ship none; opencv-contrib-python does). Callers cache it."""
    import cv2

    path = os.path.join(getattr(getattr(cv2, "data", None), "haarcascades", ""), name)
    if not hasattr(cv2, "CascadeClassifier") or not os.path.isfile(path):
        return None
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"OpenCV's cascade {path} could not be loaded; reinstall opencv-python-headless")
    return cascade


@functools.lru_cache(maxsize=1)
def _face_cascade():
    """The frontal-face cascade, or None (with a warning) where this OpenCV has none."""
    cascade = haar_cascade("haarcascade_frontalface_default.xml")
    if cascade is None:
        import cv2

        warnings.warn(f"OpenCV {getattr(cv2, '__version__', '?')} has no Haar cascades: images are centre-cropped "
                      "without face detection; pip install opencv-contrib-python for face-aware crops", MediaWarning,
                      stacklevel=3)
    return cascade


def _as_array(image: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    if a.ndim != 3 or a.shape[-1] not in (3, 4) or a.dtype != np.uint8:
        raise MediaError(f"<array>: image has shape {a.shape} and dtype {a.dtype}; pass an (H, W, 3) uint8 RGB "
                         "array or a PIL image")
    return a[..., :3]


def detect_face(image: Image.Image | np.ndarray, *, max_side: int = 640) -> tuple[int, int, int, int] | None:
    """Largest frontal face as (x0, y0, x1, y1) pixels, or None (OpenCV Haar cascade from cv2.data)."""
    import cv2
    rgb = _as_array(image)
    h, w = rgb.shape[:2]
    # Detection on a downscaled copy: as accurate for a portrait's main face, and 10x faster on photos.
    scale = min(1.0, max_side / max(h, w))
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    gray = cv2.equalizeHist(gray)
    min_face = max(24, int(0.08 * min(gray.shape)))  # ignore tiny background faces and texture false positives
    cascade = _face_cascade()
    if cascade is None:
        return None
    faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_face, min_face))
    if len(faces) == 0:
        return None
    x, y, fw, fh = max(faces, key=lambda f: int(f[2]) * int(f[3]))
    box = np.array([x, y, x + fw, y + fh], dtype=np.float64) / scale
    x0, y0, x1, y1 = np.round(box).astype(int)
    return int(max(0, x0)), int(max(0, y0)), int(min(w, x1)), int(min(h, y1))


def _target_hw(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    if len(size) != 2 or any(int(s) != s or s <= 0 for s in size):
        raise ValueError(f"fit_image: size {size!r} must be a positive int or an (height, width) pair")
    return int(size[0]), int(size[1])


def crop_box(image_wh: tuple[int, int], target_hw: tuple[int, int], face_box=None,
             mode: str = "upper_body") -> tuple[float, float, float, float]:
    """The (left, top, right, bottom) crop of an image of size (W, H) with the target's aspect (pure)."""
    W, H = image_wh
    th, tw = target_hw
    aspect = tw / th
    full_h = min(H, W / aspect)  # the largest crop of this aspect that fits
    if face_box is None or mode == "center":
        ch = full_h
        cx, cy = W / 2, H / 2
        top = cy - ch / 2
    else:
        if mode not in FRAMING:
            raise ValueError(f"fit_image: mode {mode!r} must be one of {sorted(FRAMING) + ['center']}")
        heights, at = FRAMING[mode]
        x0, y0, x1, y1 = face_box
        face_h = max(1.0, y1 - y0)
        ch = min(full_h, heights * face_h)
        cx = (x0 + x1) / 2
        top = (y0 + y1) / 2 - at * ch  # face centre at `at` of the crop height
    cw = ch * aspect
    left = min(max(cx - cw / 2, 0.0), W - cw)  # shift (never shrink) to stay inside the image
    top = min(max(top, 0.0), H - ch)
    return left, top, left + cw, top + ch


def fit_image(image: Image.Image, size: int | tuple[int, int], *, face_box=None,
              mode: str = "upper_body") -> Image.Image:
    """Crop to the target aspect keeping the subject, then resize to `size` (int: square; or (height, width)).

    face_box: (x0, y0, x1, y1) of the face, or None to detect it (`detect_face`); mode "upper_body"
    (default), "face" (tight head shot) or "center" (plain centre crop, no detection). Without a face the
    crop is centred.
    """
    if not isinstance(image, Image.Image):
        image = Image.fromarray(_as_array(image))
    image = image if image.mode == "RGB" else _to_rgb(image, "<image>")
    th, tw = _target_hw(size)
    if face_box is None and mode != "center":
        face_box = detect_face(image)
    box = crop_box(image.size, (th, tw), face_box, mode)
    return image.resize((tw, th), Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)
