"""Self-supervised pretraining of astrodet's encoders on unlabelled survey images (``tools/pretrain.py``).

Framework-free, like the rest of the core: ``inputs`` finds and reads the images (pictures and FITS bands, as the
finetuning configs normalise them) and accounts for the rejected ones, ``augment`` makes the sky-respecting views,
``methods`` builds the encoders and lightly's objectives, ``train`` runs the loop and writes a checkpoint that
``MODEL.ZOOBOT.CHECKPOINT`` / ``MODEL.DEEPSHADOWS.CHECKPOINT`` (Detectron2) and the backbones' ``checkpoint=`` /
``init_cfg`` (MMDetection) load. docs/pretraining.md describes the command and its choices.
"""
