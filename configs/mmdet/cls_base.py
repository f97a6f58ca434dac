# Shared runtime of astrodet's MMDetection classification configs (cls_*.py): mmengine's iteration loop, logging
# and checkpoints; the model, data, transforms and metric come from astrodet.mmdet (docs/classification.md).
# Train with tools/train_mmdet.py CONFIG (trains, then tests), mmdet's tools/train.py or Runner.from_cfg(cfg).
_base_ = ['mmdet::_base_/default_runtime.py']
custom_imports = dict(imports=['astrodet.mmdet'], allow_failed_imports=False)

train_cfg = dict(type='IterBasedTrainLoop', max_iters=1000, val_interval=1000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = []
default_hooks = dict(  # mmdet's runtime hooks without its box-drawing visualisation hook (a classifier has no boxes)
    _delete_=True,
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1000, by_epoch=False),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
log_processor = dict(type='LogProcessor', window_size=10, by_epoch=False)
randomness = dict(seed=2024)
# AstroReportHook: the test report (report.json/.md, PNGs) goes into the work dir; AstroCheckpointHook: a checkpoint
# that fits none of the model's weights is refused, and saved checkpoints record the image recipe.
custom_hooks = [dict(type='AstroReportHook'), dict(type='AstroCheckpointHook')]
# 8-bit cutouts scaled to [0, 1], as the Detectron2 configs (PIXEL_MEAN 0, PIXEL_STD 255).
data_preprocessor = dict(type='ImgDataPreprocessor', mean=[0.0, 0.0, 0.0], std=[255.0, 255.0, 255.0])
