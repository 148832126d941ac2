"""Bad and hostile requests to the query endpoints (POST /api/v1/search and
/api/v1/recall): every one gets the contract's error body with a 4xx, the
work it causes is bounded (a decompression bomb is refused from its header,
an animated GIF costs one frame), and the server answers the next good
request as before.

The app serves an index of made-up people (as ``people_index``, built once
for the module: these requests change nothing) through the fake face model:
a photo that is not of one colour shows one face."""

from __future__ import annotations

import io
import json
import random
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import GifImagePlugin, Image, ImageFile

from application.schemas import MAX_JSON_BODY_BYTES
from config.settings import load_settings
from indexer.images import ImageError, decode_rgb
from service import create_app
from tests.helpers import (
    PEOPLE_SIZES,
    FakeModel,
    assert_error,
    csrf_token_of,
    lfw_photo,
    person_faces,
    put_person,
    store_at,
)

ENDPOINTS = ["/api/v1/search", "/api/v1/recall"]
MAX_QUERY_PIXELS = 50_000_000  # service.max_query_pixels, the default


def photo(fmt: str = "PNG", size: tuple[int, int] = (64, 48), seed: int = 0) -> bytes:
    """A small photo of random pixels (one face for the fake model)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt)
    return out.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def black_png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of width x height black pixels, written row by row
    (never held in memory): 30,000 x 30,000 is 110 KB, 900 M pixels."""
    row = b"\x00" * (1 + (width + 7) // 8)  # filter type 0, then the packed bits
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


def many_frame_gif(frames: int, size: int = 64) -> bytes:
    """A GIF of ``frames`` frames, each one pixel at (0, 0) on a black
    screen: white on the first frame (and every other), black on the second."""
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", size, size, 0x80, 0, 0) + bytes([0, 0, 0, 255, 255, 255]))
    for i in range(frames):
        pixel = 1 - i % 2
        out += b"!\xf9\x04\x00\x01\x00\x00\x00"  # graphic control: 10 ms
        out += b"," + struct.pack("<HHHHB", 0, 0, 1, 1, 0)  # a 1x1 frame at (0, 0)
        out += b"\x02\x02" + struct.pack("<H", 4 | pixel << 3 | 5 << 6) + b"\x00"  # LZW: clear, pixel, end
    return bytes(out + b";")


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return black_png(30_000, 30_000)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("abuse") / "index"
    store = store_at(data_dir)
    for name, n in {**PEOPLE_SIZES, "stranger": 1}.items():
        put_person(store, name, n)
    store.checkpoint()
    store.close()
    app = create_app(load_settings(data_dir=data_dir), model=FakeModel())
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()


def post_files(client, url: str, *files: bytes, **fields):
    data = {"image": [(io.BytesIO(f), f"upload{i}.png") for i, f in enumerate(files)], **fields}
    return client.post(url, data=data, content_type="multipart/form-data")


def assert_still_serves(client, url: str) -> None:
    """A good photo and a good embedding query right after still work."""
    response = post_files(client, url, photo())
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert (len(body["faces"]) == 1 and body["faces"][0]["matches"]) if url.endswith("search") else body["probes"] == 1
    anna = person_faces("anna", 1, first=50)[0].tolist()
    query = {"embedding": anna} if url.endswith("search") else {"embeddings": [anna], "max_distance": 0.8}
    response = client.post(url, json=query)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    matched = body["faces"][0]["matches"] if url.endswith("search") else body["matches"]
    assert "/anna/" in matched[0]["path"]


@pytest.fixture
def decode_spy(monkeypatch):
    """Counts what Pillow decodes: pixel loads, and GIF frames sought."""
    seen = {"loads": 0, "gif_frames": []}
    load, gif_seek = ImageFile.ImageFile.load, GifImagePlugin.GifImageFile._seek

    def counting_load(self, *args, **kwargs):
        seen["loads"] += 1
        return load(self, *args, **kwargs)

    def counting_seek(self, frame, *args, **kwargs):
        seen["gif_frames"].append(frame)
        return gif_seek(self, frame, *args, **kwargs)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    monkeypatch.setattr(GifImagePlugin.GifImageFile, "_seek", counting_seek)
    return seen


# -- bad uploads ------------------------------------------------------------

TRUNCATED_JPEG = lfw_photo("Tony_Blair", 1).read_bytes()[:3000]

BAD_UPLOADS = {
    "empty": (b"", 400, "empty_image"),
    "text": (b"just some text, not a photo", 415, "unsupported_image_format"),
    "pdf": (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n", 415, "unsupported_image_format"),
    "truncated_jpeg": (TRUNCATED_JPEG, 400, "invalid_image"),
    "png_header_only": (photo()[:40], 400, "invalid_image"),
    "garbage_after_png_signature": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, 400, "invalid_image"),
    "icon": (photo("ICO", size=(16, 16)), 415, "unsupported_image_format"),  # Pillow reads it; not a photo format
}


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize("name", BAD_UPLOADS)
def test_bad_upload_is_a_4xx_and_the_server_keeps_serving(client, url, name):
    data, status, code = BAD_UPLOADS[name]
    assert_error(post_files(client, url, data), status, code)
    assert_still_serves(client, url)


@pytest.mark.parametrize("url", ENDPOINTS)
def test_decompression_bomb_is_refused_from_its_header(client, url, bomb, decode_spy):
    assert len(bomb) < 150_000 and struct.unpack(">II", bomb[16:24]) == (30_000, 30_000)  # IHDR
    error = assert_error(post_files(client, url, bomb), 413, "image_too_large")
    assert "900,000,000 pixels" in error["message"] and f"{MAX_QUERY_PIXELS:,}" in error["message"]
    assert decode_spy["loads"] == 0  # no pixel decoded
    assert_still_serves(client, url)
    assert decode_spy["loads"] > 0  # (the spy sees decoding)


@pytest.mark.parametrize("url", ENDPOINTS)
def test_query_photos_have_a_smaller_pixel_limit_than_indexing(client, url, decode_spy):
    # 100 M pixels: under Pillow's own bomb guard (179 M) and at the indexer's
    # limit, over the service's.
    big = black_png(10_000, 10_000)
    error = assert_error(post_files(client, url, big), 413, "image_too_large")
    assert "100,000,000 pixels" in error["message"] and f"{MAX_QUERY_PIXELS:,}" in error["message"]
    assert decode_spy["loads"] == 0


def test_the_pixel_limit_is_a_setting(people_index, fake_model):
    client = create_app(load_settings(data_dir=people_index, service={"max_query_pixels": 64 * 48 - 1}),
                        model=fake_model).test_client()
    assert_error(post_files(client, "/api/v1/search", photo(size=(64, 48))), 413, "image_too_large")
    assert post_files(client, "/api/v1/search", photo(size=(63, 48))).status_code == 200


def big_jpeg(side: int = 7000) -> bytes:
    """A ``side`` x ``side`` JPEG, white but for a patch of noise (one face for the fake model): ~1 MB."""
    canvas = Image.new("RGB", (side, side), "white")
    canvas.paste(Image.open(io.BytesIO(photo(size=(400, 300)))), (side // 2, side // 2))
    out = io.BytesIO()
    canvas.save(out, format="JPEG", quality=90)
    return out.getvalue()


@pytest.mark.parametrize("url", ENDPOINTS)
def test_a_png_past_the_decoding_limit_is_refused_from_its_header(client, url, decode_spy):
    """7000 x 7000 (49 M pixels, in 100 KB) is under the header limit, but a
    PNG is decoded whole: over service.max_decoded_pixels (16 M), refused
    before any pixel is decoded, with what to send instead."""
    png = black_png(7000, 7000)
    assert len(png) < 200_000
    started = time.perf_counter()
    error = assert_error(post_files(client, url, png), 413, "image_too_large")
    assert time.perf_counter() - started < 0.5 and decode_spy["loads"] == 0
    assert "49,000,000 pixels (PNG cannot be decoded at reduced scale)" in error["message"]
    assert "16,000,000 (service.max_decoded_pixels)" in error["message"] and "send it as a JPEG" in error["message"]
    assert_still_serves(client, url)


@pytest.mark.parametrize("url", ENDPOINTS)
def test_a_large_jpeg_is_decoded_at_reduced_scale_and_searched(app, client, url):
    """7000 x 7000 as a JPEG: decoded at 1/2 (3500 x 3500, within 16 M),
    searched, and its face boxed in the photo's own pixels."""
    encoded = app.extensions["facesearch"].model.encoder.calls
    encoded.clear()
    response = post_files(client, url, big_jpeg())
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [shape for shape, _ in encoded] == [(3500, 3500, 3)]
    if url.endswith("search"):
        [face] = response.get_json()["faces"]
        assert face["box"] == {"top": 0, "right": 7000, "bottom": 7000, "left": 0}  # the fake model's whole photo
    else:
        assert response.get_json()["probes"] == 1


def test_the_pages_refuse_a_png_past_the_decoding_limit(client):
    png = black_png(7000, 7000)
    for page in ("/", "/recall"):
        token = csrf_token_of(client.get(page).get_data(as_text=True))
        started = time.perf_counter()
        response = client.post(page, data={"photo": (io.BytesIO(png), "big.png"), "csrf_token": token},
                               content_type="multipart/form-data")
        html = response.get_data(as_text=True)
        assert response.status_code == 413 and response.mimetype == "text/html" and time.perf_counter() - started < 0.5
        assert '<p class="error">' in html and "service.max_decoded_pixels" in html and "send it as a JPEG" in html


def test_the_decoding_limit_is_a_setting(people_index, fake_model):
    client = create_app(load_settings(data_dir=people_index,
                                      service={"max_decoded_pixels": 64 * 48 - 1}), model=fake_model).test_client()
    error = assert_error(post_files(client, "/api/v1/search", photo(size=(64, 48))), 413, "image_too_large")
    assert "3,071 (service.max_decoded_pixels)" in error["message"]
    assert post_files(client, "/api/v1/search", photo(size=(63, 48))).status_code == 200


@pytest.mark.parametrize("url", ENDPOINTS)
def test_gif_with_thousands_of_frames_costs_one_frame(client, url, decode_spy):
    gif = many_frame_gif(5000)
    assert Image.open(io.BytesIO(gif)).n_frames == 5000
    decode_spy["gif_frames"].clear()
    response = post_files(client, url, gif)
    assert response.status_code == 200, response.get_data(as_text=True)  # the fake model finds a face
    assert set(decode_spy["gif_frames"]) == {0}, "only the first frame is read"
    rgb = decode_rgb(gif)
    assert rgb.shape == (64, 64, 3) and rgb[0, 0].tolist() == [255, 255, 255]  # the first frame's pixel


def test_upload_over_the_size_limit_is_413(people_index, fake_model):
    client = create_app(load_settings(data_dir=people_index, service={"max_upload_mb": 0.05}),
                        model=fake_model).test_client()
    large = photo(size=(400, 300))  # ~360 KB of noise
    assert len(large) > 0.05 * 1024 * 1024
    for url in ENDPOINTS:
        error = assert_error(post_files(client, url, large), 413, "payload_too_large")
        assert "52,428 bytes" in error["message"]
        assert_error(client.post(url, data=b"[" + b"0," * 40_000 + b"0]", content_type="application/json"),
                     413, "payload_too_large")
        assert_still_serves(client, url)


def test_recall_names_the_bad_probe_among_good_ones(client):
    url = "/api/v1/recall"
    error = assert_error(post_files(client, url, photo(seed=1), TRUNCATED_JPEG, photo(seed=2)), 400, "invalid_image")
    assert error["message"].startswith("probe 2:")
    blank = io.BytesIO()
    Image.new("RGB", (32, 32), "white").save(blank, format="PNG")
    error = assert_error(post_files(client, url, photo(seed=1), blank.getvalue()), 422, "no_face")
    assert "probe 2" in error["message"]
    assert post_files(client, url, photo(seed=1), photo(seed=2)).get_json()["probes"] == 2


def test_too_many_probe_photos_are_refused_before_any_is_decoded(client, decode_spy):
    photos = [photo(seed=i) for i in range(11)]  # recall.max_probes is 10
    error = assert_error(post_files(client, "/api/v1/recall", *photos), 422, "invalid_request")
    assert "at most 10" in error["message"] and decode_spy["loads"] == 0
    assert post_files(client, "/api/v1/recall", *photos[:10]).get_json()["probes"] == 10


@pytest.mark.parametrize("url", ENDPOINTS)
def test_missing_image_field(client, url):
    assert_error(client.post(url, data={"max_distance": "0.5"}, content_type="multipart/form-data"),
                 400, "missing_image")
    # a text field named image is not a file
    error = assert_error(client.post(url, data={"image": "photo.jpg"}, content_type="multipart/form-data"),
                         422, "invalid_request")
    assert "image" in error["message"]
    assert_error(client.post(url, data=b"--x--", content_type="multipart/form-data"), 400, "missing_image")


@pytest.mark.parametrize(
    "url, fields",
    [
        ("/api/v1/search", {"k": "0"}),
        ("/api/v1/search", {"k": "-1"}),
        ("/api/v1/search", {"k": "1001"}),
        ("/api/v1/search", {"k": "10" * 30}),
        ("/api/v1/search", {"k": "2.5"}),
        ("/api/v1/search", {"k": "ten"}),
        ("/api/v1/search", {"max_distance": "-0.1"}),
        ("/api/v1/search", {"max_distance": "nan"}),
        ("/api/v1/search", {"max_distance": "inf"}),
        ("/api/v1/search", {"surprise": "1"}),
        ("/api/v1/recall", {"limit": "0"}),
        ("/api/v1/recall", {"limit": "1001"}),
        ("/api/v1/recall", {"offset": "-1"}),
        ("/api/v1/recall", {"max_distance": "0"}),
        ("/api/v1/recall", {"max_distance": "NaN"}),
        ("/api/v1/recall", {"max_distance": "Infinity"}),
        ("/api/v1/recall", {"max_distance": "5"}),
        ("/api/v1/recall", {"time_from": "nan"}),
        ("/api/v1/recall", {"time_from": "10", "time_to": "5"}),
        ("/api/v1/recall", {"group_by": "camera"}),
        ("/api/v1/recall", {"expand": "maybe"}),
    ],
)
def test_bad_form_fields_are_422(client, url, fields):
    assert_error(post_files(client, url, photo(), **fields), 422, "invalid_request")
    assert_still_serves(client, url)


# -- JSON bodies --------------------------------------------------------------

GOOD = [0.01] * 128


def numbers(tokens: list[str]) -> str:
    return "[" + ", ".join(tokens) + "]"


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize(
    "body",
    ["{oops", "", "{\"embedding\": [0.1,]}", "[" * 100_000 + "]" * 100_000, b"{\"embedding\": \"\xff\xfe\"}",
     "{'k': 1}", "nul\x00l", "{\"embedding\": [1, 2] /* comment */}"],
    ids=["broken", "empty", "trailing_comma", "deeply_nested", "not_utf8", "single_quotes", "nul", "comment"],
)
def test_malformed_json_is_400(client, url, body):
    assert_error(client.post(url, data=body, content_type="application/json"), 400, "invalid_json")
    assert_still_serves(client, url)


def embedding_bodies(url: str, embedding_json: str) -> str:
    return (f"{{\"embedding\": {embedding_json}}}" if url.endswith("search")
            else f"{{\"embeddings\": [{json.dumps(GOOD)}, {embedding_json}]}}")


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize(
    "embedding",
    [
        numbers(["NaN"] * 128),
        numbers(["0.1"] * 127 + ["NaN"]),
        numbers(["0.1"] * 127 + ["Infinity"]),
        numbers(["-Infinity"] + ["0.1"] * 127),
        numbers(["1e400"] + ["0.1"] * 127),  # a finite-looking token that overflows a double
        numbers(["1e39"] + ["0.1"] * 127),  # finite as a double, infinite as float32
        numbers(["1e20"] * 128),  # finite as float32, overflows once squared
        numbers(["100.5"] + ["0.1"] * 127),
        numbers(["0.1"] * 127),
        numbers(["0.1"] * 129),
        numbers([]),
        numbers(["\"0.1\""] * 127 + ["\"x\""]),
        numbers(["null"] * 128),
        numbers(["true"] * 128),
        numbers([numbers(["0.1"] * 128)]),
        "{\"0\": 0.1}",
        "\"0.1, 0.2\"",
        "null",
    ],
    ids=["nan", "one_nan", "inf", "minus_inf", "1e400", "float32_overflow", "square_overflow", "over_100",
         "127", "129", "no_values", "strings", "nulls", "booleans", "nested", "object", "string", "null"],
)
def test_bad_embeddings_are_422(client, url, embedding):
    error = assert_error(client.post(url, data=embedding_bodies(url, embedding), content_type="application/json"),
                         422, "invalid_request")
    assert "embedding" in error["message"]
    assert_still_serves(client, url)


@pytest.mark.parametrize(
    "url, body",
    [
        ("/api/v1/search", {}),
        ("/api/v1/search", {"k": 3}),
        ("/api/v1/search", {"embeddings": [GOOD]}),
        ("/api/v1/search", {"embedding": GOOD, "k": 0}),
        ("/api/v1/search", {"embedding": GOOD, "k": -5}),
        ("/api/v1/search", {"embedding": GOOD, "k": 1001}),
        ("/api/v1/search", {"embedding": GOOD, "k": 10**30}),
        ("/api/v1/search", {"embedding": GOOD, "k": 2.5}),
        ("/api/v1/search", {"embedding": GOOD, "k": "many"}),
        ("/api/v1/search", {"embedding": GOOD, "max_distance": -1}),
        ("/api/v1/search", {"embedding": GOOD, "surprise": True}),
        ("/api/v1/search", [GOOD]),
        ("/api/v1/search", GOOD),
        ("/api/v1/recall", {}),
        ("/api/v1/recall", {"embedding": GOOD}),
        ("/api/v1/recall", {"embeddings": []}),
        ("/api/v1/recall", {"embeddings": GOOD}),
        ("/api/v1/recall", {"embeddings": [GOOD] * 11}),
        ("/api/v1/recall", {"embeddings": [GOOD], "limit": 0}),
        ("/api/v1/recall", {"embeddings": [GOOD], "limit": 1001}),
        ("/api/v1/recall", {"embeddings": [GOOD], "limit": 10**30}),
        ("/api/v1/recall", {"embeddings": [GOOD], "offset": -1}),
        ("/api/v1/recall", {"embeddings": [GOOD], "offset": 0.5}),
        ("/api/v1/recall", {"embeddings": [GOOD], "max_distance": 0}),
        ("/api/v1/recall", {"embeddings": [GOOD], "max_distance": 4.5}),
        ("/api/v1/recall", {"embeddings": [GOOD], "path_prefix": ""}),
        ("/api/v1/recall", {"embeddings": [GOOD], "fusion": "median"}),
    ],
)
def test_bad_json_fields_are_422(client, url, body):
    assert_error(client.post(url, json=body), 422, "invalid_request")
    assert_still_serves(client, url)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_refused_in_every_float_field(client, token):
    for url, body in [
        ("/api/v1/search", f"{{\"embedding\": {json.dumps(GOOD)}, \"max_distance\": {token}}}"),
        ("/api/v1/recall", f"{{\"embeddings\": [{json.dumps(GOOD)}], \"max_distance\": {token}}}"),
        ("/api/v1/recall", f"{{\"embeddings\": [{json.dumps(GOOD)}], \"time_to\": {token}}}"),
        ("/api/v1/clusters", f"{{\"stranger_distance\": {token}}}"),
    ]:
        assert_error(client.post(url, data=body, content_type="application/json"), 422, "invalid_request")


def test_large_recall_offset_is_an_empty_page(client):
    body = client.post("/api/v1/recall", json={"embeddings": [GOOD], "max_distance": 4, "offset": 10**30}).get_json()
    assert body["total"] > 0 and body["matches"] == []


def test_json_body_over_its_limit_is_refused_before_parsing(client):
    # Valid JSON, padded: a JSON body may be far smaller than a photo upload.
    padded = json.dumps({"embedding": GOOD}) + " " * MAX_JSON_BODY_BYTES
    for url in ["/api/v1/search", "/api/v1/recall", "/api/v1/clusters"]:
        error = assert_error(client.post(url, data=padded, content_type="application/json"), 413, "payload_too_large")
        assert f"{MAX_JSON_BODY_BYTES:,}" in error["message"]
    assert client.post("/api/v1/search", data=padded.strip(), content_type="application/json").status_code == 200


def test_validation_errors_are_summed_up_not_listed(client):
    body = {"embeddings": [["x"] * 128] * 10, "x" * 10_000: 1}
    error = assert_error(client.post("/api/v1/recall", json=body), 422, "invalid_request")
    assert "more errors" in error["message"] and len(error["message"]) < 1000


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "image/jpeg", "application/xml", None]
)
def test_other_content_types_are_415(client, url, content_type):
    response = client.post(url, data=b"k=3", headers={"Content-Type": content_type} if content_type else {})
    assert_error(response, 415, "unsupported_media_type")
    assert_still_serves(client, url)


# -- decoding, fuzzed -------------------------------------------------------

@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow on corrupt TIFF tags
def test_mutated_photos_decode_or_raise_image_error():
    """Seeded random corruptions of small photos of every format: each one
    decodes or is an ImageError, never another exception."""
    sources = {fmt: photo(fmt, size=(32, 24)) for fmt in ["JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF"]}
    rng = random.Random(6)
    outcomes = {"decoded": 0, "refused": 0}
    for _fmt, source in sources.items():
        for _ in range(60):
            data = bytearray(source)
            for _ in range(rng.randint(1, 6)):
                at = rng.randrange(len(data))
                if rng.random() < 0.7:
                    data[at] = rng.randrange(256)
                else:
                    del data[at:at + rng.randint(1, 32)]
            try:
                rgb = decode_rgb(bytes(data), max_pixels=MAX_QUERY_PIXELS)
            except ImageError:
                outcomes["refused"] += 1
            else:
                assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
                outcomes["decoded"] += 1
    assert outcomes["decoded"] > 0 and outcomes["refused"] > 0, outcomes


# -- ids ----------------------------------------------------------------------

@pytest.mark.parametrize(
    "method, url",
    [("GET", "/api/v1/faces/{}"), ("GET", "/api/v1/faces/{}/thumbnail"), ("DELETE", "/api/v1/faces/{}"),
     ("GET", "/api/v1/people/{}"), ("PATCH", "/api/v1/people/{}"), ("DELETE", "/api/v1/people/{}"),
     ("GET", "/api/v1/people/{}/faces"), ("POST", "/api/v1/people/{}/faces"), ("POST", "/api/v1/people/{}/rejections"),
     ("POST", "/api/v1/people/{}/merge"), ("POST", "/api/v1/people/{}/merge/undo"), ("GET", "/api/v1/photos/{}"),
     ("GET", "/api/v1/photos/{}/image"), ("PUT", "/api/v1/clusters/{}")],
)
def test_ids_beyond_sqlite_integers_are_404(client, method, url):
    """An id of 2**63 or more names nothing (SQLite integers are 64-bit)."""
    for face_id in [2**63, 10**30]:
        response = client.open(url.format(face_id), method=method, json={"name": "Somebody"})
        assert response.status_code == 404, response.get_data(as_text=True)
        assert set(response.get_json()["error"]) == {"code", "message"}


def test_k_means_seeds_beyond_a_c_int_are_422(client):
    # FAISS takes the seed as a C int: 2**40 was an OverflowError (a 500).
    for url in ["/api/v1/clusters/cost?seed=1099511627776", "/api/v1/clusters/cost.png?seed=-1"]:
        assert_error(client.get(url), 422, "invalid_request")
    assert_error(client.post("/api/v1/clusters", json={"k": 3, "seed": 2**40}), 422, "invalid_request")
    assert client.get("/api/v1/clusters/cost?seed=2147483647&k_max=3").status_code == 200


def test_a_crowd_photo_searches_only_its_largest_faces(people_index, fake_model):
    fake_model.faces_per_image = 6
    app = create_app(load_settings(data_dir=people_index, search={"max_query_faces": 2}), model=fake_model)
    response = post_files(app.test_client(), "/api/v1/search", photo(size=(120, 40)))
    assert response.status_code == 200
    body = response.get_json()
    assert len(body["faces"]) == 2 and body["faces_found"] == 6
    assert [faces for _, faces in fake_model.encoder.calls] == [2]  # the others are never encoded
