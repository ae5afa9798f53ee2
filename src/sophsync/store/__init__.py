"""Storage: SQLAlchemy models, engines and migrations, and the secret vault."""

from .engine import (
    create_engine,
    current_revision,
    head_revision,
    session_factory,
    upgrade,
    upgrade_url,
)
from .vault import Vault

__all__ = [
    "Vault",
    "create_engine",
    "current_revision",
    "head_revision",
    "session_factory",
    "upgrade",
    "upgrade_url",
]
