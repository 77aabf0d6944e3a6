"""Small file helpers shared by metrics, datasets, hooks and tools."""
import os
import os.path as osp
import tempfile


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (threads may be writing
    files meanwhile)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def atomic_write_bytes(path: str, writer) -> None:
    """Write a file through a temporary sibling and ``os.replace``: a crash leaves the old file or
    none, never half of one.

    ``writer(f)`` writes into the open binary temporary file. The published file gets the
    permissions of an ordinary new file (``0666 & ~umask``; ``mkstemp`` creates it 0600). A kill
    (SIGKILL) can leave the hidden temporary ``.<name>*.tmp`` beside it, never a partial ``path``.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=folder, prefix='.' + osp.basename(path), suffix='.tmp')
    try:
        with os.fdopen(handle, 'wb') as f:
            writer(f)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
