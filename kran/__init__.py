"""kran: a multi-host container engine and orchestrator."""

__version__ = "0.1.0"
API_VERSION = "v1"
