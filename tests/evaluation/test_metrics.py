"""HallucinationIoUMetric against figures computed by hand, PAS-20b scoring, distributed collection."""
import multiprocessing
import socket

import logoseg  # noqa: F401  (compat fixes, registrations)
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.registry import METRICS
from mmseg.structures import SegDataSample

from logoseg.evaluation import HallucinationIoUMetric, hallucinated_classes, merge_background
from logoseg.utils.errors import LoGoSegUserError

I = 255  # noqa: E741  (ignore value, short for the hand-written maps)

# Image 1: GT classes 0 and 1; the prediction adds class 2 on one valid pixel (and one ignored pixel).
GT1 = [[0, 0, 1, 1],
       [0, I, 1, 1]]
PRED1 = [[0, 1, 1, 1],
         [2, 2, 1, 0]]
# Image 2: only class 2, predicted exactly; the ignored pixel's class-0 prediction must not count.
GT2 = [[2, 2, 2],
       [2, 2, I]]
PRED2 = [[2, 2, 2],
         [2, 2, 0]]
# By hand, over valid pixels (GT, prediction) of both images:
#   class 0: GT 3, predicted 2, both 1 -> IoU 1 / (3 + 2 - 1) = 1/4, Acc 1/3
#   class 1: GT 4, predicted 4, both 3 -> IoU 3 / 5,               Acc 3/4
#   class 2: GT 5, predicted 6, both 5 -> IoU 5 / 6,               Acc 5/5
# aAcc = (1 + 3 + 5) / 12. Hallucinations: image 1 predicts class 2 on 1/7 of its valid pixels and has
# no class-2 pixel -> 1 class; image 2 none. Rate 1/2, mean count 1/2.
EXPECTED = dict(mIoU=(1 / 4 + 3 / 5 + 5 / 6) / 3, mAcc=(1 / 3 + 3 / 4 + 1) / 3, aAcc=9 / 12)


def sample(gt, pred) -> SegDataSample:
    data = SegDataSample()
    data.gt_sem_seg = PixelData(data=torch.tensor(gt)[None])
    data.pred_sem_seg = PixelData(data=torch.tensor(pred)[None])
    return data


def evaluate(metric, pairs, classes=('a', 'b', 'c'), **meta) -> dict:
    metric.dataset_meta = dict(classes=classes, **meta)
    for gt, pred in pairs:
        metric.process({}, [sample(gt, pred).to_dict()])
    return metric.evaluate(len(pairs))


def test_hand_made_case():
    metrics = evaluate(HallucinationIoUMetric(), [(GT1, PRED1), (GT2, PRED2)])
    for key, value in EXPECTED.items():
        assert metrics[key] == pytest.approx(round(100 * value, 2))
    assert metrics['hallucination_rate'] == 0.5
    assert metrics['hallucinated_classes'] == 0.5


def test_same_iou_figures_as_mmseg():
    pairs = [(GT1, PRED1), (GT2, PRED2)]
    ours = evaluate(METRICS.build(dict(type='HallucinationIoUMetric')), pairs)
    stock = evaluate(METRICS.build(dict(type='IoUMetric')), pairs)
    assert {k: ours[k] for k in stock} == stock


def test_min_pixel_fraction_is_strict():
    # 1,000 valid pixels of class 0: class 1 on 1 pixel (= 0.001, not more), class 2 on 2 pixels (> 0.001)
    area_label = torch.tensor([1000., 0., 0.])
    area_pred = torch.tensor([997., 1., 2.])
    assert hallucinated_classes(area_pred, area_label, 0.001).tolist() == [False, False, True]
    assert hallucinated_classes(area_pred, area_label, 0.0).tolist() == [False, True, True]
    gt = np.zeros((20, 50), dtype=np.int64)
    pred = gt.copy()
    pred[0, 0], pred[0, 1:3] = 1, 2
    metrics = evaluate(HallucinationIoUMetric(min_pixel_fraction=0.002), [(gt, pred)])
    assert metrics['hallucination_rate'] == 0.0  # 2/1000 is not more than 0.002
    metrics = evaluate(HallucinationIoUMetric(), [(gt, pred)])
    assert metrics['hallucinated_classes'] == 1.0


def test_ignore_index_from_dataset_meta():
    # a 16-bit benchmark: 65535 is ignored; the pixel predicted as class 1 there is not a hallucination
    gt = np.array([[0, 0, 65535]])
    pred = np.array([[0, 0, 1]])
    metrics = evaluate(HallucinationIoUMetric(), [(gt, pred)], classes=('a', 'b'), ignore_index=65535)
    assert metrics['mIoU'] == 100.0 and metrics['hallucination_rate'] == 0.0
    with pytest.raises(LoGoSegUserError, match='contradicts'):
        evaluate(HallucinationIoUMetric(ignore_index=255), [(gt, pred)], classes=('a', 'b'), ignore_index=65535)


def test_unmerged_prompt_predictions_are_an_error():
    with pytest.raises(LoGoSegUserError, match='prediction holds class 3 but the dataset scores 3'):
        evaluate(HallucinationIoUMetric(), [(GT2, [[3, 2, 2], [2, 2, 2]])])


# PAS-20b: GT in the 21 scored classes (0..19 VOC, 20 background); predictions in the 59-name prompt space.
BG = 20
GT_B = [[0, 0, BG, BG, I],
        [14, 14, BG, BG, BG]]
PRED_B = [[0, 25, 20, 40, 14],   # 25, 40: PC-59-only prompts ('building', ...) -> background
          [14, 0, 58, 20, 14]]
# confusion matrix after merging, rows GT, columns prediction, over classes (0, 14, 20):
CONFUSION = np.array([[1, 0, 1],   # GT 0: one right, one predicted as prompt 25 -> background
                      [1, 1, 0],   # GT 14: one right, one predicted as 0
                      [0, 1, 4]])  # GT background: prompts 20, 40, 58, 20 -> background; one as 14


def test_merge_background():
    pred = torch.tensor(PRED_B)
    merged = merge_background(pred, BG)
    assert merged.tolist() == [[0, 20, 20, 20, 14], [14, 0, 20, 20, 14]]
    assert pred.tolist() == PRED_B  # input untouched
    assert merge_background(merged, BG).tolist() == merged.tolist()  # idempotent
    assert merge_background(pred, None) is pred


def test_pas20b_against_confusion_matrix():
    classes = tuple(f'c{i}' for i in range(20)) + ('background', )
    metric = HallucinationIoUMetric()
    metric.dataset_meta = dict(classes=classes, background_index=BG)
    metric.process({}, [sample(GT_B, merge_background(torch.tensor(PRED_B), BG)).to_dict()])
    area_intersect, _, area_pred, area_label = (area.numpy() for area in metric.results[0])
    scored = [0, 14, 20]
    diag = np.diag(CONFUSION)
    np.testing.assert_array_equal(area_intersect[scored], diag)
    np.testing.assert_array_equal(area_pred[scored], CONFUSION.sum(0))
    np.testing.assert_array_equal(area_label[scored], CONFUSION.sum(1))
    assert area_pred.sum() == area_label.sum() == CONFUSION.sum()  # nothing outside the three classes
    metrics = metric.evaluate(1)
    iou = diag / (CONFUSION.sum(0) + CONFUSION.sum(1) - diag)  # 1/3, 1/3, 4/6
    assert metrics['mIoU'] == pytest.approx(round(100 * iou.mean(), 2))  # classes absent from both: NaN
    assert metrics['aAcc'] == pytest.approx(round(100 * diag.sum() / CONFUSION.sum(), 2))
    assert metrics['hallucinated_classes'] == 0.0  # every predicted class is in the GT


def _rank(rank: int, world: int, port: int, queue) -> None:
    torch.distributed.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
                                         world_size=world)
    metric = HallucinationIoUMetric()
    metric.dataset_meta = dict(classes=('a', 'b', 'c'))
    gt, pred = [(GT1, PRED1), (GT2, PRED2)][rank]
    metric.process({}, [sample(gt, pred).to_dict()])
    queue.put((rank, metric.evaluate(2)))
    torch.distributed.destroy_process_group()


def test_distributed_collection():
    """Two gloo ranks, one image each: rank 0's figures equal the single-process ones on both images."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    ctx = multiprocessing.get_context('fork')
    queue = ctx.Queue()
    procs = [ctx.Process(target=_rank, args=(rank, 2, port, queue)) for rank in range(2)]
    for proc in procs:
        proc.start()
    results = dict(queue.get(timeout=60) for _ in procs)
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    assert results[0]['hallucination_rate'] == 0.5 and results[0]['hallucinated_classes'] == 0.5
    assert results[0]['mIoU'] == pytest.approx(round(100 * EXPECTED['mIoU'], 2))
    assert results[1] == results[0]  # mmengine broadcasts the main process's metrics
