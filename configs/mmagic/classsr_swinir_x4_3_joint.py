# Phase 3 of 3: everything fine-tuned jointly with the same three losses.
_base_ = './classsr_swinir_x4_2_classifier.py'
model = dict(phase='joint')
load_from = 'work_dirs/classsr_swinir_x4_2_classifier/iter_200000.pth'
work_dir = 'work_dirs/classsr_swinir_x4_3_joint'
