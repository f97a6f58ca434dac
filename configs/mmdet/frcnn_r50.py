# The baseline every comparison is made against: mmdet's own ResNet-50 FPN on the same data and schedule, trained
# from scratch with GroupNorm (no ImageNet weights can be fetched here). Mirrors configs/frcnn_r50.yaml.
_base_ = ['./_base_astro_frcnn.py']
work_dir = 'output/mmdet/frcnn_r50'
