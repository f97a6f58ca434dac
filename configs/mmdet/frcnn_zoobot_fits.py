# Faster R-CNN with a Zoobot-style ConvNeXt-nano encoder (timm) + FPN on the 5-band float FITS form of the embedded
# simulated Clump Scout set (default_fits: u g r i z cubes in nanomaggy/arcsec2, boxes in the FITS array frame).
# Mirrors configs/frcnn_zoobot_fits.yaml. LoadFitsImage reads and normalises each record through
# astrodet.data.normalise, the function Detectron2's FitsDatasetMapper and `astrodet predict` call: per-band asinh of
# the sky noise (sky noise ~1, bright sources compressed above 5 sigma). docs/fits.md explains the choices.
# Built on the ConvNeXt-nano encoder (frcnn_zoobot_convnext.py), as configs/frcnn_zoobot_fits.yaml is.
_base_ = ['./frcnn_zoobot_convnext.py']

bands = ['u', 'g', 'r', 'i', 'z']
# Stored in every checkpoint (AstroCheckpointHook), so `astrodet predict` normalises FITS inputs the same way.
image_recipe = dict(
    kind='float', bands=bands, stretch='asinh', params=dict(softening=5.0, sigma_clip=3.0), channels=len(bands)
)
model = dict(
    # The recipe already centres and scales each band (Detectron2: PIXEL_MEAN 0, PIXEL_STD 1 per band); mmengine's
    # preprocessor takes 1 or 3 values, so it only pads here. No BGR: bands stay in the recipe's order.
    data_preprocessor=dict(mean=None, std=None, bgr_to_rgb=False),
    backbone=dict(in_channels=len(bands)),  # the encoder's first convolution takes five bands
)

image_scale = (200, 200)
train_pipeline = [
    dict(type='LoadFitsImage', recipe=image_recipe),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=[0.25, 0.25, 0.25], direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='RandomRot90'),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadFitsImage', recipe=image_recipe),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(dataset=dict(dataset='default_fits', pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(dataset='default_fits', pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(dataset='default_fits', pipeline=test_pipeline))
val_evaluator = dict(dataset='default_fits')
test_evaluator = dict(dataset='default_fits')
work_dir = 'output/mmdet/frcnn_zoobot_fits'
