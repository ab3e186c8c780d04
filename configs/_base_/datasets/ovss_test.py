# Test protocol shared by the open-vocabulary benchmarks (CAT-Seg's): each image resized to 640x640; the
# model's test_cfg (slide_global: 384x384 windows, stride 256, plus a global view) scores it and resizes
# the logits back to the label's original size. Benchmark bases set only the dataset type.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(640, 640), keep_ratio=False),
    dict(type='LoadSegAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(pipeline=test_pipeline),
)
# ignore_index comes from the dataset's metainfo (255, or 65535 for the 16-bit benchmarks)
test_evaluator = dict(type='HallucinationIoUMetric')
