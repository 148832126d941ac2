"""The people rules, in one package: who is who. ``annotations.py`` owns
``annotations.sqlite3`` (its layout: ``schema.py``) and its transactions,
over ``clustering_runs.py`` (store a run, map people to its clusters, read
it back), ``corrections.py`` (create, assign, reject, merge, undo: the
rules of each correction) and ``attribution.py`` (each face's person and
source: confirmed, cluster, suggested); ``records.py`` holds what they
return. ``recognition.py`` suggests named people for new faces;
``carry_over.py`` keeps people's faces through a reindex that gives them
new ids."""
