"""score_pose_windows: the chunked evaluation path equals the per-item pipeline and the reference."""
from pathlib import Path

import numpy as np
import torch
from mmengine.registry import init_default_scope

from mgenet_mm.apis import score_pose_windows
from mgenet_mm.datasets import PoseWindowDataset
from mgenet_mm.models.backbones import STGNF

init_default_scope('mmaction')


def test_chunked_scoring_matches_reference(fixtures_dir: Path) -> None:
    root = fixtures_dir / 'stgnf_reference'
    reference = np.load(root / 'expected_sht.npz')
    dataset = PoseWindowDataset(str(root / 'pose' / 'test'), seg_len=24, test_mode=True,
                                pipeline=[dict(type='NormalizePoseWindow')])
    flow = STGNF.from_official_checkpoint(str(root / 'ShanghaiTech_85_9.tar')).eval()
    calls = []
    nll = score_pose_windows(flow, dataset, batch_size=1000,
                             progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (len(dataset), len(dataset)) and len(calls) == 5
    np.testing.assert_allclose(nll, reference['nll'], atol=1e-4, rtol=0)
    # The same windows through the per-item pipeline give the same numbers.
    items = torch.from_numpy(np.stack([dataset[i]['keypoint'] for i in range(0, 4936, 617)]))
    with torch.no_grad():
        _, per_item = flow(items.permute(0, 3, 1, 2))
    np.testing.assert_allclose(nll[::617], per_item.numpy(), atol=1e-6, rtol=0)
    # Raw windows by fancy indexing equal the dataset's own per-item copies.
    raw = dataset.window_keypoints([3, 4000])
    np.testing.assert_array_equal(raw[1], dataset.get_data_info(4000)['keypoint'])
