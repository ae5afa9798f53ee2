"""A local Sophtron: same routes, bodies and casing, a deterministic world, scripted MFA.

Serve it with ``sophsync sandbox``, run it in-process with :class:`SandboxServer`, or mount
:func:`create_app` (an ASGI app) wherever an app is wanted.
"""

from .app import SandboxApp, create_app
from .catalogue import TEST_BANKS, InstitutionKind, InstitutionRecord, Mfa
from .faults import FaultSpec, RateLimit
from .server import SandboxServer
from .state import SandboxConfig, new_credentials

__all__ = [
    "TEST_BANKS",
    "FaultSpec",
    "InstitutionKind",
    "InstitutionRecord",
    "Mfa",
    "RateLimit",
    "SandboxApp",
    "SandboxConfig",
    "SandboxServer",
    "create_app",
    "new_credentials",
]
