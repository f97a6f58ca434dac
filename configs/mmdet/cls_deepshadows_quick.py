# A short CPU run of cls_deepshadows.py on the 8 labelled DES cutouts of shared/data.
_base_ = ['./cls_deepshadows.py']
train_dataloader = dict(batch_size=6, num_workers=0)
val_dataloader = dict(num_workers=0)
test_dataloader = dict(num_workers=0)
val_evaluator = dict(n_bootstrap=200)
test_evaluator = dict(n_bootstrap=200)
train_cfg = dict(max_iters=20, val_interval=20)
default_hooks = dict(logger=dict(interval=5))
