# PC-459: PASCAL-Context validation, 459 classes, 16-bit labels, ignore 65535.
_base_ = ['./ovss_test.py']
test_dataloader = dict(dataset=dict(type='PascalContext459Dataset'))
