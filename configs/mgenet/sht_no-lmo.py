# Table 2, group 2: without L_mo (only level 2 trains; the RGB encoder stays at its
# initialisation). Paper: 78.3 (SHT).
_base_ = './sht.py'
model = dict(train_cfg=dict(levels=('appearance', )))
