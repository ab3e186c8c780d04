# Table 5: the COCO-Stuff training recipe on A-150's 20,210 training images, validated on A-150 val.
_base_ = ['./coco_stuff171.py']
train_dataloader = dict(dataset=dict(type='ADE150Dataset'))
val_dataloader = dict(dataset=dict(type='ADE150Dataset'))
test_dataloader = val_dataloader
