"""The ``facesearch`` command: ``index``, ``serve``, ``repair``, ``verify``, ``erase``,
``cluster``, ``people``, ``new-key``, ``hash-key``. It sits above ``indexer`` and
``service`` and imports both; neither imports it."""

from __future__ import annotations

import logging
import os
import sys

import click

from facesearch.cli.clustering import cluster
from facesearch.cli.erasure import erase
from facesearch.cli.indexing import index, repair
from facesearch.cli.people import people
from facesearch.cli.serving import hash_key, new_key, serve
from facesearch.cli.verification import verify
from indexer.store.file_modes import PROCESS_UMASK


def _version_text() -> str:
    from importlib.metadata import version

    from config.settings import load_settings
    from indexer import model

    model.configure_from(load_settings().encoding)
    info = model.runtime_info()
    encoder = f"onnxruntime {info['onnxruntime_version']}" if info["encoder"] == "onnx" else "dlib"
    return (
        f"facesearch {version('facesearch')}, encoder {info['encoder']} ({encoder}), dlib {info['dlib_version']} "
        f"(BLAS {'on' if info['dlib_blas'] else 'off'}, CUDA {'on' if info['dlib_cuda'] else 'off'}; "
        f"detection{'' if info['encoder'] == 'onnx' else ' and encoding'}), model {info['model']}"
    )


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(_version_text())
        ctx.exit()




@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the version, the encoder, the dlib build and the model, then exit.")
@click.option("-v", "--verbose", count=True, help="More log output (-v: each skipped photo, -vv: debug).")
def main(verbose: int) -> None:
    """facesearch: index photo folders, then ask "who looks like this?"."""
    os.umask(PROCESS_UMASK)  # what SQLite, Milvus Lite and gunicorn create in the data directory: owner only
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


for command in (index, serve, repair, verify, erase, hash_key, new_key, cluster, people):
    main.add_command(command)


if __name__ == "__main__":
    main()
