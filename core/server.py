"""The gunicorn side of ``servq serve``: errors gunicorn answers itself are JSON.

gunicorn refuses some requests before the app sees them (a request line over 4,094
bytes: 414; a header with a control character or a malformed request line: 400; an
over-long header: 431) and answers those with an HTML page of its own. servq's clients
expect every error in flask-smorest's shape, so :class:`JSONErrorWorker` (gunicorn's
sync worker, which ``servq serve`` uses) writes them as ``{"code", "status",
"message"}`` with gunicorn's status and wording.
"""

from __future__ import annotations

import json

from gunicorn import util
from gunicorn.workers.sync import SyncWorker


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's ``util.write_error`` with a JSON body instead of HTML."""
    body = json.dumps({"code": status_int, "status": reason,
                       "message": mesg or ("Internal error." if status_int >= 500 else reason)},
                      ensure_ascii=True).encode("ascii")
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


class JSONErrorWorker(SyncWorker):
    """gunicorn's sync worker whose own error answers are JSON (see the module docstring).

    gunicorn's ``handle_error`` decides the status, logs and writes through
    ``gunicorn.util.write_error``; the worker lends it :func:`write_json_error` for
    that call only (a sync worker handles one request at a time).
    """

    def handle_error(self, req, client, addr, exc):
        original = util.write_error
        util.write_error = write_json_error
        try:
            super().handle_error(req, client, addr, exc)
        finally:
            util.write_error = original
