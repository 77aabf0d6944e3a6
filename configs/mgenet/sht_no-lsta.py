# Table 2, group 1: without LSTA (a plain MLP head H_B). Paper: 85.1 (SHT).
_base_ = './sht.py'
model = dict(motion_head=dict(use_lsta=False))
