"""Overlays a person reads: legend text sized to the image, first names, largest classes first, bounded."""
import numpy as np
import pytest

from logoseg.apis.visualize import draw_overlay, legend_entries, legend_font_px
from logoseg.utils.palette import vocabulary_palette
from logoseg.utils.vocab import check_vocabulary

RNG = np.random.default_rng(0)


def stripes(height, width, shares):
    """A label map of vertical stripes, class i covering about ``shares[i]`` of the columns."""
    edges = np.round(np.cumsum([0, *shares]) / sum(shares) * width).astype(int)
    columns = np.zeros(width, np.int64)
    for index, (start, stop) in enumerate(zip(edges[:-1], edges[1:])):
        columns[start:stop] = index
    return np.repeat(columns[None], height, axis=0)


def text_line_heights(overlay, image_width, font_px):
    """Heights of the runs of rows holding dark text pixels in the legend's text column."""
    text_column = overlay[:, image_width + 2 * font_px + font_px // 2:]
    dark = (text_column.max(axis=2) < 110).any(axis=1)
    runs, length = [], 0
    for row in dark:
        length = length + 1 if row else 0
        if length == 1:
            runs.append(0)
        if row:
            runs[-1] = length
    return runs


@pytest.mark.parametrize('width, side_by_side', [(300, False), (2000, False), (6000, False), (3000, True)])
def test_legend_text_is_readable_with_the_overlay_shown_1000_px_wide(width, side_by_side):
    classes = ('wall', 'floor', 'sky')
    image = RNG.integers(0, 256, (60, width, 3), dtype=np.uint8)
    overlay = draw_overlay(image, stripes(60, width, [5, 3, 2]), classes, vocabulary_palette(classes),
                           side_by_side=side_by_side)
    drawn_width = width * (2 if side_by_side else 1)
    heights = text_line_heights(overlay, drawn_width, legend_font_px(drawn_width))
    assert len(heights) == 3
    shown = 1000 / overlay.shape[1]  # the whole overlay fitted to 1000 px
    # letters with ascenders and descenders ('floor 30.0%') span about the font size: 11 px or more on screen
    assert min(heights) * shown >= 11, (heights, overlay.shape)


def test_legend_names_classes_by_their_first_name_largest_first():
    classes = ('wall, brick wall', 'sky, heaven', 'tree')
    entries = legend_entries(stripes(4, 100, [20, 50, 30]), classes)
    assert [text for _, text in entries] == ['sky  50.0%', 'tree  30.0%', 'wall  20.0%']
    assert [index for index, _ in entries] == [1, 2, 0]


def test_legend_is_bounded_with_the_rest_summed_up():
    classes = check_vocabulary('ade847')
    label_map = RNG.integers(0, 300, (50, 500))
    label_map[:, :250] = 7  # half the image: the first entry
    entries = legend_entries(label_map, classes, max_entries=8)
    assert len(entries) == 8 and entries[0][0] == 7
    assert entries[-1][0] is None and entries[-1][1].startswith(f'+ {len(np.unique(label_map)) - 7} more ')
    assert all(',' not in text for _, text in entries)
    overlay = draw_overlay(RNG.integers(0, 256, (50, 500, 3), dtype=np.uint8), label_map, classes,
                           vocabulary_palette(classes), max_legend=8)
    font = legend_font_px(500)
    assert overlay.shape[0] <= 2 * font + 8 * round(1.5 * font)  # eight lines, not 300
    assert overlay.shape[1] < 500 + 30 * font


def test_overlay_blends_class_colours_and_side_by_side_shows_the_image():
    classes = ('road', 'car')
    palette = [(255, 0, 0), (0, 0, 255)]
    image = RNG.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    labels = stripes(20, 30, [1, 1])
    overlay = draw_overlay(image, labels, classes, palette, alpha=0.5)
    expected = np.round(0.5 * np.asarray(palette)[labels] + 0.5 * image)
    assert np.abs(overlay[:20, :30].astype(int) - expected).max() <= 1
    pair = draw_overlay(image, labels, classes, palette, alpha=0.5, side_by_side=True)
    assert np.array_equal(pair[:20, :30], image) and np.array_equal(pair[:20, 30:60], overlay[:20, :30])


@pytest.mark.parametrize('size', [(1, 1), (1, 50), (50, 1)])
def test_one_pixel_images_get_an_overlay_and_a_legend(size):
    overlay = draw_overlay(np.zeros((*size, 3), np.uint8), np.zeros(size, np.int64), ('sky',), [(10, 20, 30)])
    assert overlay.shape[0] >= legend_font_px(size[1]) and overlay.shape[1] > size[1] + 3 * legend_font_px(size[1])
    assert tuple(overlay[0, 0]) == (5, 10, 15)
