"""The ``facesearch`` command: ``index``, ``serve``, ``repair``, ``verify``,
``erase``, ``cluster``, ``people``, ``new-key``, ``hash-key``. An adapter
over the application layer (``application``), which it alone imports, and
the one that starts the HTTP adapter (``serve``); nothing imports it."""

from __future__ import annotations

import logging
import sys

import click

from application.runtime import keep_files_private
from facesearch.cli.clustering import cluster
from facesearch.cli.common import FacesearchGroup
from facesearch.cli.erasure import erase
from facesearch.cli.indexing import index, repair
from facesearch.cli.people import people
from facesearch.cli.serving import hash_key, new_key, serve
from facesearch.cli.verification import verify


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        from application.runtime import Runtime, version_text
        from config.settings import load_settings

        runtime = ctx.ensure_object(Runtime)
        click.echo(version_text(runtime.face_model(load_settings())))
        ctx.exit()

@click.group(cls=FacesearchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the version, the encoder, the dlib build and the model, then exit.")
@click.option("-v", "--verbose", count=True, help="More log output (-v: each skipped photo, -vv: debug).")
def main(verbose: int) -> None:
    """facesearch: index photo folders, then ask "who looks like this?"."""
    keep_files_private()  # what SQLite, Milvus Lite and gunicorn create in the data directory: owner only
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


for command in (index, serve, repair, verify, erase, hash_key, new_key, cluster, people):
    main.add_command(command)


if __name__ == "__main__":
    main()
