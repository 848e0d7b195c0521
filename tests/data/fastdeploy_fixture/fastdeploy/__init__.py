"""Fixture: the top-level package pulls in the serving engine, absent here (as on a bare CPU box)."""

from fastdeploy.entrypoints.llm import LLM  # noqa: F401
