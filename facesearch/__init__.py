"""facesearch's command line, the one layer above both the indexer and the
service: ``facesearch.cli``."""
