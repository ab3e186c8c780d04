# PAS-20b: PASCAL VOC 2012 validation, 1,449 images, prompted with the 59 names of voc20b; predictions past
# the 20 VOC classes count as background (index 20) and 21 classes are scored, ignore 255.
_base_ = ['./ovss_test.py']
test_dataloader = dict(dataset=dict(type='PascalVOC20bDataset'))
