"""What every ``facesearch`` command shares: the data directory and config
options, and settings loaded with a usage error for a bad one."""

from __future__ import annotations

from pathlib import Path

import click

from config.settings import Settings, load_settings
from indexer.store import FaceStore, StoreError, open_published
from indexer.store.annotations import AnnotationsDB

CONFIG_OPTION = click.option(
    "--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="TOML file laid over config/default.toml (else $FACESEARCH_CONFIG).",
)
DATA_DIR_OPTION = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Index directory (else $FACESEARCH_DATA_DIR, else the config file).",
)


def cli_settings(config_file: Path | None, **overrides) -> Settings:
    """The settings (``load_settings``), a missing file or a bad value being a usage error."""
    try:
        return load_settings(config_file, **overrides)
    except FileNotFoundError as exc:
        raise click.UsageError(str(exc)) from None
    except ValueError as exc:  # pydantic's ValidationError
        raise click.UsageError(f"invalid setting: {exc}") from None


def open_index(settings: Settings) -> tuple[Path, FaceStore, AnnotationsDB]:
    """The data directory, its published index (read-only) and its
    annotations; a missing or damaged index is a clear error. Close both."""
    root = Path(settings.data_dir).expanduser().resolve()
    try:
        store = open_published(root, settings)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        return root, store, AnnotationsDB.open(root)
    except StoreError as exc:
        store.close()
        raise click.ClickException(str(exc)) from None
