"""LazyFigureVisualizer: mmengine's Visualizer, the same drawings, the figure built on first use."""
import subprocess
import sys
from itertools import count
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.visualization import Visualizer

import mgenet_mm  # noqa: F401  registers the visualizer
from mgenet_mm.engine import LazyFigureVisualizer

REPO = Path(__file__).resolve().parents[2]
_names = count()


def _name() -> str:  # mmengine's instances are named; each test builds its own
    return f'lazy_visualizer_test_{next(_names)}'


def _image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, size=(48, 64, 3), dtype=np.uint8)


def _draw(visualizer: Visualizer) -> np.ndarray:
    visualizer.set_image(_image())
    visualizer.draw_bboxes(np.array([[4, 6, 30, 40]]), edge_colors='r', line_widths=2)
    visualizer.draw_texts('jog', np.array([5, 5]), colors='y', font_sizes=8)
    visualizer.draw_points(np.array([[20, 20], [40, 30]]), colors='g', sizes=np.array([9, 9]))
    return visualizer.get_image()


def test_no_figure_until_something_is_drawn() -> None:
    visualizer = LazyFigureVisualizer(name=_name())
    assert not visualizer.figure_built
    visualizer.add_scalars({'loss': 0.5})  # scalars go to the backends (none here)
    assert not visualizer.figure_built
    _draw(visualizer)
    assert visualizer.figure_built


def test_the_same_drawings_and_dpi_as_mmengines_visualizer() -> None:
    cfg = dict(frameon=False, dpi=72)
    eager = Visualizer(name=_name(), fig_save_cfg=cfg)
    lazy = LazyFigureVisualizer(name=_name(), fig_save_cfg=cfg)
    assert lazy.dpi == eager.dpi == 72
    drawn = _draw(lazy)
    assert drawn.shape == (48, 64, 3)
    np.testing.assert_array_equal(drawn, _draw(eager))
    assert not np.array_equal(drawn, _image())  # the drawing changed the picture


def test_default_dpi_is_the_figures() -> None:
    eager = Visualizer(name=_name())
    lazy = LazyFigureVisualizer(name=_name())
    assert lazy.dpi == eager.dpi == eager.fig_save.get_dpi()


def test_an_image_given_at_construction_is_set_at_once() -> None:
    lazy = LazyFigureVisualizer(name=_name(), image=_image())
    assert lazy.figure_built
    np.testing.assert_array_equal(lazy.get_image(), Visualizer(name=_name(),
                                                               image=_image()).get_image())


def test_figure_attributes_can_still_be_replaced() -> None:
    lazy = LazyFigureVisualizer(name=_name())
    other = Visualizer(name=_name(), fig_save_cfg=dict(frameon=False, dpi=50))
    lazy.fig_save = other.fig_save
    lazy.dpi = 50
    assert lazy.fig_save is other.fig_save and lazy.dpi == 50
    assert lazy.ax_save is not None and lazy.fig_save_canvas is not None


def test_the_runtime_config_builds_it_and_scalars_reach_the_local_backend(tmp_path) -> None:
    from mmaction.registry import VISUALIZERS
    from mmengine.registry import DefaultScope
    cfg = Config.fromfile(str(REPO / 'configs' / '_base_' / 'default_runtime.py'))
    with DefaultScope.overwrite_default_scope('mmaction'):
        visualizer = VISUALIZERS.build(dict(cfg.visualizer.to_dict(), name=_name(),
                                            save_dir=str(tmp_path)))
    assert type(visualizer) is LazyFigureVisualizer
    visualizer.add_scalars({'vad/micro_auc': 0.75}, step=1)
    visualizer.close()
    scalars = list(tmp_path.rglob('scalars.json'))
    assert len(scalars) == 1 and '"vad/micro_auc": 0.75' in scalars[0].read_text()
    assert not visualizer.figure_built


@pytest.mark.parametrize('cls', ['LazyFigureVisualizer', 'Visualizer'])
def test_matplotlib_is_imported_only_by_mmengines_eager_figure(cls: str) -> None:
    code = ('import sys\n'
            'from mmaction.registry import VISUALIZERS\n'
            'from mmengine.registry import DefaultScope\n'
            'import mgenet_mm\n'
            'loaded = "matplotlib" in sys.modules\n'
            'with DefaultScope.overwrite_default_scope("mmaction"):\n'
            f'    VISUALIZERS.build(dict(type="{cls}", name="v"))\n'
            'print(loaded, "matplotlib" in sys.modules)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         cwd=REPO, check=True).stdout.split()
    assert out == ['False', 'False' if cls == 'LazyFigureVisualizer' else 'True']
