"""The REST API: `create_app()` builds the FastAPI application that `testledger serve` hands to uvicorn."""

from testledger.api.app import create_app

__all__ = ["create_app"]
