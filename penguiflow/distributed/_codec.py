"""The item codec, kept importable here for the distributed modules.

The codec itself lives in ``penguiflow._codec`` since the journal
(``penguiflow.journal``) encodes items with it too; importing it from there does
not load this package.
"""

from __future__ import annotations

from penguiflow._codec import decode, dumps, encode, loads

__all__ = ["decode", "dumps", "encode", "loads"]
