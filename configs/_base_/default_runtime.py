# Runtime shared by every LoGoSeg config: logging to MLflow's sqlite store, the vocabulary hook.
custom_imports = dict(imports=['logoseg'], allow_failed_imports=False)
default_scope = 'mmseg'
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
# MLflow's file store is in maintenance mode and refuses new runs: default to a sqlite store at the repo
# root; the MLFLOW_TRACKING_URI environment variable overrides it (a server URL or another sqlite file)
mlflow_tracking_uri = '{{$MLFLOW_TRACKING_URI:sqlite:///{{ fileDirname }}/../../mlflow.db}}'
vis_backends = [
    dict(type='LocalVisBackend'),
    dict(type='MLflowVisBackend', exp_name='logoseg', tracking_uri=mlflow_tracking_uri),
]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
custom_hooks = [dict(type='VocabularyHook'), dict(type='EncoderLrHook')]
