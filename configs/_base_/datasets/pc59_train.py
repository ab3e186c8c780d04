# Table 5: the COCO-Stuff training recipe on PC-59's training images, validated on PC-59 val.
_base_ = ['./coco_stuff171.py']
train_dataloader = dict(dataset=dict(type='PascalContext59Dataset'))
val_dataloader = dict(dataset=dict(type='PascalContext59Dataset'))
test_dataloader = val_dataloader
