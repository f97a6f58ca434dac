# A few iterations on the tiny set's galaxies with the real-sky source population (tiny_faint): checks the whole
# pipeline on the faint, broad clumps and unlabelled nuclei. Mirrors
# configs/quick_schedules/frcnn_zoobot_faint_quick.yaml.
_base_ = ['../frcnn_zoobot_faint.py']
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=dict(dataset='tiny_faint'))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(dataset='tiny_faint'))
test_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(dataset='tiny_faint', split='val'))
val_evaluator = dict(dataset='tiny_faint')
test_evaluator = dict(dataset='tiny_faint', split='val')
max_iters = 10
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = []  # constant lr: no warm-up, no steps
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=max_iters))
work_dir = 'output/mmdet/quick/frcnn_zoobot_faint'
