"""Outputs: files, pushes to Firefly III and Actual Budget. They read the local store only."""
