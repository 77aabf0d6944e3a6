"""Small file helpers shared by metrics, datasets and tools."""
import os
import os.path as osp
import tempfile


def atomic_write_bytes(path: str, writer) -> None:
    """Write a file through a temporary sibling and ``os.replace``: a crash leaves the old file or
    none, never half of one."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=folder, prefix='.' + osp.basename(path), suffix='.tmp')
    try:
        with os.fdopen(handle, 'wb') as f:
            writer(f)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
