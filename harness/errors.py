"""Exception families. Only harness/cli/ turns them into exit codes.

UserError: the user's input is wrong (bad spec, missing file, malformed plan); the message
names the fix. InfraError: the machinery failed (QEMU died, apt failed, build broke).
Both map to exit code 2; test failures are results, not exceptions (exit code 1).
"""


class HarnessError(Exception):
    """Base of everything the harness raises on purpose."""


class UserError(HarnessError):
    """Bad input from the user: the message says what to change."""


class InfraError(HarnessError):
    """Infrastructure failed: a tool, a download, a VM, a build."""


class MissingToolError(UserError):
    """A required host program is not installed."""

    def __init__(self, tool: str, package: str | None = None) -> None:
        hint = f"apt-get install {package}" if package else "pip install it into the venv"
        super().__init__(f"'{tool}' not found on PATH: {hint} (or run ./bootstrap.sh)")
        self.tool = tool


class BuildError(InfraError):
    """A kernel build step failed; carries the log path."""

    def __init__(self, message: str, log_path: str | None = None) -> None:
        suffix = f" (build log: {log_path})" if log_path else ""
        super().__init__(message + suffix)
        self.log_path = log_path


class BootError(InfraError):
    """The VM did not come up or died before the agent finished."""


class SeriesConflict(UserError):
    """A series (or revert) does not apply to its base; `failure` says where it stopped."""

    def __init__(self, message: str, failure: object | None = None) -> None:
        super().__init__(message)
        self.failure = failure


class FetchError(InfraError):
    """A download (apt mirror, b4) failed after its retries."""
