# Evaluate on a dataset of your own: one declared under datasets: in params.yaml and prepared by
# `dvc repro prepare_dataset@<name>` (docs/datasets.md, "Your own data"). The dataset is $LOGOSEG_DATASET,
# its split $LOGOSEG_SPLIT (default: the declaration's eval_split), the model $LOGOSEG_MODEL (default
# ../logoseg_vitb.py), e.g.
#   LOGOSEG_DATASET=standin LOGOSEG_MODEL=../logoseg_smoke.py mim test mmseg configs/eval/dataset.py --checkpoint CKPT
# As the benchmarks' eval configs, it swaps only the dataset and the metric; the class names of the dataset's
# manifest become the vocabulary. An unset variable reads "-" (mmengine needs a default): the dataset then says
# what to set.
_base_ = ['{{$LOGOSEG_MODEL:../logoseg_vitb.py}}']
test_dataloader = dict(
    batch_size=1,
    dataset=dict(_delete_=True, type='DeclaredDataset', name='{{$LOGOSEG_DATASET:-}}', split='{{$LOGOSEG_SPLIT:-}}',
                 pipeline=_base_.test_dataloader.dataset.pipeline))
test_evaluator = dict(_delete_=True, type='HallucinationIoUMetric')
