"""Helpers shared by the synthetic generator's tests and the make_synthetic tool's test."""
import hashlib
import os
from pathlib import Path
from typing import Dict

SHOULDERS, HIPS = (5, 6), (11, 12)


def file_hashes(root: Path) -> Dict[str, str]:
    """sha256 of every file under ``root``, by relative path."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out
