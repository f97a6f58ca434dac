# The main job (frcnn_zoobot.py) trained for real sky, the twin of configs/frcnn_zoobot_realsky.yaml. Why: the
# detector trained on the simulator's lossless, smooth PNGs finds few real clumps (Stripe 82 completeness 0.08 at
# IoU 0.5, docs/real_sky.md). Real SDSS cutouts are 8-bit JPEGs (quality 75, 4:2:0 chroma) and, at the PSF-matched
# scale, often coarse pixels enlarged 2-9x. RealSkyDegrade gives half the training images a JPEG round trip at
# quality 60-95 and half pixels 1-4x coarser (area average, bilinear back), independently, after the flips and
# quarter turns as on the Detectron2 side; the simulator's dataset is unchanged.
_base_ = ['./frcnn_zoobot.py']
real_sky = dict(
    type='RealSkyDegrade',
    jpeg_prob=0.5,
    jpeg_quality=(60, 95),
    blur_prob=0.5,
    blur_factor=(1.0, 4.0),
    channel_order='bgr',  # LoadImageFromFile's default; the model's data_preprocessor flips to RGB afterwards
)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale={{_base_.image_scale}}, keep_ratio=True),
    dict(type='RandomFlip', prob=[0.25, 0.25, 0.25], direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='RandomRot90'),
    real_sky,
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
work_dir = 'output/mmdet/frcnn_zoobot_realsky'
