"""Dataset preparation: one script per benchmark turns a raw download under ``data/`` into label maps under
``prepared/<name>/`` (run through the ``prepare_*`` stages of ``dvc.yaml``).

    python -m logoseg.tools.prepare.<name> --raw <raw dir> --out <out dir> [--workers N]

=============  ==================================  ==========================================
module         raw input                           output
=============  ==================================  ==========================================
coco_stuff     data/cocostuff                      prepared/coco_stuff171/{train2017,val2017}
ade150         data/ADEChallengeData2016           prepared/ade150/{training,validation}
ade847         data/ADE20K_2021_17_01              prepared/ade847/{images,annotations}
pc59           data/VOCdevkit/VOC2010              prepared/pc59/{train,val}
pc459          data/VOCdevkit/VOC2010              prepared/pc459/val
voc20, voc20b  data/VOCdevkit/VOC2012              prepared/voc20/val, prepared/voc20b/val
=============  ==================================  ==========================================

The label protocols (mappings, ignore values, formats) are in each module's docstring; the shared machinery
(CLI, atomic and idempotent output, process pool) in :mod:`.common`.

Users' own datasets, declared under ``datasets:`` of params.yaml, are checked and prepared by :mod:`.declared`
(``python -m logoseg.tools.prepare.declared <name>`` -> ``prepared/datasets/<name>``); :mod:`.standin_dataset`
generates one in that layout (``datasets/standin``). :mod:`.smoke` writes the CPU smoke profile's stand-ins.
"""
DATASETS = ('coco_stuff', 'ade150', 'ade847', 'pc59', 'pc459', 'voc20', 'voc20b')

__all__ = ['DATASETS']
