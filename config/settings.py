"""Settings: every default is written once, here, with what it means; then
a user file, environment variables and explicit values (CLI flags), each
overriding the one before.

Environment variables start with ``FACESEARCH_`` and use ``__`` for nested
groups: ``FACESEARCH_DATA_DIR``, ``FACESEARCH_DETECTION__UPSAMPLE=0``,
``FACESEARCH_SERVICE__PORT=9000``. ``FACESEARCH_API_KEYS`` (admin keys) and
``FACESEARCH_READ_KEYS`` (read-only keys) are comma-separated lists. A user
file is given by ``FACESEARCH_CONFIG`` or the CLI's ``--config``.

``config/default.toml`` and the settings table of ``docs/configuration.md``
are generated from these models (``config.reference``, ``make docs``): each
group's docstring and each field's description become their comments. So a
description is written for the person editing the file: what the setting
does, its unit, and the measurement behind its default.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_ENV = "FACESEARCH_CONFIG"


class DetectionSettings(BaseModel):
    """How faces are found and encoded. Changing any of these changes the
    embeddings or the set of faces, so they are recorded with each photo."""

    model: Literal["yunet", "hog", "cnn"] = Field(
        "yunet", description='"yunet" (a small network run by onnxruntime: faces from ~10 px, a few ms a photo), '
        '"hog" (dlib\'s HOG: faces from ~40 px at upsample 1, ~170 ms at 640x480) or "cnn" (dlib\'s MMOD detector: '
        "slower on a CPU, finds more profile and small faces). An index keeps the detector it was built with until "
        "`facesearch index --full` rebuilds it, unless this is set explicitly (docs/configuration.md).",
    )
    upsample: int = Field(
        1, ge=0, le=4,
        description="How many times HOG or CNN upsamples the image (YuNet does not need to): 1 finds faces down to "
        "about 40 px (HOG's "
        "window is 80 px), 0 only faces of 80 px and more, at 1/4 the cost.",
    )
    upsample_policy: Literal["fixed", "retry"] = Field(
        "fixed",
        description='"fixed": always search at `upsample`. "retry": search at upsample 0 first (a quarter of the '
        "cost) and at `upsample` only where that found no face. Measured (benchmarks/detection.py): on LFW it finds "
        "a face in as many photos at 3.6x the speed; on full-size group photos it misses the small faces (under ~80 "
        'px) of photos where it found a larger one (1 of 71 here). "fixed" stays the default: recall first (CCTV '
        "frames have small faces).",
    )
    max_side: int = Field(
        1600, ge=0,
        description="Detection runs on a copy whose longest side is at most this many pixels (HOG costs grow with the "
        "pixel count); boxes are mapped back and encoding uses the full-resolution photo. 0 disables the downscale.",
    )
    min_face_size: int = Field(
        20, ge=0, description="Faces smaller than this (box height, original-image pixels) are ignored."
    )
    jitters: int = Field(
        1, ge=1, le=100,
        description="Re-sample each face this many times when encoding (dlib's num_jitters): 1 is face_recognition's "
        "default; 10 is ~1% more accurate and 10x slower.",
    )
    second_pass: bool = Field(
        True,
        description="With HOG: a photo where it finds no face is searched again, when it is small (crops, portraits, "
        "scans: a face is expected, and a miss is a turned or covered face): HOG at `upsample` + 1, then dlib's CNN "
        "detector. On LFW (250x250) it finds a face in all 46 of the 9,525 photos HOG misses, at ~0.09 s (HOG) and "
        "~0.36 s (CNN) each with dlib-bin: ~4% more indexing time. Never on video frames. Faces found this way are "
        "encoded like any other, so turning it on or off needs no reindex (photos indexed without it keep their "
        "result until `index --full`). Not after YuNet, which finds a face in all 9,525 LFW photos by itself.",
    )
    second_pass_max_pixels: int = Field(
        160_000, ge=0,
        description="Photos larger than this (pixels, after the detection downscale: ~400x400) are not searched "
        "again: a faceless 400x400 photo costs up to ~0.9 s more, a 12-megapixel one would cost tens of seconds.",
    )


class EncodingSettings(BaseModel):
    """Which program runs dlib's face ResNet. Both give the same embeddings
    (within 1e-6: ``tests/model/test_encoder.py``), so an index made with one is
    searched with the other and switching needs no reindex."""

    encoder: Literal["onnx", "dlib"] = Field(
        "onnx",
        description='"onnx" (the network converted once from dlib\'s weights to ONNX and run by onnxruntime: ~5 ms '
        'a face on one core) or "dlib" (dlib\'s own: ~75 ms with dlib-bin, ~18 ms with `make install FAST=1`). '
        "detection.jitters > 1 always uses dlib.",
    )
    model_cache: str = Field(
        "",
        description="Folder of the converted model (made at first use, ~0.9 s, 22 MB, checked against its hash at "
        "each load). Empty: $XDG_CACHE_HOME/facesearch/models, else ~/.cache/facesearch/models.",
    )


class IndexerSettings(BaseModel):
    """``facesearch index``: which files, how many processes, where the work runs."""

    workers: int = Field(0, ge=0, description="Worker processes for detection and encoding. 0: one per CPU core.")
    extensions: list[str] = Field(
        [".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"],
        description="File name endings indexed as photos (case-insensitive).",
    )
    video_extensions: list[str] = Field(
        [".mp4", ".avi", ".mkv", ".mov", ".webm"], description="File name endings indexed as videos."
    )
    max_image_pixels: int = Field(
        100_000_000, gt=0, description="Photos larger than this many pixels are refused (decompression bombs)."
    )
    checkpoint_every: int = Field(
        500, gt=0, description="Checkpoint (commit metadata, save the index) after this many photos."
    )
    scheduler: str = Field(
        "",
        description='A Dask scheduler ("tcp://host:8786", or `facesearch index --scheduler`): its workers detect '
        "and encode, this process scans, plans and writes the index (docs/scale-out.md). Empty: worker processes on "
        "this machine.",
    )
    in_flight: int = Field(
        0, ge=0,
        description="Files sent to the Dask workers at a time, at most (0: 16 per worker thread, in batches of 8).",
    )
    path_map: list[str] = Field(
        [],
        description='Where the workers find the files when they mount them elsewhere: ["/mnt/photos=/data/photos"] '
        "reads /mnt/photos/a.jpg as /data/photos/a.jpg.",
    )

    @field_validator("path_map")
    @classmethod
    def _pairs(cls, value: list[str]) -> list[str]:
        for entry in value:
            source, sep, target = entry.partition("=")
            if not sep or not source or not target:
                raise ValueError(f"indexer.path_map entry {entry!r} is not FROM=TO")
        return value

    @field_validator("extensions", "video_extensions")
    @classmethod
    def _lower_dotted(cls, value: list[str]) -> list[str]:
        return [e.lower() if e.startswith(".") else "." + e.lower() for e in value]


class ThumbnailSettings(BaseModel):
    """The face crop stored with each face (what the pages and the API show)."""

    size: int = Field(160, ge=16, le=1024, description="Longest side of the stored face thumbnail, pixels.")
    margin: float = Field(
        0.25, ge=0, le=2, description="Share of the box added on each side so the crop shows the whole head."
    )
    jpeg_quality: int = Field(85, ge=10, le=100, description="JPEG quality of the stored thumbnail.")


class VideoSettings(BaseModel):
    """How video files are sampled and how their faces are linked into
    tracks (one person's continuous appearance), of which only a few faces
    are kept. Not part of the detection signature: they change which frames
    are looked at, not how a face is encoded."""

    sample_fps: float = Field(
        2.0, gt=0, le=120,
        description="Frames examined per second of video (the others are decoded but not converted or searched). "
        "Faces are detected and encoded on each sampled frame (detection.max_side applies), so the work grows with "
        "this rate.",
    )
    max_duration_s: float = Field(
        10_800, ge=0,
        description="Videos longer than this many seconds are refused (reported as errors, not indexed): a bound on "
        "the work one file can take. 0: no limit.",
    )
    track_iou: float = Field(
        0.3, ge=0, le=1,
        description="A face on a sampled frame continues a track when its box overlaps the track's last box by at "
        "least this much (intersection over union)...",
    )
    track_distance: float = Field(
        0.5, gt=0, description="...and its embedding is within this (Euclidean) of the track's last one."
    )
    max_gap_s: float = Field(
        1.5, ge=0,
        description="A track not seen for more than this many seconds (and at least one sample interval) ends.",
    )
    faces_per_track: int = Field(
        3, ge=1, le=100,
        description="Faces stored per track: with 3, its first, its last and the one with the largest box in "
        "between (1: the largest only). A minute in front of the camera is 3 faces, not 120.",
    )
    motion_gating: bool = Field(
        True,
        description="A sampled frame where nothing moved since the last frame searched (a difference of small grey "
        "copies, indexer/motion.py) is not searched again: the faces found there are taken as still there. A fixed "
        "camera's empty stretches then cost decoding only.",
    )
    keyframe_s: float = Field(
        10.0, gt=0,
        description="With motion gating, a frame is searched at least this often (seconds of video) all the same: "
        "a safety net (a person coming into view is motion, and searched at once) for slow changes such as light.",
    )
    motion_fraction: float = Field(
        0.001, ge=0, le=1,
        description="With motion gating, a frame moved when at least this share of its small grey copy (160 px "
        "wide) changed by more than 12 grey levels since the last frame searched (0.001: about 14 of 14,400 px).",
    )


class SearchSettings(BaseModel):
    """``POST /api/v1/search`` and the search page: who looks like this."""

    default_k: int = Field(10, ge=1, description="Neighbours returned per face when the request gives no k.")
    max_k: int = Field(1000, ge=1, description="Largest k a request may ask for.")
    max_query_faces: int = Field(
        20, ge=1,
        description='A query photo\'s largest faces that are encoded and searched (~7 ms each, ~75 ms with encoder = '
        '"dlib"): a crowd photo\'s 300 faces would take 2 s. The response\'s faces_found says how many there were.',
    )


class RecallSettings(BaseModel):
    """``POST /api/v1/recall`` and the sightings page: every sighting of one
    person (CCTV-style, recall first)."""

    max_distance: float = Field(
        0.55, gt=0,
        description="The default radius (Euclidean), chosen on LFW DevTrain (benchmarks/recall.py): at 0.55 a probe "
        "finds 93.6% of the person's other faces, with 64% of what it returns being that person; 0.6 finds 98% at "
        '32%. With two probe photos of the person and "fusion": "mean", a request\'s max_distance of 0.49 finds 95% '
        "at 85%.",
    )
    default_limit: int = Field(100, ge=1, description="Sightings a page returns when the request gives no limit.")
    max_limit: int = Field(1000, ge=1, description="Largest page a request may ask for.")
    max_probes: int = Field(10, ge=1, description="Probe photos or embeddings per request.")
    max_hits: int = Field(
        50_000, ge=1,
        description="Faces within the radius a request may gather (a larger radius is refused with advice).",
    )
    expand_distance: float = Field(
        0.5, gt=0,
        description='With "expand": true, the mean of the probes and of the faces this near them (Euclidean) is '
        "searched as one more probe.",
    )


class ErasureSettings(BaseModel):
    """Erasing faces for good (``POST /api/v1/erasures``, ``facesearch erase``)."""

    max_distance: float = Field(
        0.45, gt=0, le=1.0,
        description='Erasing "every face near this probe": the default radius (Euclidean). At 0.45 a probe reaches '
        "59% of the person's other LFW photos with 97% of what it reaches being them; recall's 0.55 would also erase "
        "other people's faces (64% precision). Check with dry_run first, use several probes, or erase a named "
        "person.",
    )


class IndexSettings(BaseModel):
    """How top-k searches (search by photo or embedding) are answered. Range
    searches (recall, erasure by probe) are always exact. A change of
    ``search`` or ``approximate_from_faces`` takes effect at the next
    ``facesearch index`` run, even one with no photo to change; ``nprobe``
    and ``candidates`` are the server's, read when it starts."""

    search: Literal["auto", "exact", "approximate"] = Field(
        "auto",
        description='"exact": every face is compared (an 8-bit prescan re-ranked exactly: 6 ms a query at 1M faces, '
        'one thread). "approximate": each index generation also gets an IVF index (4-bit codes, faces.ann.faiss) '
        "built by the reindex that publishes it; a query reads `nprobe` of its lists and re-ranks `candidates` by "
        "exact distance. At 1M LFW-like faces with an eighth of the lists: 1.2 ms a query, 99.1% of the exact 10 "
        'nearest and 99.8% of the true matches among them (benchmarks/ann.py). "auto": approximate from '
        "`approximate_from_faces` faces, exact below.",
    )
    approximate_from_faces: int = Field(1_000_000, ge=1, description='Faces from which "auto" is approximate.')
    lists: int = Field(
        0, ge=0,
        description="IVF lists; 0: 4 sqrt(faces) when they are trained (at most one per 64 faces). Kept from the "
        "previous generation until the collection grows or shrinks past `retrain_growth` times the size they were "
        "trained on, then trained again; an erasure always trains them again.",
    )
    retrain_growth: float = Field(
        2.0, gt=1, description="Train the lists again past this factor of growth or shrinkage."
    )
    nprobe: int = Field(
        0, ge=0, description="Lists read per query; 0: an eighth of them. Fewer is faster and misses more."
    )
    candidates: int = Field(
        300, ge=1, description="Approximate candidates re-ranked by exact distance per query."
    )


class StoreSettings(BaseModel):
    """Where the face vectors live (docs/scale-out.md). The metadata, the
    thumbnails and the generations stay in the data directory either way."""

    backend: Literal["faiss", "milvus"] = Field(
        "faiss",
        description='"faiss" (embedded in the data directory, the default: one machine, ~690 bytes a face in memory) '
        'or "milvus" (a Milvus collection, for collections that outgrow one machine; needs `make install SCALE=1`).',
    )


class MilvusSettings(BaseModel):
    """The Milvus collection of ``store.backend = "milvus"``."""

    uri: str = Field(
        "milvus.db",
        description="A file path is Milvus Lite (embedded, one process at a time: tests and small setups; a relative "
        'path is inside the data directory); "http://host:19530" is a Milvus server or cluster.',
    )
    token: str = Field(
        "", description='"user:password" or an API key; empty for none. Keep it in FACESEARCH_MILVUS__TOKEN.'
    )
    collection: str = Field(
        "facesearch_faces", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$",
        description="One collection per data directory (created on the first index run).",
    )
    range_pages: Literal["iterator", "bands"] = Field(
        "iterator",
        description="Range searches with more than 16,384 hits (Milvus's cap on one search) page on: \"iterator\" "
        "(Milvus's search iterator with a radius, falling back to distance bands when it fails) or \"bands\" (plain "
        "searches, each from the farthest distance the previous one reached).",
    )


class ServiceSettings(BaseModel):
    """``facesearch serve``: the HTTP API and the pages."""

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8000, ge=0, le=65535, description="Port to listen on.")
    workers: int = Field(
        0, ge=0, description="gunicorn worker processes; each loads the index once. 0: one per CPU core."
    )
    threads_per_worker: int = Field(
        1, ge=1,
        description="Threads per worker for FAISS (OpenMP) and BLAS. 1 is right for a server with one request per "
        "worker at a time: with 2 workers, FAISS's default threads measured 148 req/s against 987 req/s with 1.",
    )
    max_upload_mb: float = Field(
        16, gt=0, description="Largest request body, megabytes (uploads bigger than this get 413)."
    )
    max_query_pixels: int = Field(
        50_000_000, gt=0,
        description="Largest query photo (search, recall), pixels: refused from its header, before any pixel is "
        "decoded (a 30,000 x 30,000 PNG of a few KB would take 2.7 GB as RGB). 50 M is a 48-megapixel phone photo. "
        "indexer.max_image_pixels bounds indexing.",
    )
    max_decoded_pixels: int = Field(
        16_000_000, gt=0,
        description="Most pixels a query photo decodes (search, recall, erasure probes, the pages). A JPEG of more is "
        "decoded at 1/2, 1/4 or 1/8 scale to fit (never below detection.max_side); PNG, WebP, BMP, GIF and TIFF "
        "cannot be, and are refused from their header past it (413 image_too_large: send a JPEG or a smaller "
        "image). Measured (benchmarks/big_photo.py --queries): a PNG decoded whole costs a search ~7.6 MB and ~20 ms "
        "per megapixel over ~58 MB and ~0.5 s, so 16 M peaks at ~177 MB (0.86 s), as a 7000x7000 JPEG at 1/2 does "
        "(156 MB); the 7000x7000 PNG it refuses (49 M) took 1.7 s and 496 MB.",
    )
    timeout_s: int = Field(
        60, gt=0, description="gunicorn's worker timeout, seconds (a query photo of a crowd takes a while)."
    )
    reload_check_s: float = Field(
        1.0, ge=0,
        description="How often (seconds, at most) each worker checks whether a reindex has published a new index "
        "generation, and switches to it without a restart (a few bytes read; 0: at every request).",
    )
    audit_log: bool = Field(
        True,
        description="Append one line per request (key id, client address, a hash of the query, its parameters, the "
        "number of results) to audit.jsonl in the data directory. Recall searches are how investigators find "
        "people: keep it on. No line is longer than 8 KiB, and none holds an embedding, photo bytes or a value "
        "longer than 256 characters (kept as its length and SHA-256). When a line cannot be written (a full disk), "
        "requests are refused with 507 until space is freed: nothing is answered unaudited (docs/access.md).",
    )
    audit_max_mb: float = Field(
        50, gt=0, description="audit.jsonl is renamed audit.jsonl.1 (and .1 to .2 ...) when it would pass this many "
        "megabytes...",
    )
    audit_files: int = Field(
        10, ge=2,
        description="...and this many files are kept in all (~500 MB with the defaults, a few million requests), "
        "the oldest deleted.",
    )
    session_hours: float = Field(
        12, gt=0,
        description="A web sign-in ends after this many hours, after session_idle_minutes without a page request, "
        'at "Sign out" (on the server: a copied cookie stops working), and as soon as the key that signed in is no '
        "longer configured.",
    )
    session_idle_minutes: float = Field(60, gt=0, description="Minutes without a page request that end a sign-in.")
    max_key_failures: int = Field(
        20, ge=1,
        description="A client address that sends this many wrong API keys (API or /login) within a minute gets 429 "
        "with Retry-After for a minute, doubling at each repeat (up to an hour); every server worker counts "
        "together.",
    )
    proxy_header: str = Field(
        "",
        description='Behind a reverse proxy: the header it sets with the client\'s address ("X-Forwarded-For" or '
        '"X-Real-IP"), believed only from the addresses in trusted_proxies. Empty: the connection\'s own address '
        "(the proxy's, if any).",
    )
    trusted_proxies: list[str] = Field(
        ["127.0.0.1", "::1"], description="Addresses (or networks) of the proxies whose proxy_header is believed."
    )
    photo_searches_per_client: int = Field(
        2, ge=1,
        description="Photo searches (search, recall, erasure by photo: the costly requests) one client address may "
        "have running at once; more get 429.",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"service.trusted_proxies entry {entry!r} is not an address or network") from None
        return value


class ClusteringSettings(BaseModel):
    """Defaults of ``POST /api/v1/clusters`` (a request may override method,
    k and stranger_distance). Every distance is Euclidean (face_recognition's
    unit)."""

    method: Literal["kmeans", "threshold"] = Field(
        "kmeans",
        description='"kmeans" (k given or chosen automatically, then stranger flagging) or "threshold" (needs no k; '
        "its singletons are the strangers).",
    )
    stranger_distance: float = Field(
        0.5, gt=0,
        description="k-means stranger flagging: a face farther than this from its cluster's centre, or with no other "
        "face within neighbour_distance, is a stranger (a request's stranger_distance sets both). Chosen on LFW: 10 "
        "people with the most photos plus 200 people seen once (docs/people.md, docs/benchmarks.md).",
    )
    neighbour_distance: float = Field(0.45, gt=0, description="See stranger_distance: face to its nearest other face.")
    threshold: float = Field(
        0.0, ge=0,
        description="The threshold method (HDBSCAN over a k-NN graph): the longest link it may use (0 = no limit).",
    )
    min_cluster_size: int = Field(
        2, ge=2,
        description="The smallest group that is a person, faces (for k-means too: smaller clusters' faces are "
        "strangers).",
    )
    min_samples: int = Field(
        2, ge=1, description="The threshold method's density estimate: neighbours counted with the face itself."
    )
    max_cluster_radius: float = Field(
        0.45, gt=0,
        description="No cluster of the threshold method (nor automatic k-means' starting groups) may be wider than "
        "this: root mean square distance of its faces to their centre. One person's faces measure 0.25-0.35 on LFW, "
        "a mix of people 0.55; without it, large collections could collapse into one cluster.",
    )
    neighbours: int = Field(
        64, ge=2, le=1024, description="k of the k-NN graph the threshold method works on."
    )
    seed: int = Field(0, description="k-means: the random seed.")
    kmeans_restarts: int = Field(5, ge=1, le=100, description="k-means: restarts (the best of them is kept)...")
    kmeans_iterations: int = Field(30, ge=1, le=1000, description="...and iterations each.")
    max_faces: int = Field(
        2_000_000, ge=1,
        description="Clustering holds every embedding in memory (512 bytes a face); larger indexes are refused.",
    )


class RecognitionSettings(BaseModel):
    """After each ``facesearch index`` run (and ``POST
    /api/v1/people/recognise``), new faces confidently near a named person's
    confirmed faces are attributed to that person ("suggested"; a suggestion
    can be confirmed or rejected like any face; ``indexer.people.recognition``).
    Every distance is Euclidean, to the person's confirmed faces. A face is
    suggested to the person P with its nearest confirmed face when that face
    is within close_distance and anyone else's nearest confirmed face is at
    least close_margin farther; or when it is within max_distance, the mean
    of P's 1, 2, 3 nearest confirmed faces is within support_distance[0],
    [1], [2] (P's 3 nearest when P has 3 or more), and anyone else's nearest
    confirmed face is at least margin farther. Chosen on LFW DevTrain
    (benchmarks/recognition.py, docs/people.md): with 20% of the 10 most
    photographed people's photos confirmed, precision 0.999 and recall
    0.990, 0.8 of 200 people seen once named (the plain "nearest confirmed
    face within 0.5": 0.996, 0.996 and 3.8). A margin of 0.08 finds 0.5%
    more and names twice the strangers."""

    enabled: bool = Field(True, description="Suggest named people for new faces after each index run.")
    close_distance: float = Field(0.40, gt=0, description="A face this near one confirmed face is the person...")
    close_margin: float = Field(
        0.04, ge=0, description="...when anyone else's nearest confirmed face is this much farther."
    )
    max_distance: float = Field(0.50, gt=0, description="Otherwise the nearest confirmed face must be this near...")
    support_distance: list[float] = Field(
        [0.50, 0.46, 0.44], min_length=1,
        description="...the mean of the person's 1, 2, 3... nearest confirmed faces this near...",
    )
    margin: float = Field(0.12, ge=0, description="...and anyone else's nearest confirmed face this much farther.")

    @property
    def support_faces(self) -> int:
        return len(self.support_distance)


class ReviewSettings(BaseModel):
    """"Are these the same person?" (``/review``, ``GET /api/v1/review/pairs``;
    ``indexer.people.review``): pairs of named people and unnamed groups of
    the last clustering offered as possibly one person, nearest first, by
    the Euclidean distance between the means of their faces."""

    max_distance: float = Field(
        0.6, gt=0, le=2,
        description="Offer a pair whose face means are at most this far apart (dlib's own same-person distance; "
        "the means of one person's groups lie nearer, 0.2-0.4).",
    )
    faces_shown: int = Field(6, ge=1, le=50, description="Faces of each side shown with a question.")


class Settings(BaseSettings):
    """Every setting of facesearch. Build with ``load_settings()``."""

    model_config = SettingsConfigDict(
        env_prefix="FACESEARCH_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    data_dir: Path = Field(
        Path("facesearch-data"), description="Where the index, its metadata and the face thumbnails live."
    )
    api_keys: Annotated[list[str], NoDecode] = Field(
        [],
        description="API keys, sent by clients in the X-API-Key header. With none configured (both lists empty) the "
        "service answers everyone, and `facesearch serve` refuses any address but loopback unless given --insecure. "
        "These (FACESEARCH_API_KEYS, comma-separated) may do everything: search, clustering runs, naming people, "
        'reindexing, erasure. An entry is the key itself (16 characters at least: `facesearch new-key`) or "sha256:'
        '<hex digest>" (`facesearch hash-key` prints it), so a config file need not hold the secret.',
    )
    read_keys: Annotated[list[str], NoDecode] = Field(
        [],
        description="Keys (FACESEARCH_READ_KEYS) that may only search, recall and read faces, thumbnails, clusters "
        "and people.",
    )
    detection: DetectionSettings = DetectionSettings()
    encoding: EncodingSettings = EncodingSettings()
    indexer: IndexerSettings = IndexerSettings()
    thumbnails: ThumbnailSettings = ThumbnailSettings()
    video: VideoSettings = VideoSettings()
    search: SearchSettings = SearchSettings()
    recall: RecallSettings = RecallSettings()
    erasure: ErasureSettings = ErasureSettings()
    index: IndexSettings = IndexSettings()
    store: StoreSettings = StoreSettings()
    milvus: MilvusSettings = MilvusSettings()
    service: ServiceSettings = ServiceSettings()
    clustering: ClusteringSettings = ClusteringSettings()
    recognition: RecognitionSettings = RecognitionSettings()
    review: ReviewSettings = ReviewSettings()

    @field_validator("api_keys", "read_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier sources win: explicit values, then the environment, then the
        # user's TOML file (when given); the models' defaults under all.
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        files = settings_cls.model_config.get("toml_file")
        if files:
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=files),)
        return sources


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Settings from the defaults, a user file, the environment, with
    ``overrides`` (CLI flags) on top. ``config_file`` (else
    ``$FACESEARCH_CONFIG``) is a TOML file of any of the settings. ``None``
    overrides are ignored so that unset flags fall through; nested ones are
    dicts: ``detection={"upsample": 0}``."""
    if config_file is None and os.environ.get(CONFIG_ENV):
        config_file = os.environ[CONFIG_ENV]
    settings_cls: type[Settings] = Settings
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        settings_cls = type("Settings", (Settings,), {"model_config": {**Settings.model_config, "toml_file": [path]}})
    clean = {k: v for k, v in overrides.items() if v is not None and v != {}}
    return settings_cls(**clean)
