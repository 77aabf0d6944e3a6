# ShanghaiTech-HR: the human-related subset leaves out six test clips whose anomalies are not
# people (vehicles and the like).
_base_ = './stgnf_sht.py'
hr_excluded = ['01_0130', '01_0135', '01_0136', '06_0144', '06_0145', '12_0152']
val_dataloader = dict(dataset=dict(exclude_clips=hr_excluded))
test_dataloader = val_dataloader
val_evaluator = dict(exclude_clips=hr_excluded)
test_evaluator = val_evaluator
