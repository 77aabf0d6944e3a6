# STG-NF (Hirschorn & Avidan, ICCV 2023): the skeleton flow that guides MGENet's first level.
# Window anomaly score = nll in bits per dimension (the official score is -nll).
model = dict(
    type='STGNFRecognizer',
    backbone=dict(
        type='STGNF',
        in_channels=2,
        num_joints=18,
        seg_len=24,
        num_steps=8,
        prior_mean=3.0,
        permutation='reverse',
        strategy='uniform',
        max_hop=8,
        # The folded evaluation pass: about twice as fast as 'exact' (the step-by-step float32
        # arithmetic to the bit) and closer to float64; training is step by step either way.
        inference='fast'),
    # Stacks the windows (ActionDataPreprocessor's numbers) without mmengine's per-window walk.
    data_preprocessor=dict(type='PoseWindowDataPreprocessor'))
