"""The people rules, in one package: who is who. ``annotations.py`` owns
``annotations.sqlite3`` (people, names, stored clustering runs), with
``corrections.py`` (create, assign, reject, merge, undo: the rules of each
correction) and ``attribution.py`` (each face's person and source:
confirmed, cluster, suggested); ``recognition.py`` suggests named people
for new faces; ``carry_over.py`` keeps people's faces through a reindex
that gives them new ids."""
