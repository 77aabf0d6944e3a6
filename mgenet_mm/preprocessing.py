"""The recognizer's default data preprocessor, as a plain config.

It lives outside both :mod:`mgenet_mm.models` (whose ``MGENetRecognizer`` uses it when a config
gives none) and :mod:`mgenet_mm.datasets` (whose feature cache hashes the normalisation the
cached features were computed with), so that neither has to import the other for it: datasets
never import models.
"""
__all__ = ['DEFAULT_PREPROCESSOR']

#: Default preprocessing: stack every input modality of the batch (no normalisation; the pose
#: windows are normalised by the pipeline and cached features need none).
DEFAULT_PREPROCESSOR = dict(
    type='MultiModalDataPreprocessor',
    preprocessors=dict(
        pose=dict(type='ActionDataPreprocessor'),
        tokens=dict(type='ActionDataPreprocessor'),
        scene_feat=dict(type='ActionDataPreprocessor'),
        imgs=dict(type='ActionDataPreprocessor'),
        scene=dict(type='ActionDataPreprocessor')))
