# A short CPU run of cls_perseus.py on the shared/data Perseus sample (64 px, 20 iterations): a pipeline check.
_base_ = ['./cls_perseus.py']
input_size = 64
model = dict(input_size=input_size)
train_pipeline = [
    dict(type='LoadCutout', channels=3),
    dict(type='CutoutResize', size=input_size),
    dict(type='CutoutFlipRot'),
    dict(type='PackClsInputs'),
]
test_pipeline = [dict(type='LoadCutout', channels=3), dict(type='CutoutResize', size=input_size),
                 dict(type='PackClsInputs')]
train_dataloader = dict(batch_size=8, num_workers=0, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(num_workers=0, dataset=dict(pipeline=test_pipeline))
val_evaluator = dict(n_bootstrap=200)
test_evaluator = dict(n_bootstrap=200)
train_cfg = dict(max_iters=20, val_interval=20)
default_hooks = dict(logger=dict(interval=5))
