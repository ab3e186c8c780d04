# COCO-Stuff-171, the training set of every main result (paper sec 3.2), validated on its 5,000 val2017
# images with the benchmarks' test protocol. Total batch 4: 1 image per GPU on 4 GPUs; with G GPUs set
# train_dataloader.batch_size = 4 // G to keep the paper's batch (or scale the learning rate).
_base_ = ['./ovss_test.py']
# CAT-Seg's augmentation: shortest edge resized to 320..1280 (640 x [0.5, 2]), a random crop, a random
# horizontal flip. The crop is ViT-B/16's 384x384; `crop_size` itself belongs to the model base (mmengine
# forbids a key defined by two sibling bases), and a backbone config with another crop replaces the step:
#   train_dataloader = dict(dataset=dict(pipeline=[
#       dict(step, crop_size=crop_size) if step.type == 'RandomCrop' else step for step in _base_.train_pipeline]))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSegAnnotations'),
    dict(type='RandomResize', scale=(2560, 640), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=(384, 384)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='COCOStuff171Dataset', split='train', pipeline=train_pipeline),
)
# val (and test): the benchmarks' test loader on COCO-Stuff val2017
val_dataloader = dict(_base_.test_dataloader,
                      dataset=dict(_base_.test_dataloader.dataset, type='COCOStuff171Dataset'))
test_dataloader = val_dataloader
val_evaluator = dict(type='HallucinationIoUMetric')
