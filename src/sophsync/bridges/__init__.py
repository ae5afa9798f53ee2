"""Bridges: other tools' protocols, served from the local store (never from Sophtron)."""
