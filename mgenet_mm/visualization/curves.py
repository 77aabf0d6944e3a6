"""Plots of frame-level anomaly scores: per-clip curves (the paper's Figure 5 style), the
histogram of normal against abnormal frames (Figure 6 style), and one video's score curve.

Every figure is written through :func:`~mgenet_mm.fileio.atomic_write_bytes`: a kill leaves the
old PNG or none, never half of one.
"""
from __future__ import annotations

import os.path as osp
from typing import Dict, Mapping, Optional, Sequence

import matplotlib

matplotlib.use('Agg')  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..fileio import atomic_write_bytes  # noqa: E402

__all__ = ['plot_score_curves', 'plot_score_histogram', 'plot_video_scores', 'KIND_COLOURS']

KIND_COLOURS = {1: '#d62728', 2: '#9467bd', 3: '#ff7f0e'}


def _save(figure, path: str) -> None:
    """``savefig`` through a temporary file renamed into place (a kill leaves no half PNG)."""
    fmt = osp.splitext(path)[1].lstrip('.').lower() or 'png'
    try:
        atomic_write_bytes(path, lambda f: figure.savefig(f, format=fmt, dpi=110))
    finally:
        plt.close(figure)


def _shade_runs(axis, mask: np.ndarray, colour: str, label: Optional[str]) -> None:
    """Shade every run of consecutive True frames."""
    padded = np.concatenate(([0], mask.astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(padded))  # starts and ends alternate
    for index, (start, stop) in enumerate(zip(edges[::2], edges[1::2])):
        axis.axvspan(start - 0.5, stop - 0.5, color=colour, alpha=0.25,
                     label=label if index == 0 else None, linewidth=0)


def plot_score_curves(scores: Mapping[str, np.ndarray], gt: Mapping[str, np.ndarray],
                      path: str, clips: Optional[Sequence[str]] = None,
                      kinds: Optional[Mapping[str, np.ndarray]] = None,
                      kind_names: Optional[Dict[int, str]] = None, columns: int = 2) -> None:
    """One panel per clip: the min-max normalised anomaly score over frames, ground truth shaded.

    Args:
        scores: Clip name -> per-frame anomaly scores (higher = more abnormal).
        gt: Clip name -> per-frame mask, 1 = abnormal.
        path: Output PNG.
        clips: Which clips, in order (default: all, sorted).
        kinds: Optional clip name -> per-frame kind (0 normal): shades each kind in its colour.
        kind_names: Kind id -> legend name.
        columns: Panels per row.
    """
    clips = list(clips) if clips is not None else sorted(scores)
    rows = max(1, int(np.ceil(len(clips) / columns)))
    figure, axes = plt.subplots(rows, columns, figsize=(6 * columns, 2.4 * rows), squeeze=False)
    low = min(float(np.min(scores[c])) for c in clips)
    high = max(float(np.max(scores[c])) for c in clips)
    span = high - low if high > low else 1.0
    for axis, clip in zip(axes.ravel(), clips):
        values = (np.asarray(scores[clip]) - low) / span  # one scale for all panels
        if kinds is not None:
            for kind, colour in KIND_COLOURS.items():
                name = (kind_names or {}).get(kind, f'kind {kind}')
                _shade_runs(axis, np.asarray(kinds[clip]) == kind, colour, name)
        else:
            _shade_runs(axis, np.asarray(gt[clip]) > 0, '#d62728', 'ground truth')
        axis.plot(np.arange(len(values)), values, color='#1f77b4', linewidth=1.2,
                  label='anomaly score')
        axis.set_title(clip, fontsize=9)
        axis.set_ylim(-0.02, 1.02)
        axis.set_xlim(0, len(values) - 1)
        axis.set_xlabel('frame', fontsize=8)
        axis.tick_params(labelsize=7)
        axis.legend(fontsize=7, loc='upper left')
    for axis in axes.ravel()[len(clips):]:
        axis.axis('off')
    figure.tight_layout()
    _save(figure, path)


def plot_score_histogram(scores: Mapping[str, np.ndarray], gt: Mapping[str, np.ndarray],
                         path: str, bins: int = 50, title: str = '') -> None:
    """Histogram of frame anomaly scores (min-max normalised over the set), normal against
    abnormal frames, each as a density."""
    clips = sorted(scores)
    values = np.concatenate([np.asarray(scores[c], dtype=np.float64) for c in clips])
    labels = np.concatenate([np.asarray(gt[c]) > 0 for c in clips])
    span = values.max() - values.min()
    values = (values - values.min()) / (span if span > 0 else 1.0)
    figure, axis = plt.subplots(figsize=(5.5, 3.6))
    edges = np.linspace(0, 1, bins + 1)
    axis.hist(values[~labels], bins=edges, density=True, alpha=0.6, color='#1f77b4',
              label=f'normal frames ({int((~labels).sum())})')
    axis.hist(values[labels], bins=edges, density=True, alpha=0.6, color='#d62728',
              label=f'abnormal frames ({int(labels.sum())})')
    axis.set_xlabel('anomaly score (min-max normalised)')
    axis.set_ylabel('density')
    if title:
        axis.set_title(title)
    axis.legend()
    figure.tight_layout()
    _save(figure, path)


def plot_video_scores(frame_scores: np.ndarray, path: str, covered: Optional[np.ndarray] = None,
                      gt: Optional[np.ndarray] = None, title: str = '') -> None:
    """The anomaly score over frames; frames no window scored are greyed, ground truth shaded.

    Args:
        frame_scores: (F,) anomaly per frame.
        path: Output PNG.
        covered: (F,) bool, frames scored by a window.
        gt: (F,) optional 0/1 ground truth (1 = abnormal).
        title: Figure title.
    """
    scores = np.asarray(frame_scores, dtype=np.float64)
    figure, axis = plt.subplots(figsize=(9, 2.8))
    if gt is not None:
        _shade_runs(axis, np.asarray(gt) > 0, '#d62728', 'ground truth')
    if covered is not None and not np.all(covered):
        _shade_runs(axis, ~np.asarray(covered, dtype=bool), '#bbbbbb', 'no person window')
    axis.plot(np.arange(len(scores)), scores, color='#1f77b4', linewidth=1.2,
              label='anomaly score')
    axis.set_xlim(0, max(len(scores) - 1, 1))
    axis.set_xlabel('frame')
    axis.set_ylabel('anomaly')
    axis.set_title(title, fontsize=10)
    axis.legend(fontsize=8, loc='upper left')
    figure.tight_layout()
    _save(figure, path)
