"""The application: facesearch's use cases, apart from HTTP. Each module
takes plain values (and the stores, settings and seams passed in), returns
typed results (``application.schemas``) and raises domain errors
(``application.errors``); nothing here imports Flask. The adapters sit on
top: the HTTP API and the pages (``service``), the command line
(``facesearch.cli``)."""
