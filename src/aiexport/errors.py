"""One exception tree for the whole package.

Every error says what went wrong *and* what to do about it. API-facing errors carry the HTTP
status they map to, so the service translates them in one place::

    AiexportError                      (500)
    ├── LawError                       a law file or scenario is malformed (500; a developer's bug)
    ├── ParameterNotFound              no value of a parameter on a date (500)
    ├── InputError                     bad user input: file, line, column (422)
    │   └── OrderError                 one order row is invalid (422)
    ├── UnknownItem                    an item is not in the catalog (422)
    ├── NotFound                       a named object does not exist (404)
    ├── Conflict                       the request clashes with recorded state (409)
    │   └── QuotaExceeded              a draw would overdraw a cap (409)
    ├── LedgerIntegrityError           the hash chain does not verify (500)
    └── AuthError                      missing or invalid credentials (401) / role (403)
"""

from __future__ import annotations


class AiexportError(Exception):
    """Root of every error raised on purpose by aiexport."""

    status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LawError(AiexportError):
    """A law file, rule set or scenario file is malformed."""

    def __init__(self, path: str, message: str, key: str | None = None) -> None:
        where = f"{path}" + (f" (key {key!r})" if key else "")
        super().__init__(f"{where}: {message}")
        self.path = path
        self.key = key


class ParameterNotFound(AiexportError):
    """A parameter has no value in force on the requested date."""


class InputError(AiexportError):
    """User input is invalid. Names the file, the line and the column when known."""

    status = 422

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        parts = []
        if file:
            parts.append(str(file))
        if line is not None:
            parts.append(f"line {line}")
        if column:
            parts.append(f"column {column!r}")
        prefix = ", ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.file = file
        self.line = line
        self.column = column
        self.detail = message


class OrderError(InputError):
    """One order row is invalid."""


class UnknownItem(AiexportError):
    """The item cannot be classified: not in the catalog, or a figure it needs is missing."""

    status = 422

    def __init__(self, message: str, column: str = "item") -> None:
        super().__init__(message)
        self.column = column


class NotFound(AiexportError):
    """A named object (rule set, account, license, case, job) does not exist."""

    status = 404


class Conflict(AiexportError):
    """The request clashes with what is already recorded."""

    status = 409


class QuotaExceeded(Conflict):
    """A draw would take an account past its limit; nothing was recorded."""


class LedgerIntegrityError(AiexportError):
    """The ledger's hash chain or balances do not verify."""


class AuthError(AiexportError):
    """Missing, unknown or insufficient credentials."""

    status = 401


class Forbidden(AuthError):
    """The key is valid but its role may not do this."""

    status = 403
