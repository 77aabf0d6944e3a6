# Evaluate a checkpoint on the STG-NF reference fixture (six ShanghaiTech test clips):
#   python tools/test.py configs/stgnf/stgnf_sht_fixture.py \
#       ../shared/fixtures/stgnf_reference/ShanghaiTech_85_9.tar --work-dir W
# reproduces the reference AUC (0.7639816...).
_base_ = './stgnf_sht.py'
fixture_root = '{{ fileDirname }}/../../../shared/fixtures/stgnf_reference'
test_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=fixture_root, pose_dir='pose/test'))
test_evaluator = dict(gt_dir=fixture_root + '/gt/test_frame_mask')
