"""Region ground-truth readers: UBnormal track files and annotations, ShanghaiTech pixel masks."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from mgenet_mm.evaluation.functional.region_gt import (ClipRegions, format_region_tracks,
                                                       load_pixel_mask_regions,
                                                       load_region_tracks,
                                                       load_ubnormal_annotation_regions,
                                                       mask_regions,
                                                       read_ubnormal_object_tracks,
                                                       ubnormal_annotation_dir)

VIDEO = 'abnormal_scene_3_scenario_2'


def test_region_tracks_round_trip(tmp_path: Path) -> None:
    path = tmp_path / 'clip.txt'
    path.write_text('0,4,10,20,30,60\n0,5,11,20,31,60\n\n1,5,100,100,120,150\n')
    regions = load_region_tracks(path, num_frames=6)
    np.testing.assert_array_equal(regions.frames, [4, 5, 5])
    np.testing.assert_array_equal(regions.tracks, [0, 0, 1])
    np.testing.assert_array_equal(regions.boxes[2], [100, 100, 120, 150])
    assert format_region_tracks(regions) == path.read_bytes().replace(b'\n\n', b'\n')
    (tmp_path / 'empty.txt').write_text('')
    assert len(load_region_tracks(tmp_path / 'empty.txt', 6).frames) == 0


def test_region_tracks_bad_input(tmp_path: Path) -> None:
    path = tmp_path / 'clip.txt'
    path.write_text('0,4,10,20,30,60\n0,9,11,20,31,60\n')
    with pytest.raises(ValueError, match=r'clip.txt: a region in frame 9, but the clip has 6'):
        load_region_tracks(path, num_frames=6)
    path.write_text('0,4,10,20,30,60\n0,4,11,20,31,60\n')
    with pytest.raises(ValueError, match=r'clip.txt: track 0 has two regions in frame 4'):
        load_region_tracks(path)
    path.write_text('0,4,10,20,10,60\n')
    with pytest.raises(ValueError, match=r'clip.txt: region 0 .* zero or negative size'):
        load_region_tracks(path)
    path.write_text('0,4,10,20,30\n')
    with pytest.raises(ValueError, match=r'clip.txt, line 1: expected 6 comma-separated'):
        load_region_tracks(path)


def test_stgnf_numpy_tracks_file_is_refused(fixtures_dir: Path) -> None:
    path = fixtures_dir / 'ubnormal_gt' / f'{VIDEO}_tracks.txt'
    with pytest.raises(ValueError, match=f'{VIDEO}_tracks.txt: a numpy array, not a text list'):
        read_ubnormal_object_tracks(path)


def _annotations(root: Path, num_frames: int = 4) -> Path:
    """A UBnormal annotation folder: object 3 is anomalous in frames 1..2, object 7 in frame 3."""
    folder = Path(ubnormal_annotation_dir(root, VIDEO))
    folder.mkdir(parents=True)
    for t in range(num_frames):
        ids = np.zeros((40, 60), np.uint8)
        ids[5:15, 10 + t:20 + t] = 3       # object 3: a 10x10 block moving right
        ids[30:32, 50:52] = 3              # and a small far-away blob (not the largest)
        ids[20:30, 40:45] = 7
        cv2.imwrite(str(folder / f'{VIDEO}_{t:04d}_gt.png'), ids)
    (folder / f'{VIDEO}_tracks.txt').write_text('7,3,3\n3,1,2\n')
    return folder


def test_ubnormal_annotations(tmp_path: Path) -> None:
    folder = _annotations(tmp_path)
    assert folder == tmp_path / 'Scene3' / f'{VIDEO}_annotations'
    regions = load_ubnormal_annotation_regions(folder, VIDEO, num_frames=4)
    # Tracks numbered by object id: object 3 -> track 0, object 7 -> track 1.
    np.testing.assert_array_equal(regions.frames, [1, 2, 3])
    np.testing.assert_array_equal(regions.tracks, [0, 0, 1])
    np.testing.assert_array_equal(regions.boxes, [[11, 5, 21, 15], [12, 5, 22, 15],
                                                  [40, 20, 45, 30]])
    # A normal video has no object list: no regions.
    (folder / f'{VIDEO}_tracks.txt').unlink()
    assert len(load_ubnormal_annotation_regions(folder, VIDEO, 4).frames) == 0


def test_ubnormal_annotations_bad_input(tmp_path: Path) -> None:
    folder = _annotations(tmp_path)
    with pytest.raises(ValueError, match='4 id maps .* but the clip has 5 frames'):
        load_ubnormal_annotation_regions(folder, VIDEO, num_frames=5)
    tracks = folder / f'{VIDEO}_tracks.txt'
    tracks.write_text('3,0,2\n3,2,3\n')
    with pytest.raises(ValueError, match='object 3 is listed twice with overlapping'):
        load_ubnormal_annotation_regions(folder, VIDEO, 4)
    tracks.write_text('3,0,1\n3,3,3\n')  # disjoint ranges: two tracks, as the official script
    np.testing.assert_array_equal(load_ubnormal_annotation_regions(folder, VIDEO, 4).tracks,
                                  [0, 0, 1])
    tracks.write_text('9,0,0\n')
    with pytest.raises(ValueError, match=f'{VIDEO}_0000_gt.png: object 9, .* does not appear'):
        load_ubnormal_annotation_regions(folder, VIDEO, 4)
    tracks.write_text('3,2,1\n')
    with pytest.raises(ValueError, match='object 3 has frame range 2..1'):
        load_ubnormal_annotation_regions(folder, VIDEO, 4)
    with pytest.raises(FileNotFoundError, match='annotation folder .* not found'):
        load_ubnormal_annotation_regions(tmp_path / 'nowhere', VIDEO, 4)
    with pytest.raises(ValueError, match='not a UBnormal video name'):
        ubnormal_annotation_dir(tmp_path, '01_0014')


def test_mask_regions_components_and_tracks() -> None:
    masks = np.zeros((4, 8, 8), np.uint8)
    masks[0, 0:2, 0:2] = 1        # a: frame 0
    masks[0, 5:7, 5:7] = 1        # b: frame 0
    masks[1, 1:3, 1:3] = 1        # overlaps a at (1, 1): track of a
    masks[1, 4, 4] = 1            # touches b only diagonally across frames: a new track
    masks[2, 4:6, 4:6] = 1        # overlaps frame 1's (4, 4) pixel: its track
    masks[2, 7, 0] = 1            # new track
    masks[3, 0, 7] = masks[3, 1, 6] = 1  # one region (8-connected diagonal), new track
    regions = mask_regions(masks)
    # Regions of a frame in raster order of their first pixel.
    np.testing.assert_array_equal(regions.frames, [0, 0, 1, 1, 2, 2, 3])
    np.testing.assert_array_equal(regions.boxes, [[0, 0, 2, 2], [5, 5, 7, 7], [1, 1, 3, 3],
                                                  [4, 4, 5, 5], [4, 4, 6, 6], [0, 7, 1, 8],
                                                  [6, 0, 8, 2]])
    # a and frame 1's block: track 0; b: track 1; (4, 4) pixel and frame 2's block: track 2;
    # frame 2's corner pixel: track 3; frame 3's diagonal pair: track 4.
    np.testing.assert_array_equal(regions.tracks, [0, 1, 0, 2, 2, 3, 4])


def test_mask_regions_merges_tracks_that_join() -> None:
    masks = np.zeros((2, 4, 6), np.uint8)
    masks[0, 1, 0] = masks[0, 1, 5] = 1   # two regions
    masks[1, 1, :] = 1                    # one region touching both: one track
    np.testing.assert_array_equal(mask_regions(masks).tracks, [0, 0, 0])


def test_pixel_mask_bad_input(tmp_path: Path) -> None:
    path = tmp_path / '01_0014.npy'
    np.save(path, np.zeros((5, 4, 4), np.uint8))
    with pytest.raises(ValueError, match='01_0014.npy: 5 frames, but the clip has 6'):
        load_pixel_mask_regions(path, num_frames=6)
    assert isinstance(load_pixel_mask_regions(path, num_frames=5), ClipRegions)
    np.save(path, np.zeros((5, 4), np.uint8))
    with pytest.raises(ValueError, match=r'01_0014.npy: expected an \(F, H, W\)'):
        load_pixel_mask_regions(path)
    path.write_text('not numpy')
    with pytest.raises(ValueError, match='01_0014.npy: not a numpy'):
        load_pixel_mask_regions(path)
    with pytest.raises(FileNotFoundError):
        load_pixel_mask_regions(tmp_path / 'missing.npy')
