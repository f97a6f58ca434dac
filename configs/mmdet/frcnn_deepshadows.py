# Faster R-CNN on the DeepShadows CNN trunk (Tanoglidis et al. 2021) + FPN: strides 2, 4, 8 (+16 by max-pool), for
# compact, low-surface-brightness sources. Mirrors configs/frcnn_deepshadows.yaml.
_base_ = ['./_base_astro_frcnn.py']
model = dict(
    # Detectron2 pads an FPN's input to its coarsest input stride (8 here: 200 px stay 200); the base's 32 would pad
    # to 224, and GroupNorm's statistics would include the padding, so the same weights would detect differently.
    data_preprocessor=dict(pad_size_divisor=8),
    backbone=dict(
        _delete_=True,
        type='DeepShadowsTrunk',
        out_indices=(0, 1, 2),  # strides 2, 4, 8 (Detectron2 stage1..stage3)
        channels=(16, 32, 64),
        dropout=0.0,  # the classifier's 0.4 dropout hurts box regression
        norm='gn',  # batch-independent: detection trains at 2-4 images per step
        init_cfg=None,
    ),
    neck=dict(in_channels=[16, 32, 64], num_outs=4),  # p1, p2, p3 + max-pooled p4
    # Anchors 8, 16, 32, 64 px at strides 2, 4, 8, 16.
    rpn_head=dict(anchor_generator=dict(scales=[4], strides=[2, 4, 8, 16])),
    roi_head=dict(
        # RoIs pooled from p1..p3. finest_scale 28 reproduces Detectron2's level rule (canonical 224 px at p4,
        # clamped to the levels present): a box of side s goes to level floor(log2(s / 14)), counted from p1.
        bbox_roi_extractor=dict(featmap_strides=[2, 4, 8], finest_scale=28),
    ),
)
# lr 5e-4, weight decay 1e-4 (as the Detectron2 config).
optim_wrapper = dict(optimizer=dict(lr=5e-4, weight_decay=1e-4))
work_dir = 'output/mmdet/frcnn_deepshadows'
