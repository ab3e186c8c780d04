# LoGoSeg, CLIP ViT-B/16, COCO-Stuff-171, 384x384 crops, 80k iterations, total batch 4 (paper sec 3.2).
_base_ = [
    './_base_/models/logoseg_vitb16.py',
    './_base_/datasets/coco_stuff171.py',
    './_base_/schedules/schedule_80k_adamw.py',
    './_base_/default_runtime.py',
]
