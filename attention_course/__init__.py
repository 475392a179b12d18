"""Attention in Parallel: the shared, tested library behind the course's notebooks.

Each lesson derives a piece from scratch; the tested version lives here so that later lessons
can import it instead of copying it.
"""

__version__ = "0.1.0"
