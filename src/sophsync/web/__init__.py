"""The web app: the REST API, health, readiness and metrics."""

from .app import create_app

__all__ = ["create_app"]
