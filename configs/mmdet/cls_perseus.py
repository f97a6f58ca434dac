# Perseus cluster early-type dwarf candidates, the MMDetection twin of configs/cls_perseus.yaml: a timm ResNet50
# (Pruitt & Romanowsky's network) + pooled linear head, BCE, AdamW 1e-4, batch 20, 128 px, flips and quarter turns.
# Data: the shared/data PCC sample through the recipe (astrodet/data/schemas/perseus_binary.yaml), converted into
# $ASTRODET_CACHE on first use; dataset_name='perseus_all' drops the magnitude cut and balances the classes.
_base_ = ['./cls_base.py']
input_size = 128
dataset_name = 'perseus'
model = dict(
    type='AstroImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='TimmEncoder', arch='resnet50', out_indices=(3,)),
    head=dict(kind='linear'),
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
    batch_size=20,
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
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4))
train_cfg = dict(max_iters=2000, val_interval=500)
