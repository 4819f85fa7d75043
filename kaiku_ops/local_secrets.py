"""Secrets generated on first run for a development install, kept under `.data/` (mode 600).

They are never committed (`.data/` is ignored) and never logged. Production sets them
through the environment instead (settings refuse to start without them).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def get_or_create(data_dir: Path, name: str) -> str:
    path = data_dir / name
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600) if not path.exists() else \
        os.open(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    os.chmod(path, 0o600)
    return value
