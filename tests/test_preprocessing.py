"""mgenet_mm.preprocessing: the recognizer's default preprocessor, outside datasets and models."""
import ast
from pathlib import Path

from mgenet_mm.preprocessing import DEFAULT_PREPROCESSOR
from tests.conftest import REPO


def test_default_preprocessor_stacks_every_modality() -> None:
    assert DEFAULT_PREPROCESSOR['type'] == 'MultiModalDataPreprocessor'
    assert sorted(DEFAULT_PREPROCESSOR['preprocessors']) == [
        'imgs', 'pose', 'scene', 'scene_feat', 'tokens']
    # no normalisation: the pipeline normalises poses, cached features need none
    assert all(entry == dict(type='ActionDataPreprocessor')
               for entry in DEFAULT_PREPROCESSOR['preprocessors'].values())


def _imported_modules(path: Path) -> list:
    """Absolute names of the modules a source file imports (relative imports resolved)."""
    package = '.'.join(path.relative_to(REPO).with_suffix('').parts[:-1])
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split('.')
            if node.level:
                base = base[:len(base) - node.level + 1]
                names.append('.'.join(base + ([node.module] if node.module else [])))
            else:
                names.append(node.module)
    return names


def test_datasets_never_import_models() -> None:
    offenders = {
        str(path.relative_to(REPO)): name
        for path in sorted((REPO / 'mgenet_mm' / 'datasets').rglob('*.py'))
        for name in _imported_modules(path)
        if name == 'mgenet_mm.models' or name.startswith('mgenet_mm.models.')
    }
    assert offenders == {}
