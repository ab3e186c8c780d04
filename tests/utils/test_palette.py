"""Class colours: fixed by the class's name in every vocabulary, distinct for the classes drawn together."""
import numpy as np

from logoseg.utils.palette import (_srgb_to_lab, base_palette, class_colour, colour_distance,
                                   distinct_present_colours, vocabulary_palette)
from logoseg.utils.vocab import check_vocabulary


def test_a_class_has_the_same_colour_in_every_vocabulary():
    ade = check_vocabulary('ade150')
    sky_ade = vocabulary_palette(ade)[ade.index('sky')]
    assert sky_ade == class_colour('sky') == class_colour('Sky, heaven')
    assert dict(zip(('sky', 'tree'), vocabulary_palette(['sky', 'tree'])))['sky'] == sky_ade
    assert vocabulary_palette(['tree', 'sky'])[1] == sky_ade  # not by position


def min_distance(colours) -> float:
    lab = _srgb_to_lab(np.asarray(colours, float))
    distances = np.linalg.norm(lab[:, None] - lab[None], axis=2)
    return distances[np.triu_indices(len(colours), 1)].min()


def test_palette_colours_are_far_apart():
    palette = base_palette()
    assert len(set(palette)) == 256
    assert min_distance(palette[:96]) > 19 and min_distance(palette) > 12
    assert colour_distance(palette[0], palette[1]) >= min_distance(palette[:2])


def test_classes_present_never_share_a_colour_and_the_largest_keep_theirs():
    names = check_vocabulary('ade150')
    counts = np.zeros(len(names), np.int64)
    present = np.random.default_rng(0).choice(len(names), 40, replace=False)
    counts[present] = np.arange(40, 0, -1) * 100
    colours = distinct_present_colours(names, counts)
    drawn = [colours[i] for i in present]
    assert len(set(drawn)) == 40
    assert min_distance(drawn) > 12
    assert colours[present[0]] == class_colour(names[present[0]])  # the largest class keeps its own colour
    kept = sum(colours[i] == class_colour(names[i]) for i in present)
    assert kept >= 30  # clashes move few classes
    absent = next(i for i in range(len(names)) if counts[i] == 0)
    assert colours[absent] == class_colour(names[absent])


def test_a_vocabulary_gets_distinct_colours_in_its_order():
    names = check_vocabulary('ade150')
    palette = vocabulary_palette(names)
    assert len(set(palette)) == 150 and palette[0] == class_colour(names[0])
