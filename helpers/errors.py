"""Exceptions that show one clear sentence in Jupyter instead of a long traceback."""

from __future__ import annotations


class CourseError(RuntimeError):
    """Base class: IPython renders it as its message alone (no 40-line traceback)."""

    def _render_traceback_(self) -> list[str]:  # IPython hook
        return [f"\x1b[1;31m{type(self).__name__}\x1b[0m: {self}"]


class ServiceUnavailable(CourseError):
    """A course service (Redis or Kafka) cannot be reached; the message says what to run."""


class ServiceSetupError(CourseError):
    """A service could not be installed or started; the message names the fix."""


class PortTaken(ServiceSetupError):
    """A port the course wants is held by a process the course did not start."""
