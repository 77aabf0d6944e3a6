"""Small file helpers shared by metrics, datasets, hooks and tools."""
import os
import os.path as osp
import re
import tempfile
from typing import List, Optional


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


def fsync_folder(folder: str) -> None:
    """``fsync`` a folder, so that a rename or a new entry in it survives a power loss.

    A file's own ``fsync`` covers its bytes, not its name: until the folder is synced, a crash
    of the machine can bring back the old entry (or none). Platforms that cannot open a folder
    (Windows) skip this.
    """
    try:
        handle = os.open(folder, os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0))
    except OSError:
        return
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def atomic_write_bytes(path: str, writer) -> None:
    """Write a file through a temporary sibling and ``os.replace``: a crash leaves the old file or
    none, never half of one.

    ``writer(f)`` writes into the open binary temporary file. The bytes are ``fsync``-ed before
    the rename and the folder after it, so that a file counts as written only once it would
    survive a power loss too (without the first, the rename can reach the disk before the data
    and publish an empty or partial file). The published file gets the permissions of an
    ordinary new file (``0666 & ~umask``; ``mkstemp`` creates it 0600). A kill (SIGKILL) can
    leave the hidden temporary ``.<name>*.tmp`` beside it, never a partial ``path``.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=folder, prefix='.' + osp.basename(path), suffix='.tmp')
    try:
        with os.fdopen(handle, 'wb') as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
        fsync_folder(folder)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def publish_temporary(tmp_path: str, path: str) -> None:
    """Put a finished temporary file in place under its final name: ``fsync``, then ``os.replace``.

    The other half of :func:`atomic_write_bytes`, for files it cannot write through one
    ``writer(f)`` call: one filled in place over many calls (a memory-mapped feature shard),
    under a temporary name its owner chose so that a resumed run can recognise and delete it.
    The caller has written, flushed and closed (or unmapped) ``tmp_path``. A crash before the
    rename leaves the old ``path`` (or none) and the temporary, never a partial ``path``; the
    folder is synced after the rename, so that the new name survives a power loss too.
    """
    # fsync first: a rename that reaches the disk before the data would publish a hole
    with open(tmp_path, 'rb+') as f:
        os.fsync(f.fileno())
    os.replace(tmp_path, path)
    fsync_folder(osp.dirname(osp.abspath(path)))


def make_unique_folder(parent: str, name: str, max_tries: int = 1000) -> str:
    """Create ``parent/name``, or ``parent/name_1``, ``name_2`` ... when taken; return the name.

    Each attempt is one ``os.mkdir``, which fails if the folder exists: of two processes that try
    the same name at the same moment exactly one gets it, so two runs started in the same second
    (mmengine names run folders by the second) never share a folder.

    Args:
        parent (str): The folder to create it in (created if needed).
        name (str): The preferred name.
        max_tries (int): Give up after this many taken names. Defaults to 1000.

    Returns:
        str: The name of the created folder (``name`` or ``name_<n>``).

    Raises:
        FileExistsError: ``max_tries`` names were all taken.
    """
    os.makedirs(parent, exist_ok=True)
    for attempt in range(max_tries):
        candidate = name if attempt == 0 else f'{name}_{attempt}'
        try:
            os.mkdir(osp.join(parent, candidate))
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f'{parent}: {name} and {max_tries - 1} numbered variants exist '
                          'already; clean the folder up')


#: Name of a temporary that :func:`atomic_write_bytes` makes for ``<name>``: ``mkstemp`` puts 8
#: characters of ``[a-z0-9_]`` between the prefix ``.<name>`` and the suffix ``.tmp``.
_TEMPORARY = r'^\.{name}[a-z0-9_]{{8}}\.tmp$'


def remove_stale_temporaries(path: str) -> int:
    """Delete the temporaries that killed :func:`atomic_write_bytes` calls left beside ``path``.

    Only for a file that no other process is writing at the same time (its temporary would go
    too), e.g. before a resumed run rewrites an unfinished output.

    Returns:
        int: How many were removed.
    """
    folder = osp.dirname(osp.abspath(path))
    if not osp.isdir(folder):
        return 0
    pattern = re.compile(_TEMPORARY.format(name=re.escape(osp.basename(path))))
    removed = 0
    for name in os.listdir(folder):
        if pattern.match(name):
            try:
                os.remove(osp.join(folder, name))
                removed += 1
            except FileNotFoundError:  # gone meanwhile
                pass
    return removed


def read_clip_list(path: str, what: Optional[str] = None) -> List[str]:
    """Clip names from a text file, one per line, in file order.

    Surrounding whitespace is stripped; blank lines and lines starting with ``#`` (comments) are
    skipped.

    Args:
        path (str): The text file.
        what (str, optional): What the list is for, put before the error message.

    Returns:
        list[str]: The names (duplicates kept; callers take sets).

    Raises:
        FileNotFoundError: No such file (the message names it).
    """
    if not osp.isfile(path):
        raise FileNotFoundError((f'{what}: ' if what else '') + f'clip list not found: {path}')
    with open(path) as f:
        lines = [line.strip() for line in f]
    return [line for line in lines if line and not line.startswith('#')]
