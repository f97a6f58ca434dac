# A few iterations on the tiny 5-band FITS set: checks the float pipeline (FITS reading, normalisation, training,
# validation, test, report). Mirrors configs/quick_schedules/frcnn_zoobot_fits_quick.yaml (tests on the tiny val split).
_base_ = ['../frcnn_zoobot_fits.py']
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=dict(dataset='tiny_fits'))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(dataset='tiny_fits'))
test_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(dataset='tiny_fits', split='val'))
val_evaluator = dict(dataset='tiny_fits')
test_evaluator = dict(dataset='tiny_fits', split='val')
max_iters = 10
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = []  # constant lr: no warm-up, no steps
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=max_iters))
work_dir = 'output/mmdet/quick/frcnn_zoobot_fits'
