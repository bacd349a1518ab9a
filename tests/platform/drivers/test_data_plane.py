"""``DataPlaneCaller`` against a real HTTP server on loopback: what it sends and what it returns."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from imprun.drivers.data_plane import MAX_ANSWER_BYTES, DataPlaneCaller
from imprun.errors import Unavailable
from tests.fixtures.services import free_port


class _Echo(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        if self.path.startswith("/big"):
            payload = b"x" * (MAX_ANSWER_BYTES + 10)
        else:
            payload = json.dumps(
                {
                    "method": self.command,
                    "path": self.path,
                    "apikey": self.headers.get("apikey"),
                    "body": body.decode(),
                }
            ).encode()
        self.send_response(201)
        self.send_header("content-type", "application/json")
        self.send_header("x-served-by", "echo")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def echo_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_call_carries_method_path_query_headers_and_body(echo_url: str) -> None:
    answer = DataPlaneCaller(echo_url).call(
        "gw/dev/reports/daily",
        method="POST",
        query={"day": "1"},
        headers={"apikey": "imp_dev_x", "Host": "evil.example"},
        body=b'{"a": 1}',
    )
    assert answer.status == 201 and not answer.truncated
    assert answer.headers["x-served-by"] == "echo" and "content-length" not in answer.headers
    assert json.loads(answer.body) == {
        "method": "POST",
        "path": "/gw/dev/reports/daily?day=1",
        "apikey": "imp_dev_x",
        "body": '{"a": 1}',
    }
    assert answer.duration_ms > 0


def test_a_large_answer_is_cut(echo_url: str) -> None:
    answer = DataPlaneCaller(echo_url).call("big", method="GET", query={}, headers={}, body=None)
    assert answer.truncated and len(answer.body) == MAX_ANSWER_BYTES


def test_a_data_plane_that_does_not_answer_is_unavailable() -> None:
    with pytest.raises(Unavailable, match="did not answer"):
        DataPlaneCaller(f"http://127.0.0.1:{free_port()}", timeout_s=2).call(
            "gw/dev/f", method="GET", query={}, headers={}, body=None
        )
