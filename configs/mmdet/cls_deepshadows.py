# DeepShadows (Tanoglidis et al. 2021), the MMDetection twin of configs/cls_deepshadows.yaml: the paper's CNN
# (DeepShadowsTrunk + Dense 1024 + Dense 1, 4,220,161 parameters), BCE, Adadelta lr 0.1 (Keras rho 0.95, eps 1e-7),
# batch 64, 64x64x3 in [0, 1]. The Keras L2 penalties (0.13 conv, 0.12 dense) become weight decay 2 * c on those
# kernels (see optim_wrapper). Data: the 8 labelled DES cutouts of shared/data (train 6 / test 2).
_base_ = ['./cls_base.py']
input_size = 64
dataset_name = 'deepshadows'
model = dict(
    type='AstroImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='DeepShadowsTrunk', out_indices=(2,), dropout=0.4, norm='bn'),
    head=dict(kind='dense', hidden=1024),
    loss='bce',
    num_classes=2,
    input_size=input_size,
)
train_pipeline = [
    dict(type='LoadCutout', channels=3),
    dict(type='CutoutResize', size=input_size),
    dict(type='CutoutFlipRot'),
    dict(type='PackClsInputs'),
]
test_pipeline = [dict(type='LoadCutout', channels=3), dict(type='CutoutResize', size=input_size),
                 dict(type='PackClsInputs')]
train_dataloader = dict(
    batch_size=64,
    num_workers=1,
    sampler=dict(type='InfiniteSampler', shuffle=True),  # mmengine pauses 2 s at each restart of a finite one
    dataset=dict(type='AstroClassificationDataset', dataset=dataset_name, split='train', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=64,
    num_workers=1,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='AstroClassificationDataset', dataset=dataset_name, split='test', pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='AstroClassificationMetric', seed=2024)
test_evaluator = val_evaluator
# Keras l2(c) adds c * sum(w^2) to the loss, i.e. weight decay 2c: 0.26 on the conv kernels (the base rate),
# 0.24 on the hidden dense kernel; biases, BatchNorm and the output layer are not regularised.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adadelta', lr=0.1, rho=0.95, eps=1e-7, weight_decay=2 * 0.13),
    paramwise_cfg=dict(
        bias_decay_mult=0.0,
        norm_decay_mult=0.0,
        custom_keys={'head.hidden': dict(decay_mult=0.12 / 0.13), 'head.out': dict(decay_mult=0.0)},
    ),
)
train_cfg = dict(max_iters=46875, val_interval=5000)  # 100 epochs of the paper's 30,000 DES training images
