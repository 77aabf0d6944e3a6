"""Print the whole config a run would use: every ``_base_`` merged, ``--cfg-options`` applied.

``--cfg-options`` follows ``tools/train.py`` and ``tools/test.py``: a key whose top-level name is
not in the config is refused (a misspelt key would be silently ignored by the run), unless it is
marked as new with a leading ``+``.

Example:
    python tools/misc/print_config.py configs/stgnf/stgnf_hr-avenue.py
    python tools/misc/print_config.py configs/mgenet/demo.py --keys model.backbone test_evaluator
    python tools/misc/print_config.py configs/mgenet/demo.py \\
        --cfg-options train_cfg.max_epochs=2 --save-path work_dirs/demo_2ep.py
"""
import argparse
import os.path as osp
from typing import Any, List, Optional

from mmengine.config import Config, DictAction

import mgenet_mm  # noqa: F401  registration (and shims) as in the run
from mgenet_mm.engine import NEW_KEY_PREFIX, merge_cfg_options


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value pairs, e.g. train_cfg.max_epochs=2; a new '
        f'top-level key needs a leading {NEW_KEY_PREFIX}')
    parser.add_argument('--keys', nargs='+', default=None,
                        help='print only these (dotted) keys, e.g. model.backbone')
    parser.add_argument('--save-path', default=None,
                        help='also write the merged config there (.py, .json or .yaml)')
    return parser.parse_args(argv)


def lookup(cfg: Config, key: str) -> Any:
    """The value at a dotted key (``test_dataloader.dataset.pose_dir``).

    Raises:
        KeyError: Naming the first part of the key that the config does not have.
    """
    value: Any = cfg.to_dict()
    walked = []
    for part in key.split('.'):
        walked.append(part)
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, (list, tuple)) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise KeyError(f'the config has no {".".join(walked)!r} (asked for {key!r})')
    return value


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config not found: {args.config}')
    cfg = Config.fromfile(args.config)
    merge_cfg_options(cfg, args.cfg_options)
    if args.keys:
        for key in args.keys:
            value = lookup(cfg, key)
            if isinstance(value, dict):
                print(f'{key} =\n{Config(value).pretty_text}')
            else:
                print(f'{key} = {value!r}')
    else:
        print(f'Config:\n{cfg.pretty_text}')
    if args.save_path:
        if not args.save_path.endswith(('.py', '.json', '.yaml', '.yml')):
            raise ValueError(f'--save-path must end in .py, .json, .yaml or .yml, got '
                             f'{args.save_path}')
        cfg.dump(args.save_path)
        print(f'config saved to {args.save_path}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
