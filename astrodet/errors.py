"""Exceptions for bad user input: each message names the file, row or field and what was expected."""

from __future__ import annotations


class AstrodetInputError(ValueError):
    """Input (a table, an image, a config value) is not what astrodet expects. The CLI exits 2 on it."""
