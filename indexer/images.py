"""Decoding photos into the RGB arrays the model takes.

Handles what real folders hold: EXIF orientation (phone photos), RGBA and
palette images (composited over white), greyscale, 16-bit and CMYK images,
animated GIFs (first frame), and refuses truncated files, non-images and
decompression bombs with an ``ImageError`` instead of crashing.

A JPEG can be decoded at 1/2, 1/4 or 1/8 of its size (libjpeg's DCT
scaling, Pillow's ``draft``) for a fraction of the time and memory; the
other formats are decoded whole, so ``decode_within`` bounds the pixels a
query photo decodes, checked from the header.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Formats facesearch decodes. Pillow knows more, but these are the photo formats.
SUPPORTED_FORMATS = {"JPEG", "MPO", "PNG", "WEBP", "BMP", "DIB", "GIF", "TIFF"}
ORIENTATION_TAG = 0x0112  # EXIF: how to turn the stored pixels upright
EXIF_IFD = 0x8769
DATETIME_ORIGINAL_TAG = 0x9003  # when the photo was taken (camera clock, no time zone)
DATETIME_TAG = 0x0132  # when the file was last changed by the camera or an editor
REDUCIBLE_FORMATS = {"JPEG", "MPO"}  # decoded at a reduced scale by libjpeg
REDUCTIONS = (1, 2, 4, 8)  # what libjpeg offers: 1/1, 1/2, 1/4, 1/8 of each side
TURNED = {5, 6, 7, 8}  # EXIF orientations that swap width and height


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
        return taken.replace(tzinfo=UTC).timestamp()
    except (OSError, ValueError, SyntaxError, UnidentifiedImageError):
        return None


@dataclass(frozen=True)
class ScaledPhoto:
    """A photo as ``decode_within`` decodes it: ``rgb`` (H, W, 3) ``uint8``,
    upright, at 1/``scale`` of the photo's own ``width`` x ``height`` (upright,
    pixels); ``scale`` 1 is full size."""

    rgb: np.ndarray
    scale: int
    width: int
    height: int


def decode_rgb(data: bytes, *, max_pixels: int = 100_000_000) -> np.ndarray:
    """The photo in ``data`` as a C-contiguous ``uint8`` array (H, W, 3), upright.

    Raises ``ImageError`` for empty data, unknown formats, truncated files and
    images of more than ``max_pixels`` pixels (checked from the header, before
    any pixel is decoded).
    """
    return _decode(data, max_pixels, lambda width, height: 1).rgb


def decode_within(data: bytes, *, max_decoded_pixels: int, min_side: int = 0,
                  max_pixels: int = 100_000_000) -> ScaledPhoto:
    """The photo in ``data``, decoding at most ``max_decoded_pixels`` pixels.
    A JPEG of more is decoded at the least reduction (1/2, 1/4, 1/8) that
    brings it within, never below ``min_side`` pixels on its longest side;
    the other formats cannot be reduced and are refused past it
    (``ImageError`` "image_too_large", from the header: nothing is decoded).

    The least reduction, not the most: faces are encoded from this copy, and
    a face below ~150 px in it drifts away from its full-size embedding
    (``benchmarks/big_photo.py --matches``); a photo within the limit is
    decoded whole, as the indexer decodes it. Other errors as ``decode_rgb``.
    """
    def least(width: int, height: int) -> int:
        allowed = [s for s in REDUCTIONS if s == 1 or _ceil(max(width, height), s) >= min_side]
        return next((s for s in allowed if _ceil(width, s) * _ceil(height, s) <= max_decoded_pixels), allowed[-1])

    return _decode(data, max_pixels, least, max_decoded_pixels)


def _decode(data: bytes, max_pixels: int, reduction: Callable[[int, int], int],
            max_decoded_pixels: int | None = None) -> ScaledPhoto:
    """Decode ``data``: a JPEG at the reduction ``reduction(width, height)``
    asks for; at most ``max_pixels`` in the header and ``max_decoded_pixels``
    decoded."""
    if not data:
        raise ImageError("the file is empty (0 bytes)", code="empty_image")
    try:
        with warnings.catch_warnings():
            # Pillow warns (and past 2x raises) on huge images; we check ourselves.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data))
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
            scale = _draft(image, reduction(width, height)) if image.format in REDUCIBLE_FORMATS else 1
            decoded = image.size[0] * image.size[1]
            if max_decoded_pixels is not None and decoded > max_decoded_pixels:
                whole = f" ({image.format} cannot be decoded at reduced scale)" if scale == 1 else ""
                raise ImageError(
                    f"image is {width}x{height}: decoding it takes {decoded:,} pixels{whole}, over the limit of "
                    f"{max_decoded_pixels:,} (service.max_decoded_pixels); send it as a JPEG (decoded at reduced "
                    "scale) or as a smaller image",
                    code="image_too_large",
                )
            image.load()
            # exif_transpose copies the image even when there is nothing to do.
            orientation = image.getexif().get(ORIENTATION_TAG, 1)
            if orientation != 1:
                image = ImageOps.exif_transpose(image)
            if orientation in TURNED:
                width, height = height, width
            return ScaledPhoto(to_rgb_array(image), scale, width, height)
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


def _draft(image: Image.Image, scale: int) -> int:
    """Set a JPEG to decode at 1/``scale`` of each side; the reduction set."""
    if scale == 1:
        return 1
    width, height = image.size
    # Pillow reduces by min(width // w, height // h) for a requested (w, h).
    drafted = image.draft(image.mode, (max(1, width // scale), max(1, height // scale)))
    return round(width / drafted[1][2]) if drafted else 1


def _ceil(pixels: int, scale: int) -> int:
    """A side of ``pixels`` decoded at 1/``scale`` (libjpeg rounds up)."""
    return -(-pixels // scale)


PREVIEW_QUALITY = 85  # JPEG quality of previews


def preview_jpeg(data: bytes, max_side: int, *, max_pixels: int = 100_000_000) -> bytes:
    """A JPEG of the photo in ``data``, upright, at most ``max_side`` pixels
    on its longest side (never enlarged). A JPEG is decoded at the most
    reduction that keeps ``max_side`` (a 12 MP photo to 1600 px decodes
    about 4x faster); other formats as ``decode_rgb``. ``ImageError`` as it."""
    def most(width: int, height: int) -> int:
        return max(s for s in REDUCTIONS if s == 1 or _ceil(max(width, height), s) >= max_side)

    return rgb_jpeg(_decode(data, max_pixels, most).rgb, max_side)


def rgb_jpeg(rgb: np.ndarray, max_side: int) -> bytes:
    """A JPEG of an RGB array, at most ``max_side`` pixels on its longest side."""
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    image.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
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
