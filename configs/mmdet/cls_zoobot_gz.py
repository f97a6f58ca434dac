# Galaxy Zoo morphology with a Zoobot-style timm encoder, the MMDetection twin of configs/cls_zoobot_gz.yaml:
# ConvNeXt-nano, pooled linear head, softmax CE, AdamW 1e-4 (Zoobot's finetuning), Kim's 180 px centre crop resized
# to 224. Data: the shared/data GZ2 sample (spirals vs non-spirals; the converter already wrote the 180 px crops).
# For Kim's 6 classes use your converted Kaggle table: dataset=dict(ann_file='gz2_train.json'), num_classes=6; for
# vote regression loss='soft_ce' (fractions) or 'dirichlet' (counts). Zoobot weights: backbone checkpoint='FILE'.
_base_ = ['./cls_base.py']
input_size = 224
dataset_name = 'gz2'
model = dict(
    type='AstroImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='TimmEncoder', arch='convnext_nano', out_indices=(3,)),
    head=dict(kind='linear', dropout=0.2),
    loss='ce',
    num_classes=2,
    input_size=input_size,
)
train_pipeline = [
    dict(type='LoadCutout', channels=3),
    dict(type='CutoutResize', size=input_size, crop=180),
    dict(type='CutoutFlipRot'),
    dict(type='PackClsInputs'),
]
test_pipeline = [dict(type='LoadCutout', channels=3), dict(type='CutoutResize', size=input_size, crop=180),
                 dict(type='PackClsInputs')]
train_dataloader = dict(
    batch_size=32,
    num_workers=1,
    sampler=dict(type='InfiniteSampler', shuffle=True),  # mmengine pauses 2 s at each restart of a finite one
    dataset=dict(type='AstroClassificationDataset', dataset=dataset_name, split='train', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=32,
    num_workers=1,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='AstroClassificationDataset', dataset=dataset_name, split='val', pipeline=test_pipeline),
)
test_dataloader = dict(
    batch_size=32,
    num_workers=1,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='AstroClassificationDataset', dataset=dataset_name, split='test', pipeline=test_pipeline),
)
val_evaluator = dict(type='AstroClassificationMetric', seed=2024)
test_evaluator = dict(type='AstroClassificationMetric', seed=2024)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05))
train_cfg = dict(max_iters=880, val_interval=440)
