"""Group faces into people: plain functions over embeddings, no storage, no
HTTP. ``cluster_faces`` runs a method; ``cost_curve`` gives k-means cost for a
range of k."""

from indexer.clustering.result import Clustering, ClusterParams
from indexer.clustering.run import METHODS, cluster_faces, cost_curve

__all__ = ["METHODS", "ClusterParams", "Clustering", "cluster_faces", "cost_curve"]
