# The main job for MMDetection: Faster R-CNN with a Zoobot-style timm encoder (ResNet-18, GroupNorm) + FPN on the
# embedded simulated Clump Scout set. Mirrors configs/frcnn_zoobot.yaml, bf16 backbone training included
# (BackbonePrecisionHook, precision='auto': bf16 where the machine has bf16 kernels, fp32 elsewhere). Zoobot's
# default ConvNeXt-nano encoder: frcnn_zoobot_convnext.py. To start from a pretrained Zoobot ResNet-18, download it
# once and set model.backbone.init_cfg=dict(type='Pretrained', checkpoint='/path/to/pytorch_model.bin') and
# model.backbone.norm='frozen_bn' (astrodet's loader reads timm, Zoobot and Lightning key layouts).
_base_ = ['./_base_astro_frcnn.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='TimmEncoder',
        arch='resnet18',
        out_indices=(0, 1, 2, 3),  # strides 4, 8, 16, 32 (Detectron2 stage2..stage5)
        frozen_stages=-1,  # FREEZE_AT 0
        norm='gn',  # BatchNorm -> GroupNorm: batch-independent, trains from random weights at batch 4
        init_cfg=None,
    ),
    neck=dict(in_channels=[64, 128, 256, 512]),  # resnet18's stage widths
)
custom_hooks = [
    dict(type='AstroReportHook'),
    dict(type='AstroCheckpointHook'),
    dict(type='BackbonePrecisionHook', precision='auto'),
]
work_dir = 'output/mmdet/frcnn_zoobot'
