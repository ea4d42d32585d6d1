"""The synthetic skeleton demo: compositional class names, class-independent nuisances, NTU files."""

from __future__ import annotations

import numpy as np

from zsar.data.skeleton_io import format_skeleton, parse_skeleton
from zsar.data.skeleton_synth import LEG, SPEEDS, class_names, render_sequence, unseen_classes


def test_unseen_classes_are_new_compositions_of_seen_words():
    names = class_names()
    assert len(names) >= 12 and len(set(names)) == len(names)
    unseen = unseen_classes()
    seen = [n for n in names if n not in unseen]
    for u in unseen:
        words = u.split()
        for position, word in enumerate(words):  # every part (verb, side, body part, speed) is seen
            assert any(s.split()[position] == word for s in seen), (u, word)
    assert len({u.split()[0] for u in unseen}) == len(unseen)  # one per movement


def test_nuisances_do_not_depend_on_the_class():
    a = render_sequence("raise left arm slowly", np.random.default_rng(7))
    b = render_sequence("kick right leg quickly", np.random.default_rng(7))
    assert len(a) == len(b)
    # the spine base moves with position, size, facing and noise only: identical across classes
    np.testing.assert_array_equal(a.frames[0][0].xyz[0], b.frames[0][0].xyz[0])
    assert not np.array_equal(a.frames[5][0].xyz, b.frames[5][0].xyz)


def test_speed_sets_the_repetition_rate():
    slow = render_sequence("kick left leg slowly", np.random.default_rng(3))
    fast = render_sequence("kick left leg quickly", np.random.default_rng(3))
    def cycles(seq):
        foot = np.array([f[0].xyz[LEG["left"][2]] - f[0].xyz[0] for f in seq.frames])  # ankle relative to spine base
        height = foot[:, 1] - foot[:, 1].mean()
        return int(np.sum(np.diff(np.sign(height)) != 0))
    assert cycles(fast) > cycles(slow)
    assert SPEEDS["quickly"] < SPEEDS["slowly"]


def test_rendered_sequences_are_valid_skeleton_files():
    seq = render_sequence("wave right hand quickly", np.random.default_rng(0))
    back = parse_skeleton(format_skeleton(seq))
    assert len(back) == len(seq) >= 30
    assert all(len(b.joints) == 25 for f in back.frames for b in f)
