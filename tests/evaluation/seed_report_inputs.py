"""Hand-made per-frame scores and ground truth shared by the tests of the demo's report."""
from typing import Dict, Tuple

import numpy as np


def bootstrap_arrays() -> Tuple[Dict[str, np.ndarray], ...]:
    """Three clips (two with an anomaly: kind 2, then kind 1; one normal): masks, kinds, final
    scores by clip, and the components ``mo`` and ``mm`` alone keyed ``<component>/<clip>``."""
    rng = np.random.default_rng(0)
    masks = {'01_0001': np.r_[np.zeros(10), np.ones(5), np.zeros(5)].astype(np.uint8),
             '01_0002': np.r_[np.ones(4), np.zeros(16)].astype(np.uint8),
             '02_0001': np.zeros(20, dtype=np.uint8)}
    kinds = {'01_0001': masks['01_0001'] * 2, '01_0002': masks['01_0002'] * 1,
             '02_0001': masks['02_0001']}
    final = {c: rng.normal(size=20) + m for c, m in masks.items()}
    alone = {f'{comp}/{c}': rng.normal(size=20) for comp in ('mm', 'mo') for c in masks}
    return masks, kinds, final, alone
