"""``facesearch cluster``: group the indexed faces into people, as
``POST /api/v1/clusters`` does."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from facesearch.cli.common import CONFIG_OPTION, DATA_DIR_OPTION, cli_settings, echo


@click.command()
@DATA_DIR_OPTION
@CONFIG_OPTION
@click.option("--method", type=click.Choice(["kmeans", "threshold"]), default=None,
              help="kmeans (k given or automatic, then strangers) or threshold (no k). Default from the config.")
@click.option("--k", type=click.IntRange(min=1), default=None, help="Clusters for kmeans (default: automatic).")
@click.option("--stranger-distance", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Euclidean distance from the cluster's centre beyond which a face is a stranger.")
@click.option("--neighbour-distance", type=click.FloatRange(min=0, min_open=True), default=None,
              help="kmeans: a face with no other face this near (Euclidean) is a stranger.")
@click.option("--threshold", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Longest link the threshold method may use (Euclidean).")
@click.option("--seed", type=int, default=None, help="Random seed (kmeans).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the run as one JSON object (as POST /api/v1/clusters returns it) on the last stdout line.")
@click.option("--contact-sheet", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None,
              help="Also write a PNG of the clusters' thumbnails to this file.")
def cluster(data_dir, config_file, method, k, stranger_distance, neighbour_distance, threshold, seed, as_json,
            contact_sheet) -> None:
    """Group every indexed face into people and store the run, as
    POST /api/v1/clusters does (names given to clusters carry over)."""
    from application.clustering import (
        cluster_params,
        clusters_response,
        contact_sheet_png,
        run_clustering,
    )
    from application.indexing import opened_index
    from application.schemas import ClusterRequest

    settings = cli_settings(config_file, data_dir=data_dir)
    request = ClusterRequest(method=method, k=k, stranger_distance=stranger_distance,
                             neighbour_distance=neighbour_distance, threshold=threshold, seed=seed)
    with opened_index(settings) as index:
        run = run_clustering(index.store, index.annotations, cluster_params(request, settings.clustering),
                             settings.clustering, "cli")
        response = clusters_response(index.store, index.annotations, run)
        if contact_sheet is not None:
            contact_sheet.write_bytes(contact_sheet_png(index.store, index.annotations, run))
    out = sys.stderr if as_json else sys.stdout
    echo(
        f"{response.faces} faces in {response.k} clusters and {len(response.strangers)} strangers "
        f"({response.method}, {response.duration_s:.1f} s), stored as run {response.run_id} in "
        f"{Path(settings.data_dir).resolve()}",
        file=out,
    )
    for item in response.clusters:
        if item.name is not None:
            echo(f"  cluster {item.id}: {item.name} ({item.size} faces)", file=out)
    if contact_sheet is not None:
        echo(f"contact sheet: {contact_sheet}", file=out)
    if as_json:
        echo(response.model_dump_json())
