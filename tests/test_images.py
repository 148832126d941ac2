"""Decoding photos of every supported kind into upright 8-bit RGB."""

import io

import numpy as np
import pytest
from PIL import Image

from indexer.images import ImageError, decode_rgb
from tests.conftest import lfw_photo

PHOTO = lfw_photo("Colin_Powell", 1)


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


@pytest.fixture
def rgb_image() -> Image.Image:
    return Image.open(PHOTO).convert("RGB")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF"])
def test_every_format_decodes_to_rgb(rgb_image: Image.Image, fmt: str):
    rgb = decode_rgb(encode(rgb_image, fmt))
    assert rgb.shape == (250, 250, 3) and rgb.dtype == np.uint8 and rgb.flags.c_contiguous
    # Lossy formats and GIF's palette differ a little, never wholesale.
    assert np.abs(rgb.astype(int) - np.asarray(rgb_image, dtype=int)).mean() < 12


def test_gif_first_frame_is_used():
    red, blue = Image.new("RGB", (40, 30), (255, 0, 0)), Image.new("RGB", (40, 30), (0, 0, 255))
    data = encode(red, "GIF", save_all=True, append_images=[blue])
    rgb = decode_rgb(data)
    assert tuple(rgb[5, 5]) == (255, 0, 0)


def test_exif_orientation_is_applied(rgb_image: Image.Image):
    wide = rgb_image.resize((300, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    rgb = decode_rgb(encode(wide, "JPEG", exif=exif))
    assert rgb.shape == (300, 200, 3)
    expected = np.asarray(wide.transpose(Image.Transpose.ROTATE_270))
    assert np.abs(rgb.astype(int) - expected.astype(int)).mean() < 8


def test_rgba_is_composited_over_white():
    image = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    image.putpixel((0, 0), (10, 20, 30, 255))
    rgb = decode_rgb(encode(image, "PNG"))
    assert tuple(rgb[5, 5]) == (255, 255, 255)
    assert tuple(rgb[0, 0]) == (10, 20, 30)


def test_palette_with_transparency_and_greyscale(rgb_image: Image.Image):
    palette = rgb_image.convert("P")
    palette.info["transparency"] = 0
    assert decode_rgb(encode(palette, "PNG")).shape == (250, 250, 3)
    grey = decode_rgb(encode(rgb_image.convert("L"), "PNG"))
    assert grey.shape == (250, 250, 3)
    assert (grey[..., 0] == grey[..., 1]).all()


def test_16_bit_greyscale_is_scaled_not_clipped(rgb_image: Image.Image):
    grey8 = np.asarray(rgb_image.convert("L"), dtype=np.uint16)
    image16 = Image.fromarray(grey8 * 257)  # full 16-bit range
    assert image16.mode.startswith("I")
    rgb = decode_rgb(encode(image16, "PNG"))
    assert np.abs(rgb[..., 0].astype(int) - grey8.astype(int)).max() <= 1


def test_cmyk_jpeg(rgb_image: Image.Image):
    assert decode_rgb(encode(rgb_image.convert("CMYK"), "JPEG")).shape == (250, 250, 3)


def test_truncated_file_is_an_error():
    data = PHOTO.read_bytes()
    with pytest.raises(ImageError) as info:
        decode_rgb(data[: len(data) // 2])
    assert info.value.code == "invalid_image"


@pytest.mark.parametrize(
    "data, code",
    [(b"", "empty_image"), (b"this is not an image", "unsupported_image_format"), (b"%PDF-1.4\n", "unsupported_image_format")],
)
def test_non_images_are_errors(data: bytes, code: str):
    with pytest.raises(ImageError) as info:
        decode_rgb(data)
    assert info.value.code == code


def test_pixel_limit_is_checked_before_decoding():
    bomb = encode(Image.new("1", (20_000, 20_000)), "PNG")  # 400 Mpx in a few kB
    assert len(bomb) < 100_000
    with pytest.raises(ImageError) as info:
        decode_rgb(bomb, max_pixels=50_000_000)
    assert info.value.code == "image_too_large"


def test_capture_time_from_exif_else_none(tmp_path):
    from datetime import datetime, timezone

    from indexer.images import DATETIME_ORIGINAL_TAG, EXIF_IFD, capture_time

    image = Image.new("RGB", (8, 8), "white")
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL_TAG] = "2024:07:14 09:30:05"
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    assert capture_time(out.getvalue()) == datetime(2024, 7, 14, 9, 30, 5, tzinfo=timezone.utc).timestamp()
    plain = io.BytesIO()
    image.save(plain, format="PNG")
    assert capture_time(plain.getvalue()) is None
    assert capture_time(b"not an image") is None
