"""RBDC and TBDC beside the frame-level AUCs: :class:`VADAUCMetric` plus region detection."""
from __future__ import annotations

import json
import logging
import os.path as osp
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import MMLogger, print_log

from mmaction.registry import METRICS
from ...fileio import atomic_write_bytes
from ..functional import mix_scores
from ..functional.region_gt import (ClipRegions, empty_regions, load_pixel_mask_regions,
                                    load_region_tracks, load_ubnormal_annotation_regions,
                                    ubnormal_annotation_dir)
from ..functional.region_metrics import IOU_THRESHOLD, TRACK_FRACTION, rbdc_tbdc
from .vad_metric import VADAUCMetric

__all__ = ['VADRegionMetric', 'merge_results_json']

#: region_format -> where a clip's region ground truth is under ``region_dir``.
REGION_FORMATS = ('tracks', 'ubnormal', 'shanghaitech')
#: The synthetic benchmark's folders (:mod:`mgenet_mm.synthetic.layout`): gt/<split>_frame_mask
#: and gt/<split>_region_tracks.
_MASK_SUFFIX, _REGION_SUFFIX = '_frame_mask', '_region_tracks'


def _region_source(region_dir: str, region_format: str, clip: str) -> str:
    if region_format == 'tracks':
        return osp.join(region_dir, clip + '.txt')
    if region_format == 'shanghaitech':
        return osp.join(region_dir, clip + '.npy')
    return ubnormal_annotation_dir(region_dir, clip)


def merge_results_json(path: str, metrics: Dict[str, float], section: str,
                       content: Dict[str, Any]) -> None:
    """Add metrics (to its ``metrics`` object) and one section to a results JSON, atomically.

    The other entries of the file are kept; a missing file is created.
    """
    payload: Dict[str, Any] = {}
    if osp.isfile(path):
        with open(path, encoding='utf-8') as f:
            payload = json.load(f)
    payload.setdefault('metrics', {}).update(metrics)
    payload[section] = content
    text = json.dumps(payload, indent=2).encode()
    atomic_write_bytes(path, lambda f: f.write(text))


@METRICS.register_module()
class VADRegionMetric(VADAUCMetric):
    """The frame-level AUCs of :class:`VADAUCMetric`, plus RBDC and TBDC.

    RBDC (region-based detection criterion) and TBDC (track-based) are those of Ramachandra &
    Jones (WACV 2020), as UBnormal reports them; their definitions are in
    :mod:`mgenet_mm.evaluation.functional.region_metrics`. In short: a GT region is detected at
    a threshold when a detection above it overlaps it with IoU >= 0.1; RBDR is the fraction of
    GT regions detected, FPR the false-positive detections per frame; RBDC is the area under
    RBDR(FPR) for FPR in [0, 1]. A GT track is detected when at least 10 % of its regions are;
    TBDC is the area under TBDR(FPR) over the same range.

    Detections: every window is one detection, its final anomaly score (the mix of its
    components that the AUCs use, without smoothing) placed on the person's box in the window's
    middle frame ``start + seg_len // 2``: the data sample's ``box_key`` (``tube_box``, the box
    of the person tube, added by ``PersonTubeCrop`` or, in pose-only and cached pipelines, by
    ``PersonTubeBox``; pack it with ``meta_keys=(..., 'tube_box')``). The FPR counts every frame
    of the evaluated clips.

    Region ground truth (``region_format``, readers in
    :mod:`mgenet_mm.evaluation.functional.region_gt`):

    - ``'tracks'``: ``<region_dir>/<clip>.txt``, rows ``track_id,frame,x_min,y_min,x_max,y_max``
      (what UBnormal's ``create_tracks_for_tbdc_rbdc.py`` writes; the synthetic benchmark's
      ``gt/test_region_tracks``);
    - ``'ubnormal'``: ``<region_dir>`` is UBnormal's root; per video its
      ``Scene<s>/<video>_annotations`` folder (object list and per-frame id maps);
    - ``'shanghaitech'``: ``<region_dir>/<clip>.npy``, ShanghaiTech's ``test_pixel_mask``
      (regions = connected components per frame).

    Without ``region_dir``, the synthetic benchmark's layout is assumed: the regions of a
    ``gt_dir`` ``gt/<split>_frame_mask`` are in ``gt/<split>_region_tracks`` (so a config that
    points ``gt_dir`` at another split or benchmark gets its regions too).

    A clip whose region file (folder) is missing is an error when its frame mask has abnormal
    frames; for a clip without abnormal frames it is a counted skip (``num_clips_without_regions``
    in the results, and a log line): UBnormal's track files exist for abnormal videos only.

    Results: ``rbdc``, ``tbdc``, ``num_gt_regions``, ``num_gt_tracks``, ``num_detections``,
    ``num_true_detections`` and ``num_clips_without_regions`` beside the AUC keys (printed as
    ``vad/rbdc`` ...), and in ``vad_results.json`` (its ``metrics``, plus a ``region_detection``
    section with the settings).

    Args:
        region_dir (str, optional): Where the region ground truth is (see above). Default: the
            ``<split>_region_tracks`` folder beside a ``gt_dir`` named ``<split>_frame_mask``.
        region_format (str): ``'tracks'``, ``'ubnormal'`` or ``'shanghaitech'``.
        box_key (str): Data sample key of the window's box. Default ``'tube_box'``.
        iou_thr (float): IoU a detection needs with a region. Default 0.1.
        track_fraction (float): Fraction of a track's regions to detect. Default 0.1.
        **kwargs: The arguments of :class:`VADAUCMetric` (``gt_dir``, ``gt_format``,
            ``seg_len``, ``clips``, ``score_weights``, ...).
    """

    def __init__(self,
                 region_dir: Optional[str] = None,
                 region_format: str = 'tracks',
                 box_key: str = 'tube_box',
                 iou_thr: float = IOU_THRESHOLD,
                 track_fraction: float = TRACK_FRACTION,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if region_format not in REGION_FORMATS:
            raise ValueError(f'region_format must be one of {REGION_FORMATS}, got '
                             f'{region_format!r}')
        if not 0 < iou_thr <= 1 or not 0 < track_fraction <= 1:
            raise ValueError(f'iou_thr and track_fraction must be in (0, 1], got {iou_thr} and '
                             f'{track_fraction}')
        if region_dir is None:
            head, tail = osp.split(osp.normpath(self.gt_dir))
            if region_format != 'tracks' or not tail.endswith(_MASK_SUFFIX):
                raise ValueError(f'VADRegionMetric: give region_dir (the region ground truth); '
                                 f'it is implied only for the synthetic benchmark\'s layout, a '
                                 f'gt_dir <split>{_MASK_SUFFIX} with region_format=\'tracks\', '
                                 f'not {self.gt_dir!r}')
            region_dir = osp.join(head, tail[:-len(_MASK_SUFFIX)] + _REGION_SUFFIX)
        self.region_dir = region_dir
        self.region_format = region_format
        self.box_key = box_key
        self.iou_thr = iou_thr
        self.track_fraction = track_fraction

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Keep what :class:`VADAUCMetric` keeps, and each window's box."""
        super().process(data_batch, data_samples)
        kept = self.results[len(self.results) - len(data_samples):]
        for sample, result in zip(data_samples, kept):
            box = sample.get(self.box_key)
            if box is None:
                raise KeyError(f'VADRegionMetric needs the window\'s box `{self.box_key}` in each '
                               'data sample: add dict(type=\'PersonTubeBox\') before '
                               'NormalizePoseWindow (or use PersonTubeCrop) and '
                               f'\'{self.box_key}\' to the packer\'s meta_keys')
            box = box.tolist() if hasattr(box, 'tolist') else box
            result['box'] = [float(v) for v in np.asarray(box).reshape(-1)]

    # ------------------------------------------------------------------ ground truth
    def _load_regions(self, gt: Dict[str, np.ndarray]) -> Tuple[Dict[str, ClipRegions],
                                                                List[str]]:
        """The regions of every evaluated clip, and the normal clips without a region file."""
        if not osp.isdir(self.region_dir):
            raise FileNotFoundError(f'region ground-truth folder not found: {self.region_dir} '
                                    '(VADRegionMetric region_dir)')
        regions, without = {}, []
        for clip, mask in gt.items():
            source = _region_source(self.region_dir, self.region_format, clip)
            if not osp.exists(source):
                if mask.any():
                    raise FileNotFoundError(f'clip {clip}: region ground truth {source} not '
                                            f'found, and the clip has {int(mask.sum())} abnormal '
                                            'frames')
                without.append(clip)
                regions[clip] = empty_regions()
            elif self.region_format == 'tracks':
                regions[clip] = load_region_tracks(source, len(mask))
            elif self.region_format == 'shanghaitech':
                regions[clip] = load_pixel_mask_regions(source, len(mask))
            else:
                regions[clip] = load_ubnormal_annotation_regions(source, clip, len(mask))
        if without:
            print_log(f'VADRegionMetric: {len(without)} clips without abnormal frames have no '
                      f'region ground truth in {self.region_dir} (no regions), e.g. '
                      f'{without[:3]}', logger='current')
        return regions, without

    # ------------------------------------------------------------------ maths
    def _region_metrics(self, results: List[dict], gt: Dict[str, np.ndarray],
                        regions: Dict[str, ClipRegions]) -> Dict[str, float]:
        kept = [r for r in results if r['clip'] in gt]
        offsets = dict(zip(gt, np.cumsum([0] + [len(m) for m in gt.values()])[:-1].tolist()))
        frames = np.array([r['start'] + self.seg_len // 2 for r in kept], dtype=np.int64)
        for r, frame in zip(kept, frames):
            if frame >= len(gt[r['clip']]):
                raise ValueError(f'clip {r["clip"]}: a window of person {r["person"]} scores '
                                 f'frame {frame}, its ground-truth mask has {len(gt[r["clip"]])}')
        det_frames = frames + np.array([offsets[r['clip']] for r in kept], dtype=np.int64)
        det_boxes = np.array([r['box'] for r in kept], dtype=np.float64).reshape(-1, 4)
        components = sorted({name for r in kept for name in r['scores']})
        scores = {c: np.array([r['scores'][c] for r in kept], dtype=np.float64)
                  for c in components}
        det_scores = (mix_scores(scores, self.score_weights, normalize=self.normalize)
                      if kept else np.zeros(0))
        # Track ids are per clip: number them over the set.
        gt_frames = np.concatenate([regions[c].frames + offsets[c] for c in gt])
        gt_boxes = np.concatenate([regions[c].boxes for c in gt]).reshape(-1, 4)
        pairs = np.concatenate([np.stack([np.full(len(regions[c].tracks), i), regions[c].tracks],
                                         axis=1) for i, c in enumerate(gt)])  # (R, 2)
        gt_tracks = np.unique(pairs, axis=0, return_inverse=True)[1].reshape(-1)
        # A frame selection (HR subsets) leaves the dropped frames out of the FPR's frames and
        # takes their detections and regions with them.
        selection = (self._frame_selection({c: len(m) for c, m in gt.items()})
                     if getattr(self, 'frame_selection', None) else {})
        kept_frames = np.concatenate([selection.get(c, np.ones(len(m), bool))
                                      for c, m in gt.items()])  # (all frames of the set,)
        on_det, on_gt = kept_frames[det_frames], kept_frames[gt_frames]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            try:
                values = rbdc_tbdc(det_frames[on_det], det_boxes[on_det], det_scores[on_det],
                                   gt_frames[on_gt], gt_boxes[on_gt], gt_tracks[on_gt],
                                   int(kept_frames.sum()), self.iou_thr, self.track_fraction)
            except ValueError as err:
                raise ValueError(f'VADRegionMetric: {err} (detection boxes come from the data '
                                 f'samples\' `{self.box_key}`)') from err
        for warning in caught:
            print_log(f'VADRegionMetric: {warning.message}', logger='current',
                      level=logging.WARNING)
        return dict(rbdc=values['rbdc'], tbdc=values['tbdc'],
                    num_gt_regions=values['num_regions'], num_gt_tracks=values['num_tracks'],
                    num_detections=values['num_detections'],
                    num_true_detections=values['num_true_detections'])

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        gt = self._load_gt()  # the evaluated clips (excluded ones left out) and their masks
        # Region files first: a bad one fails before any scoring or writing.
        regions, without = self._load_regions(gt)
        metrics = super().compute_metrics(results)
        region = self._region_metrics(results, gt, regions)
        region['num_clips_without_regions'] = len(without)
        metrics.update(region)
        self._write_region_results(region, without)
        return metrics

    def _write_region_results(self, region: Dict[str, float], without: List[str]) -> None:
        out_dir = self.out_dir
        if out_dir is None:
            log_file = getattr(MMLogger.get_current_instance(), 'log_file', None)
            out_dir = osp.dirname(log_file) if log_file else None
        if out_dir is None:
            return  # VADAUCMetric has said that no result files are written
        merge_results_json(
            osp.join(out_dir, 'vad_results.json'), region, 'region_detection',
            dict(region_dir=self.region_dir, region_format=self.region_format,
                 box_key=self.box_key, iou_thr=self.iou_thr, track_fraction=self.track_fraction,
                 max_fpr=1.0, clips_without_regions=without))
