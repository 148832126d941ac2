"""Decoding photos into the RGB arrays the model takes.

Handles what real folders hold: EXIF orientation (phone photos), RGBA and
palette images (composited over white), greyscale, 16-bit and CMYK images,
animated GIFs (first frame), and refuses truncated files, non-images and
decompression bombs with an ``ImageError`` instead of crashing.
"""

from __future__ import annotations

import io
import re
import warnings
from datetime import datetime, timezone

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Formats facesearch decodes. Pillow knows more, but these are the photo formats.
SUPPORTED_FORMATS = {"JPEG", "MPO", "PNG", "WEBP", "BMP", "DIB", "GIF", "TIFF"}
ORIENTATION_TAG = 0x0112  # EXIF: how to turn the stored pixels upright
EXIF_IFD = 0x8769
DATETIME_ORIGINAL_TAG = 0x9003  # when the photo was taken (camera clock, no time zone)
DATETIME_TAG = 0x0132  # when the file was last changed by the camera or an editor


class ImageError(ValueError):
    """A file or upload that cannot be used as a photo; the message says why."""

    def __init__(self, message: str, code: str = "invalid_image") -> None:
        super().__init__(message)
        self.code = code


def capture_time(data: bytes) -> float | None:
    """When the photo was taken, as POSIX seconds: EXIF DateTimeOriginal,
    else EXIF DateTime, read as UTC (EXIF stores the camera's local clock
    with no time zone); None when the photo has neither or is unreadable.
    Reads the header only."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exif = Image.open(io.BytesIO(data)).getexif()
        value = exif.get_ifd(EXIF_IFD).get(DATETIME_ORIGINAL_TAG) or exif.get(DATETIME_TAG)
        if not isinstance(value, str):
            return None
        taken = datetime.strptime(value.strip().rstrip("\x00")[:19], "%Y:%m:%d %H:%M:%S")
        return taken.replace(tzinfo=timezone.utc).timestamp()
    except (OSError, ValueError, SyntaxError, UnidentifiedImageError):
        return None


def decode_rgb(data: bytes, *, max_pixels: int = 100_000_000) -> np.ndarray:
    """The photo in ``data`` as a C-contiguous ``uint8`` array (H, W, 3), upright.

    Raises ``ImageError`` for empty data, unknown formats, truncated files and
    images of more than ``max_pixels`` pixels (checked from the header, before
    any pixel is decoded).
    """
    if not data:
        raise ImageError("the file is empty (0 bytes)", code="empty_image")
    try:
        with warnings.catch_warnings():
            # Pillow warns (and past 2x raises) on huge images; we check ourselves.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in SUPPORTED_FORMATS:
                raise ImageError(
                    f"unsupported image format {image.format}; use JPEG, PNG, WebP, BMP, GIF or TIFF",
                    code="unsupported_image_format",
                )
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(
                    f"image is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,}",
                    code="image_too_large",
                )
            image.seek(0)  # first frame of an animated GIF/WebP/TIFF
            image.load()
            # exif_transpose copies the image even when there is nothing to do.
            if image.getexif().get(ORIENTATION_TAG, 1) != 1:
                image = ImageOps.exif_transpose(image)
            return to_rgb_array(image)
    except ImageError:
        raise
    except UnidentifiedImageError:
        if _looks_like_a_photo(data):  # Pillow could not read past the start: cut short or corrupt
            raise ImageError("cannot decode the image: its header is truncated or corrupt") from None
        raise ImageError("not an image (the format was not recognised)", code="unsupported_image_format") from None
    except Image.DecompressionBombError as exc:
        # Pillow's own guard, raised from the header for sizes far over its
        # default limit (and so over any sensible ``max_pixels``).
        size = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = f"{int(size.group(1)):,} pixels" if size else "too many pixels"
        raise ImageError(f"image is {pixels}, over the limit of {max_pixels:,}", code="image_too_large") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"cannot decode the image: {exc}") from None


PREVIEW_QUALITY = 85  # JPEG quality of previews


def preview_jpeg(data: bytes, max_side: int, *, max_pixels: int = 100_000_000) -> bytes:
    """A JPEG of the photo in ``data``, upright, at most ``max_side`` pixels
    on its longest side (never enlarged). A JPEG is decoded at a reduced
    scale when that suffices (``draft``: a 12 MP photo to 1600 px decodes
    about 4x faster); other formats as ``decode_rgb``. ``ImageError`` as it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format in ("JPEG", "MPO") and image.size[0] * image.size[1] <= max_pixels:
                orientation = image.getexif().get(ORIENTATION_TAG, 1)
                image.draft("RGB", (max_side, max_side))
                image.load()
                if orientation != 1:
                    image = ImageOps.exif_transpose(image)
                return rgb_jpeg(to_rgb_array(image), max_side)
    except (OSError, SyntaxError, ValueError, EOFError, UnidentifiedImageError, Image.DecompressionBombError):
        pass  # decode_rgb says what is wrong
    return rgb_jpeg(decode_rgb(data, max_pixels=max_pixels), max_side)


def rgb_jpeg(rgb: np.ndarray, max_side: int) -> bytes:
    """A JPEG of an RGB array, at most ``max_side`` pixels on its longest side."""
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    image.thumbnail((max_side, max_side), Image.BILINEAR, reducing_gap=2.0)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=PREVIEW_QUALITY)
    return out.getvalue()


# How the files of SUPPORTED_FORMATS start.
SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")


def _looks_like_a_photo(data: bytes) -> bool:
    return data.startswith(SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """Convert any Pillow mode to 8-bit RGB. Transparency is composited over
    white; 16/32-bit greyscale is scaled to 8 bits (not clipped, which would
    turn most of a 16-bit photo white)."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        grey = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode != "I" or grey.max(initial=0) > 255 else 255.0
        grey8 = np.clip(grey / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey8[:, :, None], 3, axis=2))
    if mode == "F":
        grey = np.asarray(image, dtype=np.float64)
        lo, hi = float(grey.min(initial=0)), float(grey.max(initial=1))
        grey8 = np.clip((grey - lo) / max(hi - lo, 1e-12) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey8[:, :, None], 3, axis=2))
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("LA", "PA", "La"):
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "RGBa"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
