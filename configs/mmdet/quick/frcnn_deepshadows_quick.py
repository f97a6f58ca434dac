# A few iterations on the tiny default set: checks the whole pipeline (data, training, validation, test, report) in
# under 2 minutes on a CPU. Mirrors configs/quick_schedules/frcnn_deepshadows_quick.yaml, which also tests on the tiny
# val split.
_base_ = ['../frcnn_deepshadows.py']
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=dict(dataset='tiny'))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(dataset='tiny'))
test_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(dataset='tiny', split='val'))
val_evaluator = dict(dataset='tiny')
test_evaluator = dict(dataset='tiny', split='val')
max_iters = 10
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = []  # constant lr: no warm-up, no steps
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=max_iters))
work_dir = 'output/mmdet/quick/frcnn_deepshadows'
