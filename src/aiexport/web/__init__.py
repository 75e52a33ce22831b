"""The dashboard: server-rendered pages over the same services as the API."""

from aiexport.web.pages import mount

__all__ = ["mount"]
