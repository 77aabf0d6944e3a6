"""MGENet performance report: throughput, memory and ViT efficiency on the machine it runs on.

Two workloads, each with random weights (nothing is downloaded; the cost does not depend on the
weights) and model inputs synthesised in memory:

- ``demo``: ``configs/mgenet/demo.py`` (32x32 tubes, a (12, 4, 4) token grid, a 96-wide 2-deep
  ViT, Swin-T stages with a 2x4x4 window, ResNet-18 on 112x112 scene images);
- ``sht``: ``configs/mgenet/sht.py``, ShanghaiTech geometry (64x64 tubes, a (12, 8, 8) token grid,
  a 384-wide 4-deep ViT, Swin-T stages with the K400 8x7x7 window, ResNet-50 on 224x224).

For each it prints:

- data windows/s: the config's on-the-fly train pipeline (decode, person tube crop, median scene
  image, pose normalisation, packing) on a real clip (``benchmark_data.make_sample`` on
  ``vtest.avi``, or a generated clip when that file is absent), and the feature-cache read that
  replaces it (``LoadCachedFeatures``, warm), with ``benchmark_data``'s functions;
- training windows/s (forward, backward, SGD step of one batch) with cached features and on the
  fly (the frozen Swin stages and scene CNN run on every batch);
- inference windows/s (``predict``: S_mo, S_app with the two complementary masks, S_mm of a
  written BSMM) with cached features and on the fly, and frames/s at ``--windows-per-frame``
  (at test stride 1 every tracked person ends one window per frame);
- the achieved GFLOP/s of the RGB encoder (``SpaceTimeViT``) forward, FLOPs counted analytically
  (every matrix product, 2 FLOPs per multiply-add; LayerNorm, softmax, GELU not counted), against
  the machine's float32 matmul peak, timed the same way;
- peak memory: resident set size on CPU (``getrusage``, so the peak of the process so far), or
  ``torch.cuda.max_memory_allocated`` per workload on a GPU;
- which frozen parts run per training step with the feature cache.

A CUDA GPU is used when present (``--device``), and named; on CPU the thread count is printed.

Example:
    python tools/analysis/benchmark.py                  # both workloads, a few minutes on 2 cores
    python tools/analysis/benchmark.py --quick          # smoke run: tiny batches, short timings
"""
import argparse
import importlib.util
import os
import os.path as osp
import platform
import tempfile
import time
from types import ModuleType
from typing import Callable, Dict, NamedTuple, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mgenet_mm  # noqa: F401
from mmaction.registry import DATASETS, MODELS
from mmaction.structures import ActionDataSample

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))


def _load_sibling(name: str) -> ModuleType:
    """Import ``tools/analysis/<name>.py`` by its path: tools are scripts, not a package."""
    spec = importlib.util.spec_from_file_location(name, osp.join(HERE, name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: tools/analysis/benchmark_data.py: the data-side sample, timings and feature cache reused here.
benchmark_data = _load_sibling('benchmark_data')

WORKLOADS = {
    'demo': osp.join(REPO, 'configs', 'mgenet', 'demo.py'),
    'sht': osp.join(REPO, 'configs', 'mgenet', 'sht.py'),
}
#: The ShanghaiTech-sized pose set of tools/analysis/benchmark_stgnf.py: 89,743 test windows over
#: 40,791 frames (the 107 test clip lengths, 3 persons per clip).
SHT_WINDOWS_PER_FRAME = 89743 / 40791


# ---------------------------------------------------------------------------- timing, device
def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


class Timing(NamedTuple):
    """How each figure is timed: ``warmup`` calls, then ``rounds`` rounds of at least
    ``min_calls`` calls and ``min_seconds / rounds`` seconds each; the fastest round counts (on a
    shared machine the other rounds measure the neighbours too)."""
    min_seconds: float = 3.
    warmup: int = 2
    min_calls: int = 2
    rounds: int = 3


def seconds_per_call(fn: Callable[[], object], device: torch.device, timing: Timing) -> float:
    """Wall time of one call of ``fn`` (the matmul peak and every model figure are timed by this
    one function)."""
    for _ in range(timing.warmup):
        fn()
    synchronize(device)
    best = float('inf')
    for _ in range(timing.rounds):
        calls, start = 0, time.perf_counter()
        while calls < timing.min_calls or \
                time.perf_counter() - start < timing.min_seconds / timing.rounds:
            fn()
            calls += 1
            if device.type == 'cuda':
                synchronize(device)
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def matmul_peak(device: torch.device, size: int, timing: Timing) -> float:
    """GFLOP/s of a float32 (size x size) @ (size x size) product."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(device)
    b = torch.randn(size, size, generator=generator).to(device)
    seconds = seconds_per_call(lambda: a @ b, device, timing)
    return 2 * size**3 / seconds / 1e9


def peak_memory_mb(device: torch.device) -> float:
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2**20
    return benchmark_data.peak_rss_mb()


def describe_machine(device: torch.device) -> str:
    if device.type == 'cuda':
        props = torch.cuda.get_device_properties(device)
        return (f'GPU: {torch.cuda.get_device_name(device)} ({props.total_memory / 2**30:.0f} '
                f'GiB), torch {torch.__version__}, CUDA {torch.version.cuda}, TF32 matmul '
                f'{"on" if torch.backends.cuda.matmul.allow_tf32 else "off"}')
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f
                       if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    load = ', '.join(f'{x:.2f}' for x in os.getloadavg()) if hasattr(os, 'getloadavg') else '?'
    return (f'CPU (no GPU used): {cpu}, {os.cpu_count()} cores, torch {torch.__version__} with '
            f'{torch.get_num_threads()} threads, load average {load} at start')


# ---------------------------------------------------------------------------- ViT FLOPs
def vit_forward_flops(vit, batch_size: int) -> Dict[str, int]:
    """FLOPs of one ``SpaceTimeViT`` forward, by kind (2 FLOPs per multiply-add).

    Per window with P tokens of width C, MLP width H, input width C_in: the input projection
    2 P C_in C; per block the qkv projection 2 P C 3C, the scores Q K^T and the product with V
    2 P^2 C each (summed over heads), the output projection 2 P C^2, the MLP 2 * 2 P C H.
    """
    tokens = int(np.prod(vit.token_grid))
    width, depth = vit.embed_dims, len(vit.blocks)
    hidden = vit.blocks[0].mlp.fc1.out_features if depth else 0
    linear = 2 * tokens * vit.in_channels * width + depth * (
        2 * tokens * width * 3 * width + 2 * tokens * width * width + 4 * tokens * width * hidden)
    attention = depth * 2 * (2 * tokens * tokens * width)
    return dict(linear=batch_size * linear, attention=batch_size * attention,
                total=batch_size * (linear + attention))


def counted_linear_flops(vit, x: torch.Tensor) -> int:
    """FLOPs of the matrix products torch's FlopCounterMode sees (mm, addmm, bmm)."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        vit(x)
    counts = counter.get_flop_counts().get('Global', {})
    return int(sum(v for k, v in counts.items() if str(k).split('.')[-1] in ('mm', 'addmm', 'bmm')))


def vit_time_shares(vit, x: torch.Tensor, repeat: int = 2) -> Dict[str, float]:
    """Shares of the forward's CPU time (torch.profiler, self time) spent in the linear layers'
    matrix products, in the attention kernel, and in everything else."""
    from torch.profiler import ProfilerActivity, profile
    with torch.no_grad():
        vit(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(repeat):
                vit(x)
    times = dict(linear=0., attention=0., other=0.)
    for event in prof.key_averages():
        name = event.key.split('::')[-1]
        if name in ('addmm', 'mm', 'bmm'):
            kind = 'linear'
        elif 'attention' in name:
            kind = 'attention'
        else:
            kind = 'other'
        times[kind] += event.self_cpu_time_total
    total = sum(times.values())
    return {kind: value / total for kind, value in times.items()}


# ---------------------------------------------------------------------------- model inputs
def build_model(cfg: Config, on_the_fly: bool, device: torch.device):
    """The config's MGENet with random weights; without the frozen feature stages when cached."""
    model_cfg = dict(cfg.model)
    model_cfg['guidance'] = dict(model_cfg['guidance'], init_cfg=None)
    if on_the_fly:
        model_cfg['cube_embed'] = dict(model_cfg['cube_embed'], init_cfg=None)
        model_cfg['scene_encoder'] = dict(model_cfg['scene_encoder'], init_cfg=None)
    else:  # what the *_cached configs do
        model_cfg['cube_embed'] = None
        model_cfg['scene_encoder'] = None
    model = MODELS.build(model_cfg)
    model.guidance.set_actnorm_initialized()  # as a loaded guidance checkpoint would be
    return model.to(device)


def synthetic_inputs(cfg: Config, model, batch_size: int, on_the_fly: bool,
                     device: torch.device) -> Dict[str, torch.Tensor]:
    """A batch as the data preprocessor would hand it over (normalised images or features)."""
    generator = torch.Generator().manual_seed(batch_size)
    seg_len = model.guidance.seg_len
    t, h, w = model.token_grid
    inputs = dict(pose=torch.randn(batch_size, seg_len, 18, 3, generator=generator))
    if on_the_fly:
        steps = {step['type']: step for step in cfg.train_dataloader.dataset.pipeline}
        tube, scene = steps['PersonTubeCrop']['size'], steps['SceneImage']['size']
        inputs['imgs'] = torch.randn(batch_size, 3, seg_len, tube, tube, generator=generator)
        inputs['scene'] = torch.randn(batch_size, 3, scene, scene, generator=generator)
    else:
        inputs['tokens'] = torch.randn(batch_size, model.backbone.in_channels, t, h, w,
                                       generator=generator)
        inputs['scene_feat'] = torch.randn(batch_size, model.scene_memory.dim,
                                           generator=generator)
    return {key: value.to(device) for key, value in inputs.items()}


def train_rate(model, inputs: Dict[str, torch.Tensor], device: torch.device,
               timing: Timing) -> float:
    """Windows/s of forward + backward + SGD step."""
    batch_size = len(inputs['pose'])
    samples = [ActionDataSample() for _ in range(batch_size)]
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4,
                                momentum=0.5)
    model.train()

    def step() -> None:
        losses = model(dict(inputs), samples, mode='loss')
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()

    return batch_size / seconds_per_call(step, device, timing)


def inference_rate(model, inputs: Dict[str, torch.Tensor], device: torch.device,
                   timing: Timing) -> Tuple[float, set]:
    """Windows/s of ``predict`` (the BSMM written first, so S_mm is included)."""
    batch_size = len(inputs['pose'])
    samples = [ActionDataSample() for _ in range(batch_size)]
    model.eval()
    if model.bsmm is not None:
        with torch.no_grad():
            model.bsmm.reset()
            model.write_bsmm(dict(inputs))
    components = set(model.anomaly_components(dict(inputs)))
    seconds = seconds_per_call(lambda: model(dict(inputs), samples, mode='predict'), device,
                               timing)
    return batch_size / seconds, components


def frozen_calls(model, inputs: Dict[str, torch.Tensor]) -> Dict[str, int]:
    """Forward calls of each frozen part during one training step."""
    calls = {name: 0 for name in ('guidance', 'cube_embed', 'scene_encoder')}
    handles = []
    for name in ('cube_embed', 'scene_encoder'):
        part = getattr(model, name, None)
        if part is not None:
            handles.append(part.register_forward_hook(
                lambda *_, name=name: calls.__setitem__(name, calls[name] + 1)))
    flow = model.guidance.latent_features  # the recognizer's way into the flow

    def counted_flow(*args, **kwargs):
        calls['guidance'] += 1
        return flow(*args, **kwargs)

    model.guidance.latent_features = counted_flow
    try:
        model.train()
        losses = model(dict(inputs), [ActionDataSample() for _ in inputs['pose']], mode='loss')
        sum(losses.values()).backward()
    finally:
        del model.guidance.latent_features  # back to the class's method
        for handle in handles:
            handle.remove()
    return calls


# ---------------------------------------------------------------------------- data
def generated_video(root: str, frames: int = 150) -> str:
    """A 640x480 clip of moving rectangles, when the real fixture clip is absent."""
    import cv2
    path = osp.join(root, 'generated.avi')
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 25, (640, 480))
    rng = np.random.default_rng(0)
    background = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    for frame in range(frames):
        image = background.copy()
        for person in range(4):
            x, y = 50 + person * 140 + frame, 150 + 20 * person
            cv2.rectangle(image, (x, y), (x + 40, y + 120), (60 * person, 200, 255), -1)
        writer.write(image)
    writer.release()
    return path


def data_rates(cfg: Config, video: str, windows: int, seed: int) -> Dict[str, float]:
    """Windows/s of the on-the-fly train pipeline and of the feature-cache read (warm)."""
    pipeline = cfg.train_dataloader.dataset.pipeline
    seg_len = cfg.train_dataloader.dataset.seg_len
    with tempfile.TemporaryDirectory() as root:
        benchmark_data.make_sample(video, root, persons=4, seed=seed)
        dataset, dataset_cfg = benchmark_data.sample_dataset(root, seg_len, pipeline)
        order = np.random.default_rng(seed).permutation(len(dataset))[:windows]
        dataset[int(order[0])]  # warm-up (decoder, first allocation)
        fly, items = benchmark_data.load_windows(dataset, order)
        tokens_shape = (len(order), cfg.model.backbone.in_channels) + tuple(
            cfg.model.motion_head.token_grid)
        tokens = np.random.default_rng(seed).standard_normal(tokens_shape, dtype=np.float32)
        cache_dir = osp.join(root, 'cache')
        benchmark_data.write_feature_cache(
            cache_dir, [dataset.window_keys()[i] for i in order], tokens,
            np.zeros((1, cfg.model.scene_memory.dim), np.float32), seg_len)
        cached = DATASETS.build(dict(dataset_cfg, pipeline=benchmark_data.cached_pipeline(
            cache_dir, pipeline)))
        benchmark_data.load_windows(cached, order)  # first pass: shard checksums
        warm, _ = benchmark_data.load_windows(cached, order)
    return dict(on_the_fly=fly, cache=warm)


# ---------------------------------------------------------------------------- report
def run_workload(name: str, args, device: torch.device, peak: float, video: str) -> float:
    """Print the workload's figures; return the best matmul peak seen so far."""
    init_default_scope('mmaction')
    torch.manual_seed(args.seed)
    cfg = Config.fromfile(WORKLOADS[name])
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    batch, timing = args.batch_size, args.timing
    cached_model = build_model(cfg, on_the_fly=False, device=device)
    vit = cached_model.backbone
    t, h, w = cached_model.token_grid
    print(f'\n== {name}: {osp.relpath(WORKLOADS[name], REPO)} -- tubes '
          f'{8 * h}x{8 * w}, T = {cached_model.guidance.seg_len}, token grid ({t}, {h}, {w}), '
          f'ViT {vit.embed_dims} wide x {len(vit.blocks)} deep, batch {batch}')

    rates = data_rates(cfg, video, args.data_windows, args.seed)
    print(f'data        on the fly (decode, tube crop, scene image) {rates["on_the_fly"]:9.1f} '
          'windows/s')
    print(f'data        feature cache read (warm)                   {rates["cache"]:9.1f} '
          'windows/s')

    cached_inputs = synthetic_inputs(cfg, cached_model, batch, False, device)
    calls = frozen_calls(cached_model, cached_inputs)
    rate = train_rate(cached_model, cached_inputs, device, timing)
    print(f'train       cached features                             {rate:9.2f} windows/s')
    fly_model = build_model(cfg, on_the_fly=True, device=device)
    fly_inputs = synthetic_inputs(cfg, fly_model, batch, True, device)
    fly_rate = train_rate(fly_model, fly_inputs, device, timing)
    print(f'train       on the fly (frozen Swin stages + scene CNN)  {fly_rate:9.2f} windows/s '
          f'(cached: {rate / fly_rate:.1f}x as fast)')

    infer, components = inference_rate(cached_model, cached_inputs, device, timing)
    frames = infer / args.windows_per_frame
    print(f'inference   cached features                             {infer:9.2f} windows/s = '
          f'{frames:.2f} frames/s (S_{", S_".join(sorted(components))})')
    fly_infer, _ = inference_rate(fly_model, fly_inputs, device, timing)
    print(f'inference   on the fly                                  {fly_infer:9.2f} windows/s = '
          f'{fly_infer / args.windows_per_frame:.2f} frames/s')

    x = cached_inputs['tokens']
    flops = vit_forward_flops(vit, batch)
    counted = counted_linear_flops(vit, x)
    if counted != flops['linear']:
        raise RuntimeError(f'analytic linear-layer FLOPs {flops["linear"]} disagree with '
                           f'FlopCounterMode {counted}')
    vit.eval()
    with torch.no_grad():
        seconds = seconds_per_call(lambda: vit(x), device, timing)
    # the peak again, right after: on a shared machine the best of all matmul timings is the
    # machine's peak (which only lowers the ratio)
    peak = max(peak, matmul_peak(device, args.matmul_size, args.matmul_timing))
    achieved = flops['total'] / seconds / 1e9
    goal = '' if device.type == 'cuda' else \
        f' (goal >= 50 % on CPU: {"met" if achieved >= 0.5 * peak else "NOT met"})'
    print(f'ViT encoder forward: {flops["total"] / batch / 1e9:.3f} GFLOP per window '
          f'({100 * flops["attention"] / flops["total"]:.0f} % in attention; the linear layers '
          f'agree with FlopCounterMode), {1e3 * seconds / batch:.2f} ms per window -> '
          f'{achieved:.1f} GFLOP/s = {100 * achieved / peak:.0f} % of the matmul peak '
          f'({peak:.1f} GFLOP/s, the best timing so far){goal}')

    if device.type == 'cpu':
        shares = vit_time_shares(vit, x)
        linear_rate = flops['linear'] / (seconds * shares['linear']) / 1e9
        attention_rate = flops['attention'] / (seconds * shares['attention']) / 1e9
        print(f'ViT time: linear layers {100 * shares["linear"]:.0f} % ({linear_rate:.0f} '
              f'GFLOP/s), attention {100 * shares["attention"]:.0f} % ({attention_rate:.0f} '
              f'GFLOP/s), the rest {100 * shares["other"]:.0f} % (GELU, copies around the '
              'attention, LayerNorm, residual adds; no FLOPs counted)')

    absent = [part for part in ('cube_embed', 'scene_encoder')
              if getattr(cached_model, part) is None]
    pose = cached_inputs['pose']
    with torch.no_grad():
        flow = seconds_per_call(lambda: cached_model.guidance_features(pose), device,
                                timing._replace(min_seconds=timing.min_seconds / 3))
    print(f'frozen parts per training step with the cache: {" and ".join(absent)} not built '
          '(0 calls: their features are read from the cache, computed once by '
          f'tools/data/extract_features.py); the STG-NF guidance runs {calls["guidance"]} '
          f'time(s) per step on the poses, {1e3 * flow / batch:.2f} ms per window = '
          f'{100 * flow * rate / batch:.1f} % of the cached training step')
    memory = 'GPU max allocated' if device.type == 'cuda' else 'peak RSS of the process so far'
    print(f'peak memory ({memory}): {peak_memory_mb(device):.0f} MB')
    del fly_model, cached_model
    return peak


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--workloads', default='demo,sht',
                        help=f'comma-separated, of {sorted(WORKLOADS)}')
    parser.add_argument('--device', default='auto', choices=('auto', 'cpu', 'cuda'))
    parser.add_argument('--batch-size', type=int, default=None,
                        help='windows per training / inference batch (default 8, --quick 1)')
    parser.add_argument('--data-windows', type=int, default=None,
                        help='windows loaded per data figure (default 32, --quick 1)')
    parser.add_argument('--min-seconds', type=float, default=None,
                        help='time each figure for at least this long, in 3 rounds of which '
                        'the fastest counts (default 3, --quick 0: one call)')
    parser.add_argument('--windows-per-frame', type=float, default=SHT_WINDOWS_PER_FRAME,
                        help='test windows per video frame for frames/s (default: the '
                        'ShanghaiTech-sized pose set, 89,743 windows over 40,791 frames)')
    parser.add_argument('--video', default=benchmark_data.DEFAULT_VIDEO,
                        help='clip for the data figures (generated when absent)')
    parser.add_argument('--quick', action='store_true',
                        help='smoke run: batch 1, 1 data window, one timed call per figure')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    args.batch_size = args.batch_size or (1 if args.quick else 8)
    args.data_windows = args.data_windows or (1 if args.quick else 32)
    args.min_seconds = args.min_seconds if args.min_seconds is not None else \
        (0. if args.quick else 3.)
    args.timing = Timing(args.min_seconds, 0, 1, 1) if args.quick else \
        Timing(args.min_seconds, 2, 1, 3)
    if args.device == 'auto':
        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    device = torch.device(args.device)
    workloads = [w.strip() for w in args.workloads.split(',') if w.strip()]
    unknown = sorted(set(workloads) - set(WORKLOADS))
    if unknown:
        parser.error(f'unknown workloads {unknown}; choose from {sorted(WORKLOADS)}')

    print('MGENet performance report' +
          (' (--quick: smoke figures, not measurements)' if args.quick else ''))
    print(describe_machine(device))
    size = args.matmul_size = (1024 if args.quick else 2048) if device.type == 'cpu' else 8192
    args.matmul_timing = args.timing._replace(min_seconds=max(args.min_seconds, .5), warmup=1,
                                              rounds=max(args.timing.rounds, 3))
    peak = matmul_peak(device, size, args.matmul_timing)
    print(f'float32 matmul peak ({size}x{size} @ {size}x{size}): {peak:.1f} GFLOP/s (timed again '
          'beside each ViT figure)')
    print(f'peak memory after imports: {benchmark_data.peak_rss_mb():.0f} MB RSS; frames/s at '
          f'{args.windows_per_frame:.2f} test windows per frame')
    with tempfile.TemporaryDirectory() as root:
        video = args.video if osp.isfile(args.video) else generated_video(root)
        print(f'data clip: {video if video == args.video else "generated (640x480, 150 frames)"}')
        for name in workloads:
            peak = run_workload(name, args, device, peak, video)
    if device.type == 'cpu' and hasattr(os, 'getloadavg'):
        print('load average at the end: ' + ', '.join(f'{x:.2f}' for x in os.getloadavg()))


if __name__ == '__main__':
    main()
