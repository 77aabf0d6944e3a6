"""mgenet_mm.fileio: the clip-list reader and the clean-up of killed atomic writes."""
import os
import tempfile
from pathlib import Path

import pytest

from mgenet_mm.fileio import (atomic_write_bytes, publish_temporary, read_clip_list,
                              remove_stale_temporaries)


def test_read_clip_list_skips_blank_and_comment_lines(tmp_path: Path) -> None:
    path = tmp_path / 'clips.txt'
    path.write_text('# test clips\n01_0014\n\n  01_0015  \n#01_0016\n01_0014\n')
    assert read_clip_list(str(path)) == ['01_0014', '01_0015', '01_0014']
    with pytest.raises(FileNotFoundError, match='moved_clips: clip list not found: .*none.txt'):
        read_clip_list(str(tmp_path / 'none.txt'), 'moved_clips')


def test_remove_stale_temporaries(tmp_path: Path) -> None:
    target = tmp_path / 'a.json'
    atomic_write_bytes(str(target), lambda f: f.write(b'{}'))
    # what a write killed before its os.replace leaves: mkstemp's name beside the target
    handle, _ = tempfile.mkstemp(dir=tmp_path, prefix='.a.json', suffix='.tmp')
    os.close(handle)
    other = tmp_path / '.a.json.bak1234abcd.tmp'  # a temporary of a.json.bak, kept
    other.write_bytes(b'')
    assert remove_stale_temporaries(str(target)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ['.a.json.bak1234abcd.tmp', 'a.json']
    assert target.read_bytes() == b'{}'
    assert remove_stale_temporaries(str(tmp_path / 'missing' / 'b.json')) == 0


def test_publish_temporary_replaces_the_final_file(tmp_path: Path) -> None:
    final, tmp = tmp_path / 'shard.npy', tmp_path / '.shard.npy.tmp'
    final.write_bytes(b'old')
    tmp.write_bytes(b'new, filled in place')
    publish_temporary(str(tmp), str(final))
    assert final.read_bytes() == b'new, filled in place'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['shard.npy']
    with pytest.raises(FileNotFoundError):  # nothing to publish: the final file stays
        publish_temporary(str(tmp), str(final))
    assert final.read_bytes() == b'new, filled in place'


def _record_syncs(monkeypatch) -> list:
    """Record every fsync (as the path its descriptor names) and every os.replace, in order."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(('fsync', os.readlink(f'/proc/self/fd/{fd}')))
        real_fsync(fd)

    def replace(src, dst) -> None:
        events.append(('replace', str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, 'fsync', fsync)
    monkeypatch.setattr(os, 'replace', replace)
    return events


def test_atomic_write_fsyncs_the_file_then_its_folder(tmp_path: Path, monkeypatch) -> None:
    events = _record_syncs(monkeypatch)
    target = tmp_path / 'result.json'
    atomic_write_bytes(str(target), lambda f: f.write(b'{"auc": 0.5}'))
    assert target.read_bytes() == b'{"auc": 0.5}'
    # the temporary's bytes reach the disk before the rename, the folder's entry after it
    assert [kind for kind, _ in events] == ['fsync', 'replace', 'fsync']
    assert Path(events[0][1]).name.startswith('.result.json')
    assert events[0][1].endswith('.tmp')
    assert events[1][1] == str(target)
    assert events[2][1] == str(tmp_path)


def test_publish_temporary_fsyncs_the_file_then_its_folder(tmp_path: Path, monkeypatch) -> None:
    final, tmp = tmp_path / 'shard.npy', tmp_path / '.shard.npy.tmp'
    tmp.write_bytes(b'filled in place')
    events = _record_syncs(monkeypatch)
    publish_temporary(str(tmp), str(final))
    assert events == [('fsync', str(tmp)), ('replace', str(final)), ('fsync', str(tmp_path))]
