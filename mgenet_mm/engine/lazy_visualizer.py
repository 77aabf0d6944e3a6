"""mmengine's ``Visualizer`` with its drawing figure built when it is first drawn on.

mmengine's ``Visualizer.__init__`` builds a matplotlib figure and canvas at once, importing
matplotlib with its Agg backend: about 0.5 s and 25 MB in a process that had not imported
matplotlib, measured on the project's 2-core machine. Every runner builds a visualizer, yet
training, testing and the STG-NF evaluation only log scalars through it (its vis backends) and
never draw. :class:`LazyFigureVisualizer` keeps everything of mmengine's class and builds the
same figure, with the same ``fig_save_cfg``, the first time ``fig_save``, ``ax_save``,
``fig_save_canvas`` or ``dpi`` is read, i.e. the first time anything is drawn.
"""
from typing import Any, Optional, Tuple

import numpy as np
from mmaction.registry import VISUALIZERS
from mmengine.visualization import Visualizer

# ``(canvas, figure, axes)`` as mmengine's ``Visualizer._initialize_fig`` returns them.
_FigureParts = Tuple[Any, Any, Any]
_CANVAS, _FIGURE, _AXES = range(3)


class _FigureNotBuilt:
    """What the figure attributes read as inside mmengine's ``__init__`` (the figure is not
    built yet). That ``__init__`` only asks the figure's dpi, which :class:`LazyFigureVisualizer`
    reads from the built figure later, so the answer here is never used."""

    @staticmethod
    def get_dpi() -> None:
        return None


_NOT_BUILT = _FigureNotBuilt()


def _figure_part(index: int, doc: str) -> property:
    """A figure attribute of mmengine's ``Visualizer`` that builds the figure when read."""

    def read(self: 'LazyFigureVisualizer') -> Any:
        if self._initialising:
            return _NOT_BUILT
        return self._built_figure()[index]

    def write(self: 'LazyFigureVisualizer', value: Any) -> None:
        if self._initialising:  # mmengine's __init__ writes what _initialize_fig returned
            return
        parts = list(self._built_figure())
        parts[index] = value
        self._figure_parts = tuple(parts)

    return property(read, write, doc=doc)


@VISUALIZERS.register_module()
class LazyFigureVisualizer(Visualizer):
    """``Visualizer`` whose matplotlib figure is built on first use, not in ``__init__``.

    Same arguments, methods and drawings as mmengine's ``Visualizer``; only the moment the
    figure is built differs. With ``image`` given, it is set (and the figure built) at once, as
    mmengine does.

    Args:
        name (str): Name of the instance. Defaults to ``'visualizer'``.
        image (np.ndarray, optional): An image to draw on. Defaults to None.
        vis_backends (list, optional): Visual backend configs or instances. Defaults to None.
        save_dir (str, optional): Where the backends save (``<save_dir>/vis_data``).
        fig_save_cfg (dict): Keyword arguments of the figure drawn on. Defaults to
            ``dict(frameon=False)``.
        fig_show_cfg (dict): Keyword arguments of the figure shown. Defaults to
            ``dict(frameon=False)``.
    """

    fig_save_canvas = _figure_part(_CANVAS, 'The Agg canvas of the figure drawn on.')
    fig_save = _figure_part(_FIGURE, 'The matplotlib figure drawn on.')
    ax_save = _figure_part(_AXES, 'The axes of the figure drawn on.')

    def __init__(self,
                 name: str = 'visualizer',
                 image: Optional[np.ndarray] = None,
                 vis_backends: Any = None,
                 save_dir: Optional[str] = None,
                 fig_save_cfg: dict = dict(frameon=False),
                 fig_show_cfg: dict = dict(frameon=False)) -> None:
        self._figure_parts: Optional[_FigureParts] = None
        self._dpi: Optional[float] = None  # set only by a user; else the figure's own
        self._initialising = True
        try:
            super().__init__(name=name, image=None, vis_backends=vis_backends,
                             save_dir=save_dir, fig_save_cfg=fig_save_cfg,
                             fig_show_cfg=fig_show_cfg)
        finally:
            self._initialising = False
        if image is not None:
            self.set_image(image)

    @property
    def dpi(self) -> float:
        """The dpi of the figure drawn on (what mmengine stores at ``__init__``)."""
        return self._dpi if self._dpi is not None else self.fig_save.get_dpi()

    @dpi.setter
    def dpi(self, value: float) -> None:
        if not self._initialising:  # mmengine's __init__ stores the unbuilt figure's answer
            self._dpi = value

    @property
    def figure_built(self) -> bool:
        """Whether the figure drawn on exists yet."""
        return self._figure_parts is not None

    def _initialize_fig(self, fig_cfg: dict) -> _FigureParts:
        if self._initialising:  # what it returns is not stored (see _figure_part)
            return None, None, None  # built on first use instead
        return super()._initialize_fig(fig_cfg)

    def _built_figure(self) -> _FigureParts:
        if self._figure_parts is None:
            self._figure_parts = super()._initialize_fig(self.fig_save_cfg)
        return self._figure_parts
