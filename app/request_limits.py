"""What a request may carry before any view looks at it (contract sections 1 and 8).

- Its body is held to ``MAX_CONTENT_LENGTH`` whichever way it is framed. A body with a
  ``Content-Length`` over the limit is refused by Werkzeug before it is read. A chunked body
  has no length to check first: Werkzeug reads it up to the limit and then stops, handing
  the view the first ``MAX_CONTENT_LENGTH`` bytes as if they were the whole body (a JSON
  object padded past the limit with blanks was accepted). ``BoundedRequest`` reads one byte
  beyond the limit instead: if there is one, the body is too large, 413.
- Its path is UTF-8. Werkzeug decodes a path that is not with replacement characters, which
  could then name an object whose extId holds U+FFFD; such a path names nothing, 404.
"""

from __future__ import annotations

from typing import IO

from flask import Flask, Request, request
from werkzeug.exceptions import NotFound, RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream


class _ChunkedBodyStream(LimitedStream):
    """A body without a length (chunked), whose end the WSGI server marks
    (``wsgi.input_terminated``): read up to ``max_length`` bytes and one beyond, which, if it
    comes, means the body is over the limit."""

    def __init__(self, stream: IO[bytes], max_length: int) -> None:
        super().__init__(stream, max_length + 1, is_max=True)
        self.max_length = max_length

    def readinto(self, buffer: bytearray) -> int | None:  # type: ignore[override]
        size = super().readinto(buffer)
        if self.tell() > self.max_length:
            raise RequestEntityTooLarge()
        return size


class BoundedRequest(Request):
    """Flask's request, its body stream held to ``max_content_length`` when chunked too."""

    @cached_property
    def stream(self) -> IO[bytes]:
        limit = self.max_content_length
        environ = self.environ
        if (
            limit is not None
            and self.content_length is None
            and "wsgi.input_terminated" in environ
            and not self.shallow
        ):
            return _ChunkedBodyStream(environ["wsgi.input"], limit)
        # Werkzeug's own: a Content-Length checked against the limit, or no body at all.
        return Request.stream.fget(self)  # type: ignore[attr-defined]


def refuse_undecodable_path() -> None:
    """A path that is not UTF-8 names nothing (404), whatever rule it would match once
    decoded with replacement characters. (PATH_INFO is the path's bytes as Latin-1.)"""
    path = request.environ.get("PATH_INFO", "")
    if path.isascii():
        return
    try:
        path.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise NotFound() from None


def register_request_limits(app: Flask) -> None:
    app.request_class = BoundedRequest
    app.before_request(refuse_undecodable_path)
