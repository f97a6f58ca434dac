# astrodet's Faster R-CNN + FPN for compact sources (giant clumps in SDSS cutouts, Popp et al. 2024), for MMDetection.
# The same settings as the Detectron2 side (configs/Base-AstroRCNN-FPN.yaml + frcnn_r50.yaml), written in mmdet's
# terms; backbone configs inherit this and replace `model.backbone` / `model.neck.in_channels`.
# As it stands this is the baseline: mmdet's ResNet-50 from scratch with GroupNorm (no ImageNet weights can be fetched
# here; FrozenBN/BN-eval needs pretraining), so nothing in it points at a URL.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['astrodet.mmdet'], allow_failed_imports=False)

# The embedded default dataset (simulated Clump Scout galaxies) by its catalogue name: AstroCocoDataset and
# AstroDetectionMetric build it on first use into $ASTRODET_CACHE, so mmdet's own tools/train.py and tools/test.py
# run this config unchanged. For your own data, give each dataset and evaluator an ann_file (it wins over the name).
data_root = ''  # (mmdet's COCO base sets data/coco/; AstroCocoDataset reads each COCO file's own folder)
classes = ('clump', 'odd_clump')
metainfo = dict(classes=classes)
num_classes = len(classes)

gn = dict(type='GN', num_groups=32, requires_grad=True)
model = dict(
    # PNG cutouts (Lupton RGB, 0-255): statistics of the simulated default set (Detectron2 PIXEL_MEAN/STD, RGB).
    data_preprocessor=dict(mean=[36.7, 32.7, 29.4], std=[38.7, 33.4, 28.8], bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(
        frozen_stages=-1,  # Detectron2 FREEZE_AT 0: train everything
        norm_cfg=gn,
        norm_eval=False,
        style='pytorch',  # STRIDE_IN_1X1 False
        init_cfg=None,
    ),
    neck=dict(out_channels=128, norm_cfg=gn),  # FPN OUT_CHANNELS 128, NORM GN; p6 by max-pool as Detectron2
    rpn_head=dict(
        in_channels=128,
        feat_channels=128,
        # Clumps are 5-40 px across in the 200x200 crop (median 16.6): anchors 8, 16, 32, 64, 128 px (size = stride *
        # scale), square like Clump Scout boxes.
        anchor_generator=dict(scales=[2], ratios=[1.0], strides=[4, 8, 16, 32, 64]),
    ),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=128, featmap_strides=[4, 8, 16, 32]),
        # FC_DIM 512; num_classes excludes background in mmdet, as NUM_CLASSES does in Detectron2.
        bbox_head=dict(in_channels=128, fc_out_channels=512, num_classes=num_classes),
    ),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=128)),  # RPN.BATCH_SIZE_PER_IMAGE
        rpn_proposal=dict(nms_pre=1000, max_per_img=500),  # PRE/POST_NMS_TOPK_TRAIN
        rcnn=dict(sampler=dict(num=128)),  # ROI_HEADS.BATCH_SIZE_PER_IMAGE
    ),
    test_cfg=dict(
        rpn=dict(nms_pre=500, max_per_img=300),  # PRE/POST_NMS_TOPK_TEST
        # Low-score detections stay for the curves (completeness/purity use 0.3); NMS 0.2 as Popp et al.; the cap
        # equals the evaluator's max_detections.
        rcnn=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.2), max_per_img=100),
    ),
)

# Popp et al.'s frame: the central 200x200 crop at native resolution (the resize is a no-op for it; other sizes are
# scaled as Detectron2's ResizeShortestEdge(200, max 200) would).
image_scale = (200, 200)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    # The sky has no up or left: mmdet's flips (uniform over none/h/v/both, as two independent 0.5 flips) then exact
    # quarter turns = all eight symmetries of the square, as Detectron2's ASTRODET.AUG.
    dict(type='RandomFlip', prob=[0.25, 0.25, 0.25], direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='RandomRot90'),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]


def _dataset(split, pipeline, **kwargs):
    # data_root and the image prefix come from the COCO file (astrodet's file_name is relative to the JSON's folder).
    return dict(type='AstroCocoDataset', dataset='default', split=split, metainfo=metainfo, pipeline=pipeline, **kwargs)


train_dataloader = dict(
    batch_size=4,  # IMS_PER_BATCH
    num_workers=1,
    persistent_workers=True,
    # Clump-free galaxies are the negatives purity depends on: keep them (FILTER_EMPTY_ANNOTATIONS False).
    dataset=dict(_delete_=True, **_dataset('train', train_pipeline, filter_cfg=dict(filter_empty_gt=False))),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(_delete_=True, **_dataset('val', test_pipeline, test_mode=True)),
)
test_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(_delete_=True, **_dataset('test', test_pipeline, test_mode=True)),
)
# COCO AP with astrodet's area ranges at maxDets [1, 10, 100] + completeness/purity (IoU >= 0.5, score >= 0.3).
# AstroReportHook writes the test report (report.json/.md, PNGs) into the work dir, under any tool;
# AstroCheckpointHook refuses a load_from/resume checkpoint that fits none of the model's weights and records the
# image recipe in every checkpoint saved.
val_evaluator = dict(_delete_=True, type='AstroDetectionMetric', dataset='default', split='val', max_detections=100)
test_evaluator = dict(_delete_=True, type='AstroDetectionMetric', dataset='default', split='test', max_detections=100)
custom_hooks = [dict(type='AstroReportHook'), dict(type='AstroCheckpointHook')]

# Detectron2's schedule: 1500 iterations, linear warm-up over 100 (factor 0.001), lr x0.1 at 1200.
max_iters = 1500
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=500)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[1200], gamma=0.1),
]
# AdamW lr 2e-4, weight decay 0.05 except on norm layers (Detectron2 WEIGHT_DECAY_NORM 0), gradients clipped
# element-wise at 5 (CLIP_GRADIENTS value 5.0). Sized for batch 4; auto_scale_lr rescales for other batch sizes.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0),
    clip_grad=dict(type='value', clip_value=5.0),
)
auto_scale_lr = dict(enable=False, base_batch_size=4)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1000, save_last=True, max_keep_ckpts=2),
)
log_processor = dict(by_epoch=False)
randomness = dict(seed=2024)  # SEED
