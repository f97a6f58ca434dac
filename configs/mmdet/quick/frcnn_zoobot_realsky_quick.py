# A few iterations of the real-sky training (RealSkyDegrade: JPEG and coarse-pixel augmentations) on the tiny default
# set: checks the whole pipeline with the degradations on. Mirrors
# configs/quick_schedules/frcnn_zoobot_realsky_quick.yaml.
_base_ = ['../frcnn_zoobot_realsky.py']
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=dict(dataset='tiny'))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(dataset='tiny'))
test_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(dataset='tiny', split='val'))
val_evaluator = dict(dataset='tiny')
test_evaluator = dict(dataset='tiny', split='val')
max_iters = 10
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = []  # constant lr: no warm-up, no steps
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=max_iters))
work_dir = 'output/mmdet/quick/frcnn_zoobot_realsky'
