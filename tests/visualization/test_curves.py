"""Score plots: per-clip curves, histogram and one video's curve are complete PNGs."""
from pathlib import Path

import numpy as np
from PIL import Image

from mgenet_mm.visualization import plot_score_curves, plot_score_histogram, plot_video_scores


def _is_png(path: Path) -> bool:
    with Image.open(path) as image:
        image.load()  # the whole file decodes
        return image.format == 'PNG' and image.size[0] > 100


def test_set_plots(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    scores = {f'01_{c:04d}': rng.random(40) for c in range(3)}
    gt = {clip: (np.arange(40) >= 30).astype(np.int64) for clip in scores}
    kinds = {clip: mask * 2 for clip, mask in gt.items()}
    plot_score_curves(scores, gt, str(tmp_path / 'curves.png'))
    plot_score_curves(scores, gt, str(tmp_path / 'kinds.png'), clips=['01_0002'], kinds=kinds,
                      kind_names={2: 'appearance'}, columns=1)
    plot_score_histogram(scores, gt, str(tmp_path / 'histogram.png'), bins=10, title='t')
    for name in ('curves.png', 'kinds.png', 'histogram.png'):
        assert _is_png(tmp_path / name)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith('.tmp')]


def test_video_curve(tmp_path: Path) -> None:
    scores = np.sin(np.arange(50) / 5.0)
    covered = np.arange(50) >= 5
    path = tmp_path / 'sub' / 'walk_scores.png'  # the folder is created
    plot_video_scores(scores, str(path), covered=covered, gt=np.arange(50) > 40, title='walk')
    assert _is_png(path)
