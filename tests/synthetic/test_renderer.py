"""The synthetic benchmark's renderer: the drawn pixels follow the simulated skeleton."""
import numpy as np

from mgenet_mm.synthetic import (JOINT_PARTS, LABEL_STRIDE, PARTS, VISIBLE, ClipRenderer,
                                 plan_benchmark, preset_config)
from tests.synthetic.helpers import HIPS, SHOULDERS


def test_rendered_pixels_follow_the_skeleton() -> None:
    """Where a shoulder (hip) is visible, the rendered colour is the shirt (trousers).

    Exactly so where the joint lies inside its parts (its 3x3 label neighbourhood is all the
    joint's own parts); on a part's edge anti-aliasing blends neighbouring colours, so there the
    colour is only close.
    """
    plan = plan_benchmark(preset_config('tiny'))
    visible = interior = exact = close = 0
    for clip in plan.clips:
        renderer = ClipRenderer(clip, plan.camera, plan.config.fps)
        for t in range(0, clip.n_frames, 5):
            img, labels = renderer.render(t)
            for i, track in enumerate(renderer.tracks):
                if not track.on_screen[t]:
                    continue
                vis = renderer.joint_visibility(labels, i, t)
                kp = track.image[t, :17]
                base = (i + 1) * LABEL_STRIDE
                for joints, key in ((SHOULDERS, 'shirt'), (HIPS, 'trousers')):
                    for j in joints:
                        if vis[j] != VISIBLE:
                            continue
                        x, y = int(round(kp[j, 0])), int(round(kp[j, 1]))
                        expected = np.array(track.person.colours[key])
                        visible += 1
                        close += np.abs(img[y, x].astype(int) - expected).max() <= 40
                        around = labels[y - 1:y + 2, x - 1:x + 2].astype(int) - base
                        own = {PARTS[p] for p in JOINT_PARTS[j]}
                        if around.shape == (3, 3) and set(around.ravel()) <= own:
                            interior += 1
                            exact += tuple(img[y, x]) == tuple(expected)
    assert visible > 200 and interior > 0.5 * visible, (interior, visible)
    assert exact == interior
    assert close / visible > 0.9, (close, visible)
