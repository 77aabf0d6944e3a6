# Table 2, group 2: without L_app (only level 1 trains; the mask encoder stays at its
# initialisation). Paper: 86.1 (SHT).
_base_ = './sht.py'
model = dict(train_cfg=dict(levels=('motion', )))
