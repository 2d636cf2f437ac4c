"""A2A hostile-input costs: ``decode_json`` against ``json.loads``, and stream appends.

Run: ``python -m benchmarks.a2a_body_decode`` (standalone; not one of the
``python -m benchmarks`` targets). ``--old-append`` also times the former
``str +=`` append (minutes for 100,000 chunks: it is quadratic).
"""

from __future__ import annotations

import json
import sys
import time
import timeit

from penguiflow_a2a._body import decode_json
from penguiflow_a2a.tasks import StreamText

__all__ = ["main"]


def _per_call(fn: object, number: int) -> float:
    return timeit.timeit(fn, number=number) / number  # type: ignore[arg-type]


def main(argv: list[str]) -> None:
    """Print the measurements."""
    small = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "SendMessage",
            "params": {
                "message": {
                    "messageId": "m1",
                    "role": "ROLE_USER",
                    "parts": [{"text": "hi there"}, {"data": {"a": [1, 2.5, 3], "b": {"c": "d"}}}],
                    "metadata": {"headers": {"tenant": "acme"}},
                }
            },
        }
    ).encode()
    big = json.dumps(
        {"payload": [{f"k{i}": [i, i + 0.5, "s" * 20, {"x": None}]} for i in range(8000)]}
    ).encode()
    deep = b"[" + b",".join([b"[" * 63 + b"]" * 63] * 7000) + b"]"
    for name, body, number in (("small", small, 20000), ("big", big, 20)):
        bare = _per_call(lambda body=body: json.loads(body), number)
        strict = _per_call(lambda body=body: decode_json(body), number)
        print(f"{name} body {len(body)} B: json.loads {bare * 1e6:.1f} us,", end=" ")
        print(f"decode_json {strict * 1e6:.1f} us")
    worst = _per_call(lambda: decode_json(deep), 5)
    print(f"worst case {len(deep)} B at depth 64: decode_json {worst * 1e3:.1f} ms")

    chunks = ["x" * 100] * 100_000
    started = time.perf_counter()
    text = StreamText("")
    for piece in chunks:
        text.append(piece)
    text.value()
    print(
        f"100,000 chunks of 100 chars, StreamText: {(time.perf_counter() - started) * 1e3:.1f} ms"
    )
    if "--old-append" in argv:
        part = {"text": ""}
        started = time.perf_counter()
        for piece in chunks:
            part["text"] += piece
        print(f"100,000 chunks of 100 chars, str +=: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
