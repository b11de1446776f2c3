"""chatstream: a self-hosted AI chat server that streams answers over SSE."""

__version__ = "0.1.0"
