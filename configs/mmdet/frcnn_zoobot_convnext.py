# Faster R-CNN with Zoobot's default encoder architecture, ConvNeXt-nano (timm), + FPN on the embedded simulated
# Clump Scout set: the pretrained-weights route (the main job, frcnn_zoobot.py, uses ResNet-18).
# Mirrors configs/frcnn_zoobot_convnext.yaml. To start from Zoobot's pretrained encoder, download it once and set
#   model.backbone.init_cfg=dict(type='Pretrained', checkpoint='/path/to/pytorch_model.bin')
# in a config, or --cfg-options model.backbone.checkpoint=/path/to/pytorch_model.bin on the command line
# (astrodet's loader reads timm, Zoobot and Lightning key layouts).
_base_ = ['./_base_astro_frcnn.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='TimmEncoder',
        arch='convnext_nano',
        out_indices=(0, 1, 2, 3),  # strides 4, 8, 16, 32 (Detectron2 stage2..stage5)
        frozen_stages=-1,  # FREEZE_AT 0
        norm='model',  # ConvNeXt's LayerNorm: batch-independent
        init_cfg=None,
    ),
    neck=dict(in_channels=[80, 160, 320, 640]),  # convnext_nano's stage widths
)
work_dir = 'output/mmdet/frcnn_zoobot_convnext'
