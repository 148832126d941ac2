"""Settings: ``config/default.toml``, then a user file, then environment
variables, then explicit values (CLI flags), each overriding the one before.

Environment variables start with ``FACESEARCH_`` and use ``__`` for nested
groups: ``FACESEARCH_DATA_DIR``, ``FACESEARCH_DETECTION__UPSAMPLE=0``,
``FACESEARCH_SERVICE__PORT=9000``. ``FACESEARCH_API_KEYS`` (admin keys) and
``FACESEARCH_READ_KEYS`` (read-only keys) are comma-separated lists. A user
file is given by ``FACESEARCH_CONFIG`` or the CLI's ``--config``.
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

DEFAULT_TOML = Path(__file__).with_name("default.toml")
CONFIG_ENV = "FACESEARCH_CONFIG"


class DetectionSettings(BaseModel):
    """How faces are found and encoded. Changing any of these changes the
    embeddings or the set of faces, so they are recorded with each photo."""

    model: Literal["hog", "cnn"] = "hog"
    upsample: int = Field(1, ge=0, le=4)
    upsample_policy: Literal["fixed", "retry"] = Field(
        "fixed", description="fixed: always `upsample`; retry: upsample 0 first, `upsample` only where it found no face"
    )
    max_side: int = Field(1600, ge=0, description="pixels; 0 = no downscale")
    min_face_size: int = Field(20, ge=0, description="pixels, box height in the original photo")
    jitters: int = Field(1, ge=1, le=100)
    second_pass: bool = Field(
        True,
        description="a photo where HOG finds no face is searched again: HOG at upsample + 1, then the CNN detector",
    )
    second_pass_max_pixels: int = Field(
        160_000, ge=0, description="only photos whose detection copy has at most this many pixels (~400x400)"
    )


class EncodingSettings(BaseModel):
    """Which program runs dlib's face ResNet. Both give the same embeddings
    (within 1e-6: ``tests/test_encoder.py``), so an index made with one is
    searched with the other and switching needs no reindex."""

    encoder: Literal["onnx", "dlib"] = Field(
        "onnx", description="onnx: the network converted to ONNX, run by onnxruntime (~15x dlib-bin); dlib: dlib's own"
    )
    model_cache: str = Field(
        "", description="folder of the converted model; empty: $XDG_CACHE_HOME/facesearch/models (~/.cache/...)"
    )


class IndexerSettings(BaseModel):
    workers: int = Field(0, ge=0, description="0 = one per CPU core")
    extensions: list[str] = [".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"]
    video_extensions: list[str] = [".mp4", ".avi", ".mkv", ".mov", ".webm"]
    max_image_pixels: int = Field(100_000_000, gt=0)
    checkpoint_every: int = Field(500, gt=0)
    scheduler: str = Field("", description="a Dask scheduler (tcp://host:8786): its workers detect and encode")
    in_flight: int = Field(
        0, ge=0, description="files sent to Dask workers at a time, at most; 0 = 16 per worker thread"
    )
    path_map: list[str] = Field(
        [], description='"FROM=TO": a path under FROM here is read under TO on the Dask workers'
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
    size: int = Field(160, ge=16, le=1024, description="pixels, longest side")
    margin: float = Field(0.25, ge=0, le=2, description="share of the box added on each side")
    jpeg_quality: int = Field(85, ge=10, le=100)


class VideoSettings(BaseModel):
    """How video files are sampled and how their faces are linked into
    tracks (one person's continuous appearance), of which only a few faces
    are kept. Not part of the detection signature: they change which frames
    are looked at, not how a face is encoded."""

    sample_fps: float = Field(2.0, gt=0, le=120, description="frames examined per second of video")
    max_duration_s: float = Field(10_800, ge=0, description="seconds; longer videos are refused, 0 = no limit")
    track_iou: float = Field(0.3, ge=0, le=1, description="box overlap (intersection over union) to link, at least")
    track_distance: float = Field(0.5, gt=0, description="Euclidean embedding distance to link, at most")
    max_gap_s: float = Field(1.5, ge=0, description="seconds a track may go unseen and still continue")
    faces_per_track: int = Field(3, ge=1, le=100, description="faces stored per track, at most")


class SearchSettings(BaseModel):
    default_k: int = Field(10, ge=1)
    max_k: int = Field(1000, ge=1)
    max_query_faces: int = Field(20, ge=1, description="largest faces of a query photo that are searched")


class RecallSettings(BaseModel):
    """``POST /api/v1/recall``: every sighting of one person."""

    max_distance: float = Field(0.55, gt=0, description="Euclidean; the default radius")
    default_limit: int = Field(100, ge=1)
    max_limit: int = Field(1000, ge=1)
    max_probes: int = Field(10, ge=1, description="probe photos or embeddings per request")
    max_hits: int = Field(50_000, ge=1, description="faces within the radius a request may touch")
    expand_distance: float = Field(0.5, gt=0, description="Euclidean; query expansion's radius")


class ErasureSettings(BaseModel):
    max_distance: float = Field(
        0.45, gt=0, le=1.0, description="Euclidean; default radius of an erasure by probe photo or embedding"
    )


class IndexSettings(BaseModel):
    """Which structure answers top-k searches. Range searches (recall,
    erasure by probe) are always exact; see ``indexer.store.ann``."""

    search: Literal["auto", "exact", "approximate"] = Field(
        "auto",
        description="exact: always; approximate: an IVF index re-ranked exactly; "
        "auto: approximate from approximate_from_faces faces",
    )
    approximate_from_faces: int = Field(1_000_000, ge=1, description="with search = auto")
    lists: int = Field(0, ge=0, description="IVF inverted lists; 0 = 4 sqrt(faces)")
    nprobe: int = Field(0, ge=0, description="lists read per query; 0 = an eighth of the lists")
    candidates: int = Field(300, ge=1, description="approximate candidates re-ranked by exact distance per query")
    retrain_growth: float = Field(
        2.0, gt=1, description="train the lists again past this factor of growth or shrinkage"
    )


class StoreSettings(BaseModel):
    """Where the face vectors live (docs/scale-out.md). The metadata, the
    thumbnails and the generations stay in the data directory either way."""

    backend: Literal["faiss", "milvus"] = Field(
        "faiss", description="faiss: embedded, in the data directory; milvus: a Milvus collection ([milvus])"
    )


class MilvusSettings(BaseModel):
    """The Milvus collection of ``store.backend = "milvus"``."""

    uri: str = Field(
        "milvus.db",
        description="a file path: Milvus Lite (one process; relative to the data directory); "
        "http://host:19530: a Milvus server or cluster",
    )
    token: str = Field("", description="user:password or an API key; empty for none")
    collection: str = Field(
        "facesearch_faces", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$",
        description="one collection per data directory",
    )
    range_pages: Literal["iterator", "bands"] = Field(
        "iterator",
        description="range searches past 16,384 hits: Milvus's search iterator (falling back to distance "
        "bands when it fails), or distance bands only",
    )


class ServiceSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(0, ge=0, description="0 = one per CPU core")
    threads_per_worker: int = Field(1, ge=1)
    max_upload_mb: float = Field(16, gt=0)
    max_query_pixels: int = Field(
        50_000_000, gt=0, description="pixels of a query photo (search, recall), at most; checked from its header"
    )
    max_decoded_pixels: int = Field(
        16_000_000, gt=0,
        description="pixels decoded for a query photo, at most: a JPEG is decoded at reduced scale (within it); "
        "PNG, WebP, BMP, GIF and TIFF in full, refused from the header beyond it",
    )
    timeout_s: int = Field(60, gt=0)
    reload_check_s: float = Field(
        1.0, ge=0, description="seconds between checks for a newly published index generation; 0 = every request"
    )
    audit_log: bool = Field(True, description="append who asked what to audit.jsonl in the data directory")
    audit_max_mb: float = Field(50, gt=0, description="megabytes; audit.jsonl is rotated past this size")
    audit_files: int = Field(10, ge=2, description="audit files kept: audit.jsonl and audit.jsonl.1, .2, ...")
    session_hours: float = Field(12, gt=0, description="hours a web sign-in lasts, at most")
    session_idle_minutes: float = Field(60, gt=0, description="minutes without a page request that end a sign-in")
    max_key_failures: int = Field(
        20, ge=1, description="wrong API keys from one client address in a minute before it gets 429s"
    )
    proxy_header: str = Field(
        "", description="header holding the client address set by a reverse proxy (X-Forwarded-For, X-Real-IP); "
        "empty: the connection's address"
    )
    trusted_proxies: list[str] = Field(
        ["127.0.0.1", "::1"], description="addresses (or networks) of the proxies whose proxy_header is believed"
    )
    photo_searches_per_client: int = Field(
        2, ge=1, description="photo searches (search, recall, erasure by photo) one client address may run at once"
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
    """Defaults of ``POST /api/v1/clusters``; every distance is Euclidean."""

    method: Literal["kmeans", "threshold"] = "kmeans"
    stranger_distance: float = Field(0.5, gt=0, description="Euclidean, face to its cluster's centre")
    neighbour_distance: float = Field(0.45, gt=0, description="Euclidean, face to its nearest other face")
    threshold: float = Field(0.0, ge=0, description="Euclidean; longest link of the threshold method, 0 = no limit")
    min_cluster_size: int = Field(2, ge=2, description="faces; smaller groups are strangers")
    min_samples: int = Field(2, ge=1, description="HDBSCAN's density estimate, counting the face itself")
    max_cluster_radius: float = Field(
        0.45, gt=0, description="Euclidean RMS distance of a cluster's faces to its centre, at most"
    )
    neighbours: int = Field(64, ge=2, le=1024, description="k of the k-NN graph the threshold method works on")
    seed: int = 0
    kmeans_restarts: int = Field(5, ge=1, le=100)
    kmeans_iterations: int = Field(30, ge=1, le=1000)
    max_faces: int = Field(2_000_000, ge=1, description="larger indexes are refused (memory)")


class RecognitionSettings(BaseModel):
    """When ``facesearch index`` (and ``POST /api/v1/people/recognise``)
    suggests a named person for a face (``indexer.recognition``); every
    distance Euclidean, to the person's confirmed faces."""

    enabled: bool = Field(True, description="suggest named people for new faces after each index run")
    close_distance: float = Field(0.40, gt=0, description="a face this near one confirmed face is the person...")
    close_margin: float = Field(
        0.04, ge=0, description="...when anyone else's nearest confirmed face is this much farther"
    )
    max_distance: float = Field(0.50, gt=0, description="otherwise the nearest confirmed face must be this near...")
    support_distance: list[float] = Field(
        [0.50, 0.46, 0.44], min_length=1,
        description="...the mean of the person's 1, 2, 3... nearest confirmed faces this near...",
    )
    margin: float = Field(0.12, ge=0, description="...and anyone else's nearest confirmed face this much farther")

    @property
    def support_faces(self) -> int:
        return len(self.support_distance)


class Settings(BaseSettings):
    """Every setting of facesearch. Build with ``load_settings()``."""

    model_config = SettingsConfigDict(
        env_prefix="FACESEARCH_",
        env_nested_delimiter="__",
        extra="forbid",
        toml_file=[DEFAULT_TOML],
    )

    data_dir: Path = Path("facesearch-data")
    api_keys: Annotated[list[str], NoDecode] = []
    read_keys: Annotated[list[str], NoDecode] = []
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
        # TOML files (the user's file deep-merged over the defaults).
        files = settings_cls.model_config.get("toml_file") or [DEFAULT_TOML]
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=files, deep_merge=True),
        )


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Settings from the files and environment, with ``overrides`` (CLI flags)
    on top. ``config_file`` (else ``$FACESEARCH_CONFIG``) is a TOML file laid
    over ``config/default.toml``. ``None`` overrides are ignored so that unset
    flags fall through; nested ones are dicts: ``detection={"upsample": 0}``."""
    if config_file is None and os.environ.get(CONFIG_ENV):
        config_file = os.environ[CONFIG_ENV]
    files = [DEFAULT_TOML]
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        files.append(path)
    settings_cls = type("Settings", (Settings,), {"model_config": {**Settings.model_config, "toml_file": files}})
    clean = {k: v for k, v in overrides.items() if v is not None and v != {}}
    return settings_cls(**clean)
