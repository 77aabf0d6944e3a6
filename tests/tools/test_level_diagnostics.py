"""tools/analysis/level_diagnostics.py end to end: a demo-config MGENet with random weights on a
tiny generated feature cache, the statistics checked by an independent route, and its errors."""
import copy
import json
from pathlib import Path

import numpy as np
import scipy.special
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

import mgenet_mm  # noqa: F401,I001
from mmaction.registry import DATASETS, MODELS, TRANSFORMS

from mgenet_mm.datasets.feature_cache import FeatureCacheWriter, WindowIndex, extractor_config
from tests.conftest import REPO, load_tool

TOOL = load_tool('tools/analysis/level_diagnostics.py')
CLIPS = ('01_0001', '02_0001')
NUM_FRAMES = 30  # T = 24, stride 1: 6 windows per person, 24 in all
TOKEN_SHAPE = (192, 12, 4, 4)  # the demo's (C_in, t, h, w)
SCENE_DIM = 512


def _write_data(root: Path) -> None:
    """Two clips of two tracked persons; frame folders of empty files (the cache replaces the
    frames, the dataset only counts them)."""
    rng = np.random.default_rng(0)
    (root / 'pose').mkdir(parents=True)
    for clip in CLIPS:
        persons = {}
        for person in (1, 2):
            frames = {}
            for frame in range(NUM_FRAMES):
                keypoints = np.stack([200 * person + rng.uniform(0, 40, 17),
                                      100 + frame + rng.uniform(0, 120, 17),
                                      np.full(17, 0.9)], axis=1)
                frames[f'{frame:03d}'] = dict(keypoints=keypoints.round(2).ravel().tolist(),
                                              scores=0.9)
            persons[str(person)] = frames
        (root / 'pose' / f'{clip}_alphapose_tracked_person.json').write_text(json.dumps(persons))
        (root / 'frames' / clip).mkdir(parents=True)
        for frame in range(NUM_FRAMES):
            (root / 'frames' / clip / f'{frame:03d}.jpg').write_bytes(b'')


def _write_config(root: Path, cache_dir: Path, name: str = 'tiny.py') -> str:
    """The demo with the paper's scene level (W_b in the BSMM; the guidance source's
    diagnostics: tests/models/recognizers/test_mgenet_bsmm_behaviour.py), small memories, its
    test split on the tiny data."""
    path = root / name
    path.write_text(f"""
_base_ = ['{REPO}/configs/mgenet/demo_cached_rgb-bsmm.py']
model = dict(guidance=dict(init_cfg=None), behaviour_memory=dict(num_items=8),
             scene_memory=dict(num_items=4), bsmm=dict(num_items=6, top_k=2))
reader = dict(_base_.test_pipeline[0], cache_dir='{cache_dir}')
test_dataloader = dict(dataset=dict(data_root='{root}', pose_dir='pose', frame_dir='frames',
                                    pipeline=[reader, *_base_.pose_steps]))
""")
    return str(path)


def _write_cache(cfg: Config, dataset) -> None:
    """Random tokens and scene features for the dataset's windows, under the config checksum
    its LoadCachedFeatures expects."""
    reader_cfg = cfg.test_dataloader.dataset.pipeline[0]
    reader = TRANSFORMS.build(copy.deepcopy(reader_cfg))
    index = WindowIndex.from_windows(dataset.window_keys())
    rng = np.random.default_rng(1)
    tokens = rng.normal(size=(index.num_windows, ) + TOKEN_SHAPE).astype(np.float32)
    writer = FeatureCacheWriter(reader_cfg.cache_dir, shard_size=16)
    writer.open(index, dict(config_checksum=reader.expected_checksum, weights_checksum='w0',
                            seg_len=24),
                extractor_config(reader_cfg.model_cfg, reader_cfg.pipeline_cfg))
    for shard in writer.pending_shards():
        rows = writer.shard_windows(shard)
        with writer.shard(shard) as out:
            out.write(0, tokens[rows.start:rows.stop])
    writer.write_scene(rng.normal(size=(len(index.clip_names), SCENE_DIM)).astype(np.float32))
    writer.finish(with_scene=True)


def _batch(model, dataset, indices):
    return model.data_preprocessor(pseudo_collate([dataset[i] for i in indices]), False)


@pytest.fixture(scope='module')
def sample(tmp_path_factory):
    """(root, config, checkpoint, model, dataset): an MGENet with random weights whose BSMM was
    written from the tiny split's windows, saved as a checkpoint."""
    root = tmp_path_factory.mktemp('levels')
    _write_data(root)
    config = _write_config(root, root / 'features' / 'test')
    cfg = Config.fromfile(config)
    init_default_scope('mmaction')
    _write_cache(cfg, DATASETS.build(dict(cfg.test_dataloader.dataset, pipeline=[])))
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    model.guidance.set_actnorm_initialized()
    model.write_bsmm(_batch(model, dataset, range(len(dataset)))['inputs'])
    checkpoint = root / 'mgenet.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), checkpoint)
    return root, config, str(checkpoint), model, dataset


def _run(capsys, *args):
    status = TOOL.main([*map(str, args), '--device', 'cpu', '--batch-size', '8'])
    return status, capsys.readouterr()


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def test_report_on_every_window(sample, capsys):
    root, config, checkpoint, model, dataset = sample
    out = root / 'all.json'
    status, printed = _run(capsys, config, checkpoint, '--split', 'test', '--max-windows', '0',
                           '--out', out)
    assert status == 0, printed.err
    report = json.loads(out.read_text())
    assert report['num_windows'] == report['num_available'] == len(dataset) == 24
    assert report['windows'] == [list(key) for key in dataset.window_keys()]
    assert report['num_clips'] == 2 and report['notes'] == []
    for label in ('W_b behaviour mem.', 'C_s BSMM read', 'f_u spread', 'S_mm'):
        assert label in printed.out

    addressing = report['addressing']
    assert set(addressing) == {'w_b', 'w_s', 'c_b', 'c_s'}
    assert addressing['w_b']['num_items'] == 8 and addressing['w_b']['uniform_weight'] == 0.125
    assert addressing['w_s']['num_items'] == 4
    assert addressing['w_b']['temperature'] == model.behaviour_memory.temperature
    assert addressing['w_s']['temperature'] == model.scene_memory.temperature
    assert addressing['c_b']['num_items'] == int(model.bsmm.filled.sum()) >= 2

    # An independent route to W_s: softmax over the scene items of the cosine with the cached
    # scene feature of the window's clip (one row per window).
    scene = np.load(root / 'features' / 'test' / 'scene.npy').astype(np.float64)  # (2, C_s)
    clip_row = {clip: row for row, clip in enumerate(
        WindowIndex.load(str(root / 'features' / 'test' / 'index.npz')).clip_names)}
    items = model.scene_memory.items.double().numpy()
    items = items / np.linalg.norm(items, axis=1, keepdims=True)
    queries = scene[[clip_row[clip] for clip, _, _ in report['windows']]]
    queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    w_s = _softmax(queries @ items.T / model.scene_memory.temperature)  # (24, 4)
    assert addressing['w_s']['mean_max_weight'] == pytest.approx(w_s.max(axis=1).mean(),
                                                                 rel=1e-4)
    entropy = -scipy.special.xlogy(w_s, w_s).sum(axis=1) / np.log(4)
    assert addressing['w_s']['normalised_entropy'] == pytest.approx(entropy.mean(), rel=1e-4)
    used = np.unique(w_s.argmax(axis=1))
    assert addressing['w_s']['item_usage'] == pytest.approx(len(used) / 4)

    # the components are the model's own, over the same windows
    components = model.anomaly_components(_batch(model, dataset, range(len(dataset)))['inputs'])
    assert set(report['components']) == {'mo', 'app', 'mm'}
    for name, values in components.items():
        values = values.double().numpy()
        stats = report['components'][name]
        assert stats['min'] == pytest.approx(values.min(), rel=1e-5)
        assert stats['median'] == pytest.approx(np.median(values), rel=1e-5)
        assert stats['max'] == pytest.approx(values.max(), rel=1e-5)
        q25, q75 = np.percentile(values, [25, 75])
        assert stats['iqr'] == pytest.approx(q75 - q25, rel=1e-4, abs=1e-9)
    # f_u spread and the f_u / f_m agreement, by an explicit Gram matrix of the windows
    tensors = TOOL.level_tensors(model, _batch(model, dataset, range(len(dataset)))['inputs'])

    def unit(name):
        flat = tensors[name].double().flatten(1).numpy()  # (24, P*C_app) per token, or t*C_app
        return flat / np.linalg.norm(flat, axis=1, keepdims=True)

    gram = unit('f_u') @ unit('f_u').T
    features = report['features']
    # the demo's token-level branch: one 64-wide vector per token of the (12, 4, 4) grid
    assert features['feature_shape'] == [12 * 4 * 4, 64]
    assert features['f_u_window_cosine'] == pytest.approx(
        (gram.sum() - np.trace(gram)) / (24 * 23), rel=1e-4)
    paired = [(unit('f_u') * unit(name)).sum(axis=1).mean() for name in ('f_m1', 'f_m2')]
    assert features['f_u_f_m_cosine'] == pytest.approx(np.mean(paired), rel=1e-4)

    # level 1: R^2 of f_rgb for f_sk and the gap's covariance spectrum, by numpy
    f_sk = tensors['f_sk'].double().numpy()  # (24, T, C_mo)
    f_rgb = tensors['f_rgb'].double().numpy()
    level1 = report['level1']
    r2 = 1 - ((f_sk - f_rgb) ** 2).sum() / ((f_sk - f_sk.mean(axis=0)) ** 2).sum()
    assert level1['f_rgb_r2'] == pytest.approx(r2, rel=1e-6)
    eigenvalues = np.linalg.eigvalsh(np.cov((f_sk - f_rgb).reshape(-1, f_sk.shape[-1]).T,
                                            bias=True))
    assert level1['gap_eigenvalue_max'] == pytest.approx(eigenvalues[-1], rel=1e-6)
    assert level1['gap_eigenvalue_min'] == pytest.approx(eigenvalues[0], rel=1e-4, abs=1e-12)
    assert level1['f_sk_norm'] == pytest.approx(
        np.linalg.norm(f_sk.reshape(24, -1), axis=1).mean(), rel=1e-6)
    assert level1['whitened'] is False and 'R^2 of f_rgb for f_sk' in printed.out


def test_level_tensors_follow_the_models_scores(sample):
    """The tensors the tool reports are those the model scores with: S_app (eq. 14) and S_mm
    (eq. 15) recomputed from them equal the model's components. A change of the model's
    level-2/3 path fails here until level_tensors follows it."""
    _, _, _, model, dataset = sample
    inputs = _batch(model, dataset, range(6))['inputs']
    tensors = TOOL.level_tensors(model, inputs)
    components = model.anomaly_components(inputs)
    assert tensors['w_b'].shape == (6, 12 * 4 * 4, 8) and tensors['w_s'].shape == (6, 1, 4)
    torch.testing.assert_close(
        model.mask_head.appearance_score(tensors['f_u'], tensors['f_m1'], tensors['f_m2'],
                                         tensors['mask1'], tensors['mask2']),
        components['app'])
    torch.testing.assert_close(model.bsmm.score(tensors['w_b'], tensors['w_s']),
                               components['mm'])
    filled = model.bsmm.filled
    c_b, _ = model.bsmm.matching_weights(tensors['w_b'], tensors['w_s'])
    torch.testing.assert_close(tensors['c_b'], c_b[:, filled])
    torch.testing.assert_close(tensors['c_b'].sum(dim=1), torch.ones(6))


def test_windows_are_a_seeded_draw(sample, capsys):
    root, config, checkpoint, _, dataset = sample
    reports = []
    for seed in (3, 3, 4):
        out = root / f'seed{seed}.json'
        status, printed = _run(capsys, config, checkpoint, '--max-windows', 5, '--seed', seed,
                               '--out', out)
        assert status == 0, printed.err
        reports.append(json.loads(out.read_text()))
    keys = dataset.window_keys()
    expected = [list(keys[i]) for i in TOOL.sample_windows(len(keys), 5, 3)]
    assert reports[0]['num_windows'] == 5 and reports[0]['windows'] == expected
    assert reports[1] == reports[0] and reports[2]['windows'] != reports[0]['windows']
    assert list(TOOL.sample_windows(4, 0, 0)) == list(TOOL.sample_windows(4, 9, 0)) == [0, 1, 2, 3]
    assert sorted(TOOL.sample_windows(10, 6, 1)) == list(TOOL.sample_windows(10, 6, 1))
    assert len(set(TOOL.sample_windows(10, 6, 1))) == 6


def test_unwritten_bsmm_is_reported_not_scored(sample, capsys):
    root, config, _, model, _ = sample
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state['bsmm.items'].zero_()
    state['bsmm.num_written'].zero_()
    checkpoint = root / 'unwritten.pth'
    torch.save(dict(state_dict=state), checkpoint)
    out = root / 'unwritten.json'
    status, printed = _run(capsys, config, checkpoint, '--max-windows', 4, '--out', out)
    assert status == 0, printed.err
    report = json.loads(out.read_text())
    assert set(report['addressing']) == {'w_b', 'w_s'} and 'mm' not in report['components']
    assert 'not written' in report['notes'][0] and 'not written' in printed.out


def test_clear_errors(sample, capsys):
    root, config, checkpoint, model, _ = sample
    # a cache that was never built
    missing = _write_config(root, root / 'features' / 'nowhere', 'no_cache.py')
    status, printed = _run(capsys, missing, checkpoint)
    assert status == 1
    assert 'no feature cache at' in printed.err and 'extract_features.py' in printed.err
    assert '--split test' in printed.err
    # a config without the levels
    status, printed = _run(capsys, REPO / 'configs' / 'stgnf' / 'stgnf_demo.py', checkpoint)
    assert status == 1 and 'not an MGENetRecognizer' in printed.err
    # an STG-NF checkpoint for an MGENet config
    stgnf = root / 'stgnf.pth'
    torch.save(dict(state_dict={'backbone.' + k: v
                                for k, v in model.guidance.state_dict().items()}), stgnf)
    status, printed = _run(capsys, config, stgnf)
    assert status == 1 and 'STG-NF checkpoint' in printed.err
    status, printed = _run(capsys, config, root / 'absent.pth')
    assert status == 1 and 'checkpoint not found' in printed.err
    status, printed = _run(capsys, config, checkpoint, '--max-windows', 1)
    assert status == 1 and 'at least 2' in printed.err
