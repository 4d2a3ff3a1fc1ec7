"""Streams Lab helpers: the plumbing behind the course notebooks.

Data flows one way: notebook -> helpers -> real server. Importing this package has no side
effects (no connections, no processes started).
"""

__all__ = ["config", "clients", "workers", "checks", "results", "measure"]
