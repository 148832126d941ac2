"""Decoding photos of every supported kind into upright 8-bit RGB."""

import io
import time
from datetime import UTC

import numpy as np
import pytest
from PIL import Image

from indexer.images import ImageError, decode_rgb, decode_within
from tests.helpers import lfw_photo

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
    [
        (b"", "empty_image"),
        (b"this is not an image", "unsupported_image_format"),
        (b"%PDF-1.4\n", "unsupported_image_format"),
    ],
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
    from datetime import datetime

    from indexer.images import DATETIME_ORIGINAL_TAG, EXIF_IFD, capture_time

    image = Image.new("RGB", (8, 8), "white")
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL_TAG] = "2024:07:14 09:30:05"
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    assert capture_time(out.getvalue()) == datetime(2024, 7, 14, 9, 30, 5, tzinfo=UTC).timestamp()
    plain = io.BytesIO()
    image.save(plain, format="PNG")
    assert capture_time(plain.getvalue()) is None
    assert capture_time(b"not an image") is None


# -- query photos: at most max_decoded_pixels decoded ---------------------------


def jpeg_of_size(rgb_image: Image.Image, size: tuple[int, int], **kwargs) -> bytes:
    return encode(rgb_image.resize(size), "JPEG", **kwargs)


@pytest.mark.parametrize("size, limit, min_side, scale", [
    ((4000, 3000), 16_000_000, 1600, 1),  # within the limit: decoded whole, as the indexer does
    ((6000, 4000), 16_000_000, 1600, 2),  # 24 MP: 1/2 is 6 MP
    ((7000, 7000), 16_000_000, 1600, 2),
    ((7000, 7000), 3_000_000, 1600, 4),  # 1750 x 1750
    ((12_800, 1_000), 300_000, 1600, 8),  # 1600 x 125: the longest side just keeps min_side
    # Refused: at the most reduction that keeps min_side, still over the limit.
    ((12_800, 1_000), 300_000, 2000, 4),  # 1/8 would fit, but 1600 < min_side
    ((12_800, 1_000), 100_000, 1600, 8),  # even 1/8 is over
    ((3201, 2000), 1_000_000, 1600, 2),  # 1601 x 1000 is over; 1/4 (801 px) is below min_side
])
def test_a_jpeg_is_decoded_at_the_least_reduction_within_the_limit(rgb_image, size, limit, min_side, scale):
    data = jpeg_of_size(rgb_image, size)
    width, height = size
    reduced = (-(-width // scale), -(-height // scale))
    if reduced[0] * reduced[1] > limit:
        with pytest.raises(ImageError) as info:
            decode_within(data, max_decoded_pixels=limit, min_side=min_side)
        assert info.value.code == "image_too_large" and "service.max_decoded_pixels" in str(info.value)
        return
    photo = decode_within(data, max_decoded_pixels=limit, min_side=min_side)
    assert photo.scale == scale and (photo.width, photo.height) == size
    assert photo.rgb.shape == (reduced[1], reduced[0], 3) and photo.rgb.flags.c_contiguous
    assert max(photo.rgb.shape) >= min_side  # never below the detection size
    if scale > 1:  # the least reduction: the next smaller one would not fit
        half = scale // 2
        assert -(-width // half) * -(-height // half) > limit


def test_a_reduced_jpeg_is_upright(rgb_image: Image.Image):
    wide = rgb_image.resize((4000, 3000))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    photo = decode_within(encode(wide, "JPEG", exif=exif), max_decoded_pixels=4_000_000, min_side=1600)
    assert photo.scale == 2 and (photo.width, photo.height) == (3000, 4000)
    assert photo.rgb.shape == (2000, 1500, 3)
    expected = np.asarray(wide.resize((2000, 1500)).transpose(Image.Transpose.ROTATE_270))
    assert np.abs(photo.rgb.astype(int) - expected.astype(int)).mean() < 8


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "BMP", "GIF", "TIFF"])
def test_formats_that_cannot_be_reduced_are_refused_past_the_limit_before_decoding(fmt, monkeypatch):
    from PIL import ImageFile

    data = encode(Image.new("RGB", (400, 300), "white"), fmt)
    photo = decode_within(data, max_decoded_pixels=400 * 300, min_side=100)
    assert photo.scale == 1 and photo.rgb.shape == (300, 400, 3)
    loads = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self, *a, **k: loads.append(self))
    started = time.perf_counter()
    with pytest.raises(ImageError) as info:
        decode_within(data, max_decoded_pixels=400 * 300 - 1, min_side=100)
    assert time.perf_counter() - started < 0.1 and loads == []  # from the header
    assert info.value.code == "image_too_large"
    message = str(info.value)
    assert "120,000 pixels" in message and f"{fmt} cannot be decoded at reduced scale" in message.replace("WEBP", fmt)
    assert "service.max_decoded_pixels" in message and "send it as a JPEG" in message


def test_a_preview_decodes_a_jpeg_at_the_most_reduction_that_keeps_its_size(rgb_image, monkeypatch):
    from PIL import ImageFile

    from indexer.images import preview_jpeg

    decoded, load = [], ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self, *a, **k: (decoded.append(self.size),
                                                                            load(self, *a, **k))[1])
    preview = Image.open(io.BytesIO(preview_jpeg(jpeg_of_size(rgb_image, (4000, 3000)), 900)))
    assert decoded[0] == (1000, 750) and preview.size == (900, 675)  # 1/4: 1/8 would be 500 px
