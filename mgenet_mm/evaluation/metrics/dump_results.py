"""``tools/test.py --dump``: mmengine's ``DumpResults`` with the pickle written atomically."""
from mmengine.evaluator.metric import DumpResults
from mmengine.fileio import dump
from mmengine.logging import print_log

from mmaction.registry import METRICS

from ...fileio import atomic_write_bytes

__all__ = ['AtomicDumpResults']


@METRICS.register_module()
class AtomicDumpResults(DumpResults):
    """``DumpResults`` (mmengine 0.10.7 writes ``out_file_path`` in place, so a kill leaves half
    a pickle) whose file goes through a temporary sibling renamed into place."""

    def compute_metrics(self, results: list) -> dict:
        atomic_write_bytes(self.out_file_path, lambda f: dump(results, f, file_format='pkl'))
        print_log(f'Results has been saved to {self.out_file_path}.', logger='current')
        return {}
