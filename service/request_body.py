"""Read the rest of every request's body before answering, so that a
client still sending sees the answer.

A server that answers before the body has arrived (an upload over the
limit refused from its ``Content-Length``; a wrong API key; a view that
never reads the body) and then closes the connection makes a client that
writes the whole body first (Python's urllib, ``requests``, most scripts)
fail with a broken pipe or a connection reset, never seeing the 413 or the
401. So the unread part of the body is read and thrown away, 1 MiB at a
time, up to ``DRAIN_FACTOR`` times the upload limit (16 x 16 MiB by
default: ~0.1 s for a 60 MB upload over loopback); a body larger still is
not read and the connection is closed (``Connection: close``), as any
server would."""

from __future__ import annotations

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import LimitedStream

DRAIN_FACTOR = 16
CHUNK_BYTES = 1 << 20


def discard_unread_body(response: Response) -> Response:
    """``after_request``: read what is left of the body (see the module)."""
    cap = (current_app.config.get("MAX_CONTENT_LENGTH") or 16 << 20) * DRAIN_FACTOR
    length = request.content_length
    environ = request.environ
    if length is not None and length > cap:
        response.headers["Connection"] = "close"
        return response
    if "wsgi.input_terminated" in environ:  # the server ends the stream (gunicorn; chunked bodies)
        stream = environ["wsgi.input"]
    elif length is None:
        return response  # nothing can be read safely, and werkzeug read nothing
    else:
        try:
            stream = request.stream  # the request's own, which knows what it has read
        except RequestEntityTooLarge:  # refused from Content-Length: nothing was read
            stream = LimitedStream(environ["wsgi.input"], length)
    read = 0
    try:
        while read <= cap:
            chunk = stream.read(CHUNK_BYTES)
            if not chunk:
                return response
            read += len(chunk)
    except (OSError, ValueError, RequestEntityTooLarge):  # the client went away, or a stream past its limit
        pass
    response.headers["Connection"] = "close"
    return response


def configure(app: Flask) -> None:
    app.after_request(discard_unread_body)
