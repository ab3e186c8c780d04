# PC-59: PASCAL-Context validation, 59 classes, ignore 255.
_base_ = ['./ovss_test.py']
test_dataloader = dict(dataset=dict(type='PascalContext59Dataset'))
