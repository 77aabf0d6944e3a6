"""A tiny registered model, dataset and metric used to exercise tools/train.py and tools/test.py.

Test-only: loaded through ``custom_imports`` in the configs the tool tests write.
"""
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from torch.utils.data import Dataset

from mmaction.registry import DATASETS, METRICS, MODELS


@MODELS.register_module()
class ToyRegressor(BaseModel):
    """y = w x + b fitted by MSE."""

    def __init__(self, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.linear = torch.nn.Linear(4, 1)

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor, mode: str = 'tensor'):
        pred = self.linear(inputs).squeeze(-1)
        if mode == 'loss':
            return dict(loss=torch.nn.functional.mse_loss(pred, targets))
        if mode == 'predict':
            return [dict(pred=p, target=t) for p, t in zip(pred, targets)]
        return pred


@DATASETS.register_module()
class ToyRegressionDataset(Dataset):

    def __init__(self, size: int = 16, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.inputs = torch.randn(size, 4, generator=generator)
        self.targets = self.inputs @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1
        self.metainfo = dict()

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        return dict(inputs=self.inputs[index], targets=self.targets[index])


@METRICS.register_module()
class ToyMSEMetric(BaseMetric):

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            self.results.append(float((sample['pred'] - sample['target']) ** 2))

    def compute_metrics(self, results: List[float]) -> Dict[str, float]:
        return dict(mse=sum(results) / len(results))
