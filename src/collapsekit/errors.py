"""Errors a user can act on.

Every error collapsekit raises on purpose names the cause and the fix in one line. The CLI
turns them (and ``ValueError`` from metrics) into that line and exit code 2.
"""


class CollapsekitError(Exception):
    """A problem with the user's input or environment, with the fix in the message."""


class MissingPackageError(CollapsekitError):
    """An optional package (usually an embedded model) is not installed."""

    def __init__(self, what: str, pip: str):
        super().__init__(f"{what} is not installed: run `pip install {pip}`")
        self.pip = pip


class RunDirError(CollapsekitError):
    """The output folder holds a run made with a different configuration."""


class InputFileError(CollapsekitError):
    """An input file is missing, unreadable, empty or malformed."""


class NotApplicable(CollapsekitError, ValueError):
    """This model cannot run this study (e.g. its context is too short for the probe).

    ``scan`` records such a study as ``probe_skipped`` with the reason and goes on; any
    other exception stops the run, so a bug is never reported as a skipped probe."""
