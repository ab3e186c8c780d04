# PAS-20: PASCAL VOC 2012 validation, 1,449 images, 20 classes, background ignored.
_base_ = ['./ovss_test.py']
test_dataloader = dict(dataset=dict(type='PascalVOC20Dataset'))
