"""sophsync: self-hosted bank sync on the Sophtron aggregation API."""

__version__ = "0.1.0"
