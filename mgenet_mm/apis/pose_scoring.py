"""Batch scoring of skeleton windows with an STG-NF flow, without the per-item pipeline."""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch

from ..datasets.pose_utils import normalize_windows


@torch.no_grad()
def score_pose_windows(flow: torch.nn.Module,
                       dataset,
                       batch_size: int = 4096,
                       video_resolution=(856., 480.),
                       progress: Optional[Callable[[int, int], None]] = None) -> np.ndarray:
    """nll (bits per dimension) of every window of a :class:`PoseWindowDataset`.

    Windows are gathered, normalised and scored ``batch_size`` at a time, so memory stays
    bounded by one chunk; the numbers equal those of the runner's test loop.

    Args:
        flow (torch.nn.Module): An :class:`STGNF` in eval mode.
        dataset (PoseWindowDataset): The windows.
        batch_size (int): Windows per chunk.
        video_resolution (tuple): (width, height) of the normalisation.
        progress (callable, optional): Called with (done, total) after each chunk.

    Returns:
        np.ndarray: (N,) float32 nll, in dataset order (higher = more abnormal).
    """
    device = next(flow.parameters()).device
    total = len(dataset)
    nll = np.empty(total, dtype=np.float32)
    for start in range(0, total, batch_size):
        stop = min(start + batch_size, total)
        windows, _ = normalize_windows(dataset.window_keypoints(range(start, stop)),
                                       video_resolution)  # (n, T, V, 3)
        # (n, T, V, C) -> (n, C, T, V), x and y only
        inputs = torch.from_numpy(windows[..., :2]).permute(0, 3, 1, 2).to(device)
        nll[start:stop] = flow(inputs)[1].float().cpu().numpy()
        if progress is not None:
            progress(stop, total)
    return nll
