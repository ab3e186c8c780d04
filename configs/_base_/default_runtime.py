# Runtime shared by every LoGoSeg config: logging to MLflow's sqlite store, the vocabulary hook.
custom_imports = dict(imports=['logoseg'], allow_failed_imports=False)
default_scope = 'mmseg'
# mmengine's Runner, with the model options checked before it logs the config (logoseg.engine.runner)
runner_type = 'LoGoSegRunner'
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
# MLflow: the sqlite store mlflow.db at the repository root unless MLFLOW_TRACKING_URI names another store or a
# server; runs get readable names, flat params, test metrics and an honest status (logoseg.experiments.tracking)
vis_backends = [
    dict(type='LocalVisBackend'),
    dict(type='TrackedMLflowVisBackend', exp_name='logoseg'),
]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
# train/ and val/ prefixes keep validation metrics apart from training scalars in MLflow
log_processor = dict(by_epoch=False, log_with_hierarchy=True)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
custom_hooks = [dict(type='VocabularyHook'), dict(type='TestMetricsHook'), dict(type='EncoderLrHook'),
                dict(type='RngStateHook')]  # a resumed training continues as the uninterrupted one
