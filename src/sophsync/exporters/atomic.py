"""Files that outputs write whole or not at all."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO


@contextmanager
def replacing(path: Path, *, newline: str | None = None) -> Iterator[TextIO]:
    """A text stream whose content takes ``path``'s place only once it is complete.

    It is written to a temporary file beside ``path`` (readable by its owner only: exports
    and mapping files describe a household's money), flushed to disk, then renamed over
    ``path``. A reader never sees half a file, and a failure leaves the previous file as it
    was."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline=newline) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
