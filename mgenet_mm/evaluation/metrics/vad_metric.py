"""Frame-level AUC of video anomaly detection, the STG-NF way, as an mmengine metric."""
from __future__ import annotations

import json
import logging
import os.path as osp
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.dist import get_world_size
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log

from mmaction.registry import METRICS
from ...datasets.pose_utils import pose_files_in
from ...fileio import atomic_write_bytes, read_clip_list
from ..functional import (DEFAULT_SIGMAS, component_ranges, compute_vad_aucs, kind_aucs,
                          missing_components, mix_scores, windows_to_frame_scores)
from ..functional.frame_selection import load_frame_selection, select_frames
# name -> GTFormat (file naming, loader returning 1 = abnormal): functional/gt_formats.py
from ..functional.gt_formats import GT_FORMATS, gt_file, list_gt_clips
from ..functional.weight_grid import (check_weight_grid, choose_weights, format_weight_grid,
                                      weight_grid)
from .vad_metric_checks import (check_gt_lengths, check_gt_pose_pairing, check_metric_arguments,
                                check_seg_len)


def _to_float(value: Any) -> float:
    return float(value.item() if hasattr(value, 'item') else value)


def _partial_components_error(partial: Sequence[str]) -> ValueError:
    return ValueError(f'score components {sorted(partial)} are present in some windows only')


def window_table(results: Sequence[dict]) -> Tuple[List[str], np.ndarray,
                                                   Dict[str, np.ndarray]]:
    """The windows of :class:`VADAUCMetric`'s results as flat arrays, in result order.

    ``results`` may mix the two forms ``process`` stores: one dict per window (``clip``,
    ``person``, ``start``, ``scores`` of name -> float) and one block per batch (``clips`` (B,)
    names, ``person`` and ``start`` (B,) int arrays, ``scores`` of name -> (B,) float arrays).

    Args:
        results (Sequence[dict]): Per-window dicts and/or per-batch blocks.

    Returns:
        tuple: (W,) clip names, (W, 2) int64 (person, start) rows and component -> (W,) float64
        scores.

    Raises:
        ValueError: A component that only some windows have.
    """
    names: List[str] = []
    persons, starts = [], []
    parts: Dict[str, list] = {}  # component -> one array (or float) per entry
    sizes = []
    for entry in results:
        if 'clips' in entry:  # a block
            names.extend(entry['clips'])
            persons.append(np.asarray(entry['person'], dtype=np.int64).reshape(-1))
            starts.append(np.asarray(entry['start'], dtype=np.int64).reshape(-1))
            size = len(entry['clips'])
        else:
            names.append(entry['clip'])
            persons.append(np.array([entry['person']], dtype=np.int64))
            starts.append(np.array([entry['start']], dtype=np.int64))
            size = 1
        sizes.append(size)
        for name, value in entry['scores'].items():
            parts.setdefault(name, []).append(np.asarray(value, dtype=np.float64).reshape(-1))
    partial = [name for name, values in parts.items() if len(values) != len(results)]
    if partial:
        raise _partial_components_error(partial)
    if not results:
        return [], np.zeros((0, 2), dtype=np.int64), {}
    person_start = np.stack([np.concatenate(persons), np.concatenate(starts)], axis=1)  # (W, 2)
    scores = {name: np.concatenate(values) for name, values in sorted(parts.items())}
    return [str(name) for name in names], person_start, scores


@METRICS.register_module()
class VADAUCMetric(BaseMetric):
    """Frame-level AUC from per-window anomaly scores.

    Each window's anomaly score (higher = more abnormal) lands on its middle frame; a frame takes
    its most anomalous person; frames with nobody take the least anomalous score of the set; each
    clip is smoothed with Gaussians of sigma 1..6; the micro AUC is computed over all frames of
    all clips (see :mod:`mgenet_mm.evaluation.functional.vad_scores`). Reported too: the macro
    AUC (mean per-clip AUC, one-class clips padded), the AUC without smoothing, counts, and the
    AUC of every score component alone.

    With per-frame labels of what is abnormal, the AUCs are broken down too, each over the normal
    frames and the frames of one label (other abnormal frames left out,
    :func:`~mgenet_mm.evaluation.functional.kind_aucs`), for the final score and for every
    component: per anomaly kind (``kind_dir``; keys ``micro_auc/<kind>``, ``macro_auc/<kind>``,
    ``num_frames/<kind>`` and ``micro_auc/<kind>_<component>``, ``macro_auc/<kind>_<component>``)
    and per event type (``event_dir``; the same keys with the event's name, e.g.
    ``micro_auc/appearance/carry_box`` and ``micro_auc/appearance/carry_box_app``).

    Windows carry several anomaly components when the model has several branches (MGENet: ``mo``,
    ``app``, ``mm``). With ``score_weights`` they are min-max normalised over the evaluated set
    and mixed (paper eq. 16, :func:`~mgenet_mm.evaluation.functional.mix_scores`, the mix that
    :mod:`mgenet_mm.apis` applies to one video too); without, the model must give exactly one
    component, used raw (for STG-NF: ``nll``, which reproduces the official numbers).

    ``process`` only keeps a few numbers per window; the results are written by
    ``compute_metrics`` to ``vad_results.json`` (every metric at full precision) and
    ``vad_frame_scores.npz`` (per clip, the final per-frame anomaly scores) in ``out_dir``, by
    default the run's log folder under ``--work-dir``. ``vad_results.json`` also records each
    component's range over the set (``component_ranges``) and the empty-frame ``fill_value``: with
    them :mod:`mgenet_mm.apis` puts one video's scores on the scale of the evaluated set. With
    more than one component, ``vad_component_frame_scores.npz`` holds the final per-frame scores
    of each component alone (keys ``<component>/<clip>``), so that intervals can be computed per
    component afterwards (:func:`~mgenet_mm.evaluation.functional.clip_bootstrap_aucs`).

    Checked before any inference (:mod:`~mgenet_mm.evaluation.metrics.vad_metric_checks`): the
    argument types, when the evaluator is built; and, when the evaluator hands the dataset's
    metainfo over as :attr:`dataset_meta`, that every evaluated clip has a pose file (an empty
    ``{}`` one for a clip with nobody in it) and every pose file a mask, that ``seg_len`` is the
    dataset's and, where the dataset read the clip's video or frame folder, that every mask has
    exactly its frame count. Outside a runner, set ``metric.dataset_meta = dataset.metainfo``.

    Args:
        gt_dir (str): Folder of per-clip ground-truth masks.
        gt_format (str): ``'shanghaitech'`` (``<clip>.npy``, 1 = abnormal), ``'ubnormal'``
            (``<clip>_tracks.txt``, numpy arrays with 1 = normal, as the STG-NF code ships them),
            ``'avenue'`` (CUHK Avenue ``<n>_label.mat`` pixel masks) or
            ``'shanghaitech_by_camera'`` (``<camera>/<clip>.npy``, MPED-RNN/TrajREC); see
            :mod:`~mgenet_mm.evaluation.functional.gt_formats`.
        seg_len (int): Window length T; a window starting at s scores frame s + T // 2.
        clips (Sequence[str] | str, optional): The clips to evaluate: names, a text file with one
            name per line (blank and ``#`` lines skipped), or a folder of per-clip pose files
            (the test split's pose folder). Default: every mask in ``gt_dir`` (the official
            ShanghaiTech protocol; UBnormal's GT folder also holds training videos, so give its
            test pose folder there).
        use_dataset_clips (bool): Evaluate the clips the dataset chose instead: its metainfo
            ``clips``, which mmengine's evaluator hands over as :attr:`dataset_meta` (e.g. a
            seeded split of :class:`~mgenet_mm.datasets.MGENetWindowDataset`). Excludes
            ``clips``.
        exclude_clips (Sequence[str]): Clips left out (e.g. ShanghaiTech-HR).
        score_weights (dict, optional): Component name -> weight of the final score.
        normalize (bool): Min-max normalise each component over the set before mixing.
        weight_grid (dict, optional): Component name -> weights to try, e.g.
            ``dict(app=[0, 0.1, 0.25, 0.5, 1], mm=[0, 0.1, 0.25, 0.5, 1])`` (the other
            components keep their ``score_weights``): every point of the grid is scored too, on
            the same windows (one inference pass), and the best micro AUC is reported
            (``fusion_grid/best_micro_auc``, ``fusion_grid/best_weights/<component>``; a tie
            goes to the first point in grid order); every point's micro, macro and per-kind
            micro AUCs go to ``vad_results.json`` (``fusion_grid``) and the table to the log.
            The final score still uses ``score_weights``. Run it on a validation split, to
            choose the weights there (:mod:`~mgenet_mm.evaluation.functional.weight_grid`).
        sigmas (Sequence[float]): Successive Gaussian smoothing sigmas.
        kind_dir (str, optional): Folder of per-frame anomaly-kind labels ``<clip>.npy``
            (0 = normal, k > 0 = kind k), e.g. the synthetic benchmark's
            ``gt/test_frame_kinds``: adds micro/macro AUCs per kind (normal frames against the
            frames of that kind) for the final score and each component.
        kind_names (dict): Kind id -> name. Default: motion, appearance, scene.
        event_dir (str, optional): Folder of per-frame event codes ``<clip>.npy`` (0 = normal,
            k > 0 = event k, non-zero exactly where the mask is 1), e.g. the synthetic
            benchmark's ``gt/test_frame_events``: adds the same AUCs per event type.
        event_names (dict, optional): Event code -> name, e.g. ``{5: 'appearance/carry_box'}``.
            Default: ``<event_dir>/names.json``, a JSON object of code (string) -> name.
        frame_selection (dict, optional): Evaluate only some frames of some clips (HR-Avenue,
            HR-UBnormal): ``dict(runs={clip: [[keep, count], ...]})`` or ``dict(dir=folder of
            <clip>.npy boolean masks)``; dropped frames leave scores and GT before smoothing
            (:mod:`~mgenet_mm.evaluation.functional.frame_selection`).
        out_dir (str, optional): Where the result files go (default: the run's log folder).
        collect_device (str): Device for gathering results across ranks.
        prefix (str, optional): Metric name prefix; default ``vad``.
    """

    default_prefix = 'vad'
    #: Store one dict per window instead of one block of arrays per batch. Set for subclasses
    #: that define their own ``process`` (they may read back what it appended, as
    #: :class:`VADRegionMetric` does), unless they set it themselves.
    per_window_results: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if 'process' in cls.__dict__ and 'per_window_results' not in cls.__dict__:
            cls.per_window_results = True

    def __init__(self,
                 gt_dir: str,
                 gt_format: str = 'shanghaitech',
                 seg_len: int = 24,
                 clips: Optional[Union[Sequence[str], str]] = None,
                 use_dataset_clips: bool = False,
                 exclude_clips: Sequence[str] = (),
                 score_weights: Optional[Dict[str, float]] = None,
                 normalize: bool = True,
                 weight_grid: Optional[Dict[str, Sequence[float]]] = None,
                 sigmas: Sequence[float] = DEFAULT_SIGMAS,
                 kind_dir: Optional[str] = None,
                 kind_names: Optional[Dict[int, str]] = None,
                 event_dir: Optional[str] = None,
                 event_names: Optional[Dict[int, str]] = None,
                 frame_selection: Optional[dict] = None,
                 out_dir: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        # A value of the wrong type (``--cfg-options test_evaluator.seg_len=abc``) fails here,
        # when the evaluator is built, naming the key, not after the whole inference.
        check_metric_arguments(dict(
            gt_dir=gt_dir, gt_format=gt_format, seg_len=seg_len, clips=clips,
            use_dataset_clips=use_dataset_clips, exclude_clips=exclude_clips,
            score_weights=score_weights, normalize=normalize, sigmas=sigmas, kind_dir=kind_dir,
            kind_names=kind_names, event_dir=event_dir, out_dir=out_dir, prefix=prefix))
        super().__init__(collect_device=collect_device, prefix=prefix)
        if gt_format not in GT_FORMATS:
            raise ValueError(f'gt_format must be one of {sorted(GT_FORMATS)}, got {gt_format!r}')
        if use_dataset_clips and clips is not None:
            raise ValueError('give clips or use_dataset_clips=True, not both (set clips=None to '
                             'evaluate the clips of the dataset)')
        self.gt_dir = gt_dir
        self.gt_format = gt_format
        self.seg_len = seg_len
        self.clips = clips
        self.use_dataset_clips = use_dataset_clips
        self.exclude_clips = set(exclude_clips)
        self.score_weights = None if score_weights is None else dict(score_weights)
        self.normalize = normalize
        if weight_grid is not None:
            check_weight_grid(weight_grid, score_weights)
        self.weight_grid = None if weight_grid is None else {
            name: [float(w) for w in values] for name, values in weight_grid.items()}
        self.sigmas = tuple(sigmas)
        self.kind_dir = kind_dir
        self.kind_names = dict(kind_names or {1: 'motion', 2: 'appearance', 3: 'scene'})
        self.event_dir = event_dir
        self.event_names = (None if event_names is None else
                            self._check_event_names(event_names, 'event_names'))
        self.frame_selection = None if frame_selection is None else dict(frame_selection)
        self.out_dir = out_dir
        self._missing_components: List[str] = []

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Keep clip, person, start frame and the anomaly components of every window.

        In one process, one block of arrays per batch (a dict per window costs more than the
        STG-NF flow, and mmengine copies the results once more before ``compute_metrics``);
        on several ranks one dict per window, which mmengine's ``collect_results`` needs to
        order the ranks' windows and drop the sampler's padding.
        """
        if not data_samples:
            return
        components = [sample.get('anomaly_scores') for sample in data_samples]
        if any(scores is None for scores in components):
            raise KeyError('VADAUCMetric needs `anomaly_scores` (component -> score) in each '
                           'predicted data sample')
        if self.per_window_results or get_world_size() > 1:
            self.results.extend(
                dict(clip=sample['clip_name'], person=int(sample['person_id']),
                     start=int(sample['start_frame']),
                     scores={name: _to_float(value) for name, value in scores.items()})
                for sample, scores in zip(data_samples, components))
            return
        keys = components[0].keys()
        if any(scores.keys() != keys for scores in components):
            everywhere = set(keys).intersection(*components)
            raise _partial_components_error(set().union(*components) - everywhere)
        size = len(data_samples)
        self.results.append(dict(
            clips=np.array([sample['clip_name'] for sample in data_samples]),  # (B,)
            person=np.fromiter((int(s['person_id']) for s in data_samples), np.int64, size),
            start=np.fromiter((int(s['start_frame']) for s in data_samples), np.int64, size),
            scores={name: np.fromiter((_to_float(scores[name]) for scores in components),
                                      np.float64, size) for name in sorted(keys)}))

    # ------------------------------------------------------------------ maths
    def _dataset_clips(self) -> List[str]:
        """The clips of the dataset's metainfo (set by the evaluator as ``dataset_meta``)."""
        clips = (self.dataset_meta or {}).get('clips')
        if clips is None:
            raise ValueError('VADAUCMetric(use_dataset_clips=True) needs the dataset\'s clips in '
                             'dataset_meta: the evaluator sets it from dataset.metainfo, where '
                             'MGENetWindowDataset puts its clips; outside a runner, set '
                             'metric.dataset_meta = dataset.metainfo')
        return sorted(set(clips))

    @property
    def dataset_meta(self) -> Optional[dict]:
        """The dataset's metainfo, as mmengine's evaluator hands it over."""
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta: Optional[dict]) -> None:
        # The evaluator sets it when the val/test loop is built, before any inference: the
        # moment to check that the dataset and the ground truth describe the same clips.
        self._dataset_meta = dataset_meta
        if dataset_meta and dataset_meta.get('clips') is not None:
            self._check_dataset(dataset_meta)

    def _check_dataset(self, meta: dict) -> None:
        """Clips, window length and (where the dataset knows it) frame counts agree with the GT.

        ``meta`` is a dataset's metainfo: ``clips`` (every clip with a pose file), ``pose_dirs``,
        ``seg_len`` (:class:`~mgenet_mm.datasets.PoseWindowDataset`), ``clip_frames`` and
        ``clip_sources`` (:class:`~mgenet_mm.datasets.MGENetWindowDataset`).
        """
        check_seg_len(self.seg_len, meta.get('seg_len'))
        files = self._gt_files()
        check_gt_pose_pairing(files, meta['clips'], meta.get('pose_dirs', ()),
                              self.exclude_clips, self.gt_dir)
        if meta.get('clip_frames'):
            loader = GT_FORMATS[self.gt_format].loader
            check_gt_lengths({name: len(loader(path)) for name, path in files.items()}, files,
                             meta['clip_frames'], meta.get('clip_sources'))

    def _load_gt(self) -> 'OrderedDict[str, np.ndarray]':
        loader = GT_FORMATS[self.gt_format].loader
        return OrderedDict((name, loader(path)) for name, path in self._gt_files().items())

    def _gt_files(self) -> 'OrderedDict[str, str]':
        """Evaluated clip -> its GT file, in sorted clip order; each file exists."""
        gt_format = GT_FORMATS[self.gt_format]
        suffix = gt_format.suffix
        if not osp.isdir(self.gt_dir):
            raise FileNotFoundError(f'ground-truth folder not found: {self.gt_dir}')
        if self.use_dataset_clips:
            names = self._dataset_clips()
        elif self.clips is None:
            names = list_gt_clips(gt_format, self.gt_dir)
        elif isinstance(self.clips, str) and osp.isdir(self.clips):
            names = sorted(clip for clip, _ in pose_files_in(self.clips))
        elif isinstance(self.clips, str):
            names = sorted(set(read_clip_list(self.clips)))
        else:
            names = sorted(set(self.clips))
        names = [n for n in names if n not in self.exclude_clips]
        if not names:
            raise FileNotFoundError(f'no ground-truth masks (*{suffix}) to evaluate in '
                                    f'{self.gt_dir}')
        files = OrderedDict()
        for name in names:
            path = gt_file(gt_format, self.gt_dir, name)
            if not osp.isfile(path):
                raise FileNotFoundError(f'clip {name}: ground-truth mask {path} not found')
            files[name] = path
        return files

    @staticmethod
    def _load_frame_codes(folder: str, what: str,
                          gt: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Per-frame codes ``<folder>/<clip>.npy`` of every clip, checked against its mask."""
        codes = {}
        for name, mask in gt.items():
            path = osp.join(folder, name + '.npy')
            if not osp.isfile(path):
                raise FileNotFoundError(f'clip {name}: per-frame {what} {path} not found')
            try:
                values = np.load(path, allow_pickle=False).reshape(-1)  # (F,)
            except (ValueError, OSError, EOFError) as err:
                raise ValueError(f'clip {name}: {what} {path} is not a numpy array '
                                 f'({err})') from err
            if len(values) != len(mask):
                raise ValueError(f'clip {name}: {what} {path} has {len(values)} frames, its '
                                 f'ground-truth mask {len(mask)}')
            if values.size and (values.min() < 0 or not np.array_equal(values, np.round(values))):
                raise ValueError(f'clip {name}: {what} {path} holds values that are not '
                                 'non-negative integer codes')
            wrong = np.flatnonzero((values > 0) != (mask > 0))
            if wrong.size:
                raise ValueError(f'clip {name}: {what} {path} disagree with its ground-truth mask '
                                 f'({wrong.size} frames, the first {int(wrong[0])})')
            codes[name] = values.astype(np.int64)
        return codes

    def _check_event_names(self, names: Any, where: str) -> Dict[int, str]:
        """Code (int or digit string, > 0) -> non-empty name; no kind name reused."""
        if not isinstance(names, dict) or not names:
            raise ValueError(f'{where}: expected a non-empty object of event code -> name, got '
                             f'{type(names).__name__}')
        checked = {}
        for code, label in names.items():
            try:
                number = int(code)
            except (TypeError, ValueError):
                number = 0
            if number <= 0 or str(number) != str(code).strip():
                raise ValueError(f'{where}: event code {code!r} is not a positive integer')
            if not isinstance(label, str) or not label:
                raise ValueError(f'{where}: event {code} has no name (got {label!r})')
            checked[number] = label
        # A reused name would silently overwrite another label's keys in the results.
        labels = list(checked.values())
        clashes = sorted({n for n in labels if labels.count(n) > 1} |
                         (set(labels) & set(self.kind_names.values())))
        if clashes:
            raise ValueError(f'{where}: event names {clashes} are used twice or are kind names')
        return checked

    def _load_events(self, gt: Dict[str, np.ndarray]) -> Tuple[Dict[str, np.ndarray],
                                                               Dict[int, str]]:
        """Per-frame event codes and the code -> name map (``names.json`` by default)."""
        names = self.event_names
        if names is None:
            path = osp.join(self.event_dir, 'names.json')
            if not osp.isfile(path):
                raise FileNotFoundError(f'event names {path} not found (a JSON object of event '
                                        'code -> name; or give event_names)')
            try:
                with open(path, encoding='utf-8') as f:
                    raw = json.load(f)
            except (ValueError, UnicodeDecodeError) as err:
                raise ValueError(f'event names {path}: not valid JSON ({err})') from err
            names = self._check_event_names(raw, f'event names {path}')
        events = self._load_frame_codes(self.event_dir, 'events', gt)
        for name, codes in events.items():
            unnamed = sorted(set(np.unique(codes[codes > 0]).tolist()) - set(names))
            if unnamed:
                raise ValueError(f'clip {name}: events {osp.join(self.event_dir, name + ".npy")} '
                                 f'hold codes {unnamed} that have no name')
        return events, names

    def _mix(self, scores: Dict[str, np.ndarray]) -> np.ndarray:
        """Eq. 16 with the ranges of the evaluated set (see :func:`mix_scores`)."""
        mixed = mix_scores(scores, self.score_weights, normalize=self.normalize)
        if self.score_weights is not None:
            missing = missing_components(self.score_weights, scores)
            if missing:
                # E.g. validation during training, before the BSMM write pass: say so loudly
                # and record it in the results instead of inventing a value.
                present = [name for name in self.score_weights if name in scores]
                print_log(f'VADAUCMetric: score components {missing} are absent from the '
                          f'predictions; the final score mixes only {present}',
                          logger='current', level=logging.WARNING)
            self._missing_components = missing
        return mixed

    def _frame_selection(self, lengths: Dict[str, int]) -> Dict[str, np.ndarray]:
        """Clip -> bool mask of the frames evaluated, from ``frame_selection`` (none: {})."""
        if self.frame_selection is None:
            return {}
        selection, counts = load_frame_selection(self.frame_selection, lengths)
        print_log('VADAUCMetric frame selection' +
                  (f' ({self.frame_selection["source"]})' if 'source' in self.frame_selection
                   else '') + ': ' + ', '.join(f'{k} {v}' for k, v in counts.items()),
                  logger='current')
        return selection

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """The AUCs of the windows in ``results`` (per-window dicts and/or per-batch blocks)."""
        gt = self._load_gt()
        known = set(gt)
        all_names, all_person_start, all_scores = window_table(results)
        # Windows of excluded clips are dropped; any other clip must have a mask.
        keep = np.array([name not in self.exclude_clips for name in all_names], dtype=bool)
        names = [name for name, kept_one in zip(all_names, keep) if kept_one]
        unknown = sorted(set(names) - known)
        if unknown:
            raise ValueError(f'windows of clips without a ground-truth mask in {self.gt_dir}: '
                             f'{unknown[:10]}')
        person_start = all_person_start[keep]  # (W, 2)
        components = sorted(all_scores) if names else []
        scores = {c: all_scores[c][keep] for c in components}
        lengths = {name: len(mask) for name, mask in gt.items()}
        selection = self._frame_selection(lengths)  # clip -> kept frames (HR subsets)
        gt_kept = select_frames(gt, selection)

        def evaluate(anomaly: np.ndarray) -> Dict[str, Any]:
            frames = windows_to_frame_scores(-anomaly, person_start, lengths, self.seg_len,
                                             clip_names=names)
            # Dropped frames leave before smoothing, as in the peers' HR evaluations.
            return compute_vad_aucs(select_frames(frames, selection), gt_kept, sigmas=self.sigmas)

        # Labels first: a bad file fails before any scoring.
        labelled = []  # (per-frame codes by clip, code -> name): kinds, then events
        if self.kind_dir:
            labelled.append((self._load_frame_codes(self.kind_dir, 'kinds', gt), self.kind_names))
        event_names = None
        if self.event_dir:
            events, event_names = self._load_events(gt)
            labelled.append((events, event_names))
        labelled = [(select_frames(codes, selection), code_names)
                    for codes, code_names in labelled]

        final = evaluate(self._mix(scores)) if names else evaluate(np.zeros(0))
        metrics: Dict[str, float] = OrderedDict(
            micro_auc=final['micro_auc'], macro_auc=final['macro_auc'],
            micro_auc_unsmoothed=final['micro_auc_unsmoothed'],
            num_windows=len(names), num_frames=final['num_frames'], num_clips=final['num_clips'],
            num_empty_frames=final['num_empty_frames'])
        for codes, code_names in labelled:
            metrics.update(kind_aucs(final['anomaly_scores'], codes, code_names))
        component_frames = {}  # component -> clip -> final per-frame scores of it alone
        if len(components) > 1:
            for name in components:
                alone = evaluate(scores[name])
                component_frames[name] = alone['anomaly_scores']
                metrics[f'micro_auc_{name}'] = alone['micro_auc']
                metrics[f'macro_auc_{name}'] = alone['macro_auc']
                for codes, code_names in labelled:
                    per_code = kind_aucs(alone['anomaly_scores'], codes, code_names)
                    metrics.update({f'{key}_{name}': value for key, value in per_code.items()
                                    if not key.startswith('num_')})
        fusion_grid = None
        if self.weight_grid and names:
            fusion_grid = self._evaluate_weight_grid(scores, evaluate, labelled)
            best = fusion_grid['points'][fusion_grid['best']]
            metrics['fusion_grid/best_micro_auc'] = best['micro_auc']
            metrics.update({f'fusion_grid/best_weights/{name}': weight
                            for name, weight in best['weights'].items()})
        ranges = {name: list(span) for name, span in component_ranges(scores).items()}
        self._write_results(metrics, final, ranges, component_frames, event_names, fusion_grid)
        return metrics

    def _evaluate_weight_grid(self, scores: Dict[str, np.ndarray], evaluate,
                              labelled: List[tuple]) -> Dict[str, Any]:
        """Every point of ``weight_grid`` mixed from the same window components and scored:
        ``dict(grid=..., points=[dict(weights, micro_auc, macro_auc, micro_auc/<label>...)],
        best=index)``."""
        points = []
        for weights in weight_grid(self.score_weights, self.weight_grid):
            result = evaluate(mix_scores(scores, weights, normalize=self.normalize))
            point = dict(weights=weights, micro_auc=result['micro_auc'],
                         macro_auc=result['macro_auc'])
            for codes, code_names in labelled:
                point.update({key: value for key, value in
                              kind_aucs(result['anomaly_scores'], codes, code_names).items()
                              if key.startswith('micro_auc/')})
            points.append(point)
        best = choose_weights([point['micro_auc'] for point in points])
        print_log('VADAUCMetric weight grid, micro AUC (%) of each point (* the best):\n' +
                  format_weight_grid(points, self.weight_grid), logger='current')
        return dict(grid=self.weight_grid, points=points, best=best)

    def _write_results(self, metrics: Dict[str, float], final: Dict[str, Any],
                       component_ranges: Dict[str, List[float]],
                       component_frames: Optional[Dict[str, Dict[str, np.ndarray]]] = None,
                       event_names: Optional[Dict[int, str]] = None,
                       fusion_grid: Optional[Dict[str, Any]] = None) -> None:
        out_dir = self.out_dir
        if out_dir is None:
            log_file = getattr(MMLogger.get_current_instance(), 'log_file', None)
            out_dir = osp.dirname(log_file) if log_file else None
        if out_dir is None:
            print_log('VADAUCMetric: no out_dir and no run log folder; result files not written',
                      logger='current', level=logging.WARNING)
            return
        payload = dict(metrics=dict(metrics), missing_components=self._missing_components,
                       per_clip_auc={k: float(v) for k, v in final['per_clip_auc'].items()},
                       score_weights=self.score_weights, normalize=self.normalize,
                       seg_len=self.seg_len, sigmas=list(self.sigmas), gt_dir=self.gt_dir,
                       fill_value=float(final['fill_value']),
                       component_ranges=component_ranges,
                       event_names=None if event_names is None else
                       {str(code): name for code, name in sorted(event_names.items())})
        if fusion_grid is not None:
            payload['fusion_grid'] = fusion_grid
        text = json.dumps(payload, indent=2).encode()
        atomic_write_bytes(osp.join(out_dir, 'vad_results.json'), lambda f: f.write(text))
        anomaly = {k: np.asarray(v, dtype=np.float64) for k, v in final['anomaly_scores'].items()}
        atomic_write_bytes(osp.join(out_dir, 'vad_frame_scores.npz'),
                           lambda f: np.savez(f, **anomaly))
        if component_frames:
            # Clip names never hold '/', so a key splits at its last '/'.
            alone = {f'{component}/{clip}': np.asarray(values, dtype=np.float64)
                     for component, by_clip in component_frames.items()
                     for clip, values in by_clip.items()}
            atomic_write_bytes(osp.join(out_dir, 'vad_component_frame_scores.npz'),
                               lambda f: np.savez(f, **alone))
        print_log(f'VADAUCMetric: results written to {out_dir}', logger='current')
