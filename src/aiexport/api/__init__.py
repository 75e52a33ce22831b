"""The REST service: `create_app()` over one ledger database (see `aiexport serve`)."""

from aiexport.api.app import HANDLERS, create_app

__all__ = ["HANDLERS", "create_app"]
