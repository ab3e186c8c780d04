# Evaluate on A-847 (ADE20K-full val, 847 classes, 16-bit labels).
# The model is $LOGOSEG_MODEL (default ../logoseg_vitb.py; a path relative to this folder or absolute)
# with its own test pipeline and test_cfg; this file only swaps the dataset (one image per batch: labels
# keep their original sizes) and the metric. Ignore index: the dataset's metainfo.
_base_ = ['{{$LOGOSEG_MODEL:../logoseg_vitb.py}}']
test_dataloader = dict(
    batch_size=1,
    dataset=dict(_delete_=True, type='ADE847Dataset', pipeline=_base_.test_dataloader.dataset.pipeline))
test_evaluator = dict(_delete_=True, type='HallucinationIoUMetric')
