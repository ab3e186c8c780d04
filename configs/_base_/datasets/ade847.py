# ADE20K-full validation, 2,000 images, 847 classes, 16-bit labels, ignore 65535.
_base_ = ['./ovss_test.py']
test_dataloader = dict(dataset=dict(type='ADE847Dataset'))
