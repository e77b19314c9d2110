"""pg-sse-gateway: a Server-Sent Events push gateway for PostgreSQL.

Public surface: ``create_app`` (embed the gateway in another aiohttp program),
``Settings``/``load_settings`` (configuration) and ``main`` (the command line).
"""

from .app import create_app
from .cli import main
from .config import Settings, load_settings

__all__ = ["Settings", "create_app", "load_settings", "main"]
__version__ = "0.1.0"
