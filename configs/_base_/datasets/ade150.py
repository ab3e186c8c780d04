# ADE20K validation, 2,000 images, 150 classes, ignore 255.
_base_ = ['./ovss_test.py']
test_dataloader = dict(dataset=dict(type='ADE150Dataset'))
