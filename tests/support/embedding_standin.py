"""Stand-ins of the embedding providers' HTTP APIs on loopback, so the real SDKs run in tests.

One server speaks three APIs: OpenAI's (and every OpenAI-compatible server's) and Voyage AI's
``POST /v1/embeddings`` (float lists, or base64 float32 when the SDK asks for it, as both SDKs do
by default), and Cohere's ``POST /v2/embed``. A vector is a hashed bag of the text's words, so
texts that share words are near each other and retrieval through a provider behaves like search.
Every request is recorded; ``fail_with`` makes it answer an error status, ``delay`` slow.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

DIMENSIONS = 64


def vector_of(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    vector = np.zeros(dimensions, dtype=np.float32)
    for word in re.findall(r"\w+", text.lower()):
        vector[int(hashlib.sha1(word.encode()).hexdigest(), 16) % dimensions] += 1.0
    if not vector.any():
        vector[0] = 1.0
    return (vector / np.linalg.norm(vector)).tolist()


class EmbeddingStandIn:
    def __init__(self) -> None:
        self.requests: list[tuple[str, dict]] = []
        self.fail_with: int | None = None
        self.delay = 0.0
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                standin.requests.append(
                    (self.path, {**body, "authorization": self.headers.get("authorization")})
                )
                if standin.delay:
                    time.sleep(standin.delay)
                if standin.fail_with is not None:
                    return self._send(
                        standin.fail_with, {"error": {"message": "stand-in failure", "type": "server_error"}}
                    )
                if self.path.endswith("/v1/embeddings"):
                    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
                    dims = body.get("dimensions") or body.get("output_dimension") or DIMENSIONS
                    data = []
                    for index, text in enumerate(texts):
                        vector = vector_of(text, dims)
                        if body.get("encoding_format") == "base64":
                            vector = base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
                        data.append({"object": "embedding", "index": index, "embedding": vector})
                    tokens = sum(len(t.split()) for t in texts)
                    return self._send(
                        200,
                        {
                            "object": "list",
                            "data": data,
                            "model": body.get("model", ""),
                            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                        },
                    )
                if self.path.endswith("/v2/embed"):
                    texts = body["texts"]
                    return self._send(
                        200,
                        {
                            "id": "standin",
                            "response_type": "embeddings_by_type",
                            "embeddings": {"float": [vector_of(t) for t in texts]},
                            "texts": texts,
                            "meta": {"billed_units": {"input_tokens": sum(len(t.split()) for t in texts)}},
                        },
                    )
                return self._send(404, {"error": {"message": f"no route {self.path}"}})

            def _send(self, status: int, payload: dict) -> None:
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> EmbeddingStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
