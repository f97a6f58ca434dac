# The main job (frcnn_zoobot.py) trained on the real-sky source population, the twin of configs/frcnn_zoobot_faint.yaml:
# the named dataset "faint", the default's 3,000 simulated galaxies with fainter and broader labelled clumps,
# unlabelled compact nuclei and brighter discs (astrodet.data.simulation.population; docs/real_sky.md, "A simulator
# for real sky").
_base_ = ['./frcnn_zoobot.py']
train_dataloader = dict(dataset=dict(dataset='faint'))
val_dataloader = dict(dataset=dict(dataset='faint'))
test_dataloader = dict(dataset=dict(dataset='faint'))
val_evaluator = dict(dataset='faint')
test_evaluator = dict(dataset='faint')
work_dir = 'output/mmdet/frcnn_zoobot_faint'
