"""Statistics of note-state matrices (musicutils.stats)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from musicutils import midi, stats  # noqa: E402


def example_state() -> np.ndarray:
    """8 steps, 24 notes from MIDI 60: C held 4 steps, E struck twice (2 + 1), 3 silent steps."""
    state = np.zeros((8, 24, 2), np.uint8)
    state[0:4, 0] = [1, 0]  # C (index 0 = MIDI 60): one note of 4 steps
    state[0, 0, 1] = 1
    state[1:4, 4, 0] = 1  # E: struck at step 1 and again at step 3
    state[[1, 3], 4, 1] = 1
    state[4, 7] = [1, 1]  # G, one step
    return state


def test_pitch_classes_lengths_counts_silence():
    state = example_state()
    hist = stats.pitch_class_histogram(state, lowest=60)
    expected = np.zeros(12)
    np.add.at(expected, [0, 4, 4, 7], 1)
    np.testing.assert_allclose(hist, expected / 4)
    assert sorted(stats.note_lengths(state, lowest=60)) == [1, 1, 2, 4]
    np.testing.assert_array_equal(stats.notes_per_step(state), [1, 2, 2, 2, 1, 0, 0, 0])
    assert stats.silent_fraction(state) == pytest.approx(3 / 8)


def test_typical_voices_is_the_count_of_most_sounding_steps():
    four = np.zeros((10, 12, 2), np.uint8)
    four[:, [0, 4, 7, 11], 0] = 1  # four notes in every step
    four[7:, 11, 0] = 0  # three in 3 steps
    assert stats.typical_voices(four) == 4
    silent = np.zeros((20, 12, 2), np.uint8)
    assert stats.typical_voices([four, silent]) == 4  # silent steps do not count
    assert stats.typical_voices(silent) is None
    assert stats.typical_voices(four, share=0.75) is None  # 4 in 70 % of the steps
    changing = np.zeros((9, 12, 2), np.uint8)  # 1, 2 and 3 notes, three steps each
    for k in range(3):
        changing[3 * k : 3 * k + 3, : k + 1, 0] = 1
    assert stats.typical_voices(changing) is None


def test_texture_of_a_hand_example():
    state = np.zeros((10, 24, 2), np.uint8)
    state[:, [0, 4, 7, 12], 0] = 1  # four voices, MIDI 60, 64, 67, 72
    state[2, 12, 0] = 0  # the top voice rests one step
    state[5:9, 12, 0] = 0  # and four steps
    state[9] = 0  # a silent step
    t = stats.texture(state, 4, stretch=3, lowest=60)
    assert (t["exact"], t["fewer"], t["more"]) == (0.4, 0.6, 0.0)
    assert t["fewer_in_stretches"] == pytest.approx(5 / 6)  # steps 5-9: one run of 5; step 2
    assert (t["top_fewer"], t["top_exact"]) == (67.0, 72.0)  # the silent step is left out
    assert (t["bottom_fewer"], t["bottom_exact"]) == (60.0, 60.0)
    assert np.isnan(stats.texture(state[:2], 4)["top_fewer"])  # no thin step: nan


def test_struck_intervals_count_only_notes_struck_together():
    state = np.zeros((4, 24, 2), np.uint8)
    state[0:3, [0, 1], 0] = 1  # C and C# struck together at step 0 (a minor second), held
    state[0, [0, 1], 1] = 1
    state[1, 7, :] = 1  # G struck alone against them: not a pair struck together
    state[2, [4, 11], :] = 1  # E and B struck together (a fifth) against the held C and C#
    state[3, [2, 14], 0] = 1  # D and the D above start together, without articulation bits
    state[3, 0, 0] = 1  # while C, held from step 0 without a new articulation, is no onset
    shares = stats.struck_intervals(state, lowest=60)
    expected = np.zeros(12)
    expected[[1, 7, 0]] = 1 / 3
    np.testing.assert_allclose(shares, expected)
    assert stats.struck_intervals(np.zeros((3, 24, 2), np.uint8)).sum() == 0
    clashes = stats.clash_shares(shares)  # the minor second; no whole-tone clash
    assert clashes == pytest.approx({"m2_M7": 1 / 3, "M2_m7": 0.0})


def test_pieces_bring_their_own_range_and_batches_pool():
    state = example_state()
    piece = midi.from_state(state, lowest=61)  # everything a semitone up
    assert stats.pitch_class_histogram(piece)[[1, 5, 8]].tolist() == [0.25, 0.5, 0.25]
    batch = np.stack([state, np.zeros_like(state)])
    summary = stats.describe([batch, piece], lowest=60)
    assert summary["steps"] == 24 and summary["notes"] == 8
    assert summary["silent_fraction"] == pytest.approx((3 + 8 + 3) / 24)
    assert summary["note_length"] == pytest.approx(2.0)


def test_no_notes():
    empty = np.zeros((5, 10, 2), np.uint8)
    assert stats.pitch_class_histogram(empty).sum() == 0
    assert stats.describe(empty)["note_length"] == 0.0
    assert stats.silent_fraction(empty) == 1.0
    with pytest.raises(ValueError, match="shape"):
        stats.notes_per_step(np.zeros((3, 2)))


def test_histograms_of_the_example_by_hand():
    """example_state: C 0-3 (struck at 0), E 1-3 (struck at 1 and 3), G at 4, then silence."""
    hists = stats.histograms(example_state(), lowest=60)
    assert list(hists) == list(stats.HISTOGRAMS)
    for name, (_, bins) in stats.HISTOGRAMS.items():
        assert hists[name].shape == (len(bins),)

    def share(counts: dict, bins: int) -> np.ndarray:
        out = np.zeros(bins)
        for index, count in counts.items():
            out[index] = count
        return out / out.sum()

    expected = {
        # steps: 1, 2, 2, 2, 1, 0, 0, 0 notes sounding
        "notes_at_once": share({0: 3, 1: 2, 2: 3}, 9),
        # notes of 4 (C), 2 and 1 (E), 1 (G) steps; bin i holds length i + 1
        "note_lengths": share({0: 2, 1: 1, 3: 1}, 16),
        # notes struck at steps 0, 1, 3, 4
        "onsets_per_step": share({0: 4, 1: 4}, 9),
        # in 4/4 at 4 steps per beat: step 0 downbeat, 1 and 3 sixteenths, 4 a beat
        "onset_positions": share({0: 1, 1: 1, 3: 2}, 4),
        "pitch_classes": share({0: 1, 4: 2, 7: 1}, 12),
        # C and E together in steps 1-3: three major thirds
        "intervals": share({4: 3}, 12),
        # top: C -> E (+4), E struck again (0), E -> G (+3); bottom: C -> G (+7)
        "top_motion": share({4: 1, 0: 1, 3: 1}, 13),
        "bottom_motion": share({7: 1}, 13),
        # spans 0, 4, 4, 4, 0 semitones in bins of 3
        "span": share({0: 2, 1: 3}, 13),
    }
    for name, want in expected.items():
        np.testing.assert_allclose(hists[name], want, err_msg=name)
    np.testing.assert_array_equal(stats.voice_motion(example_state(), voice="top"), [4, 0, 3])
    np.testing.assert_array_equal(stats.voice_motion(example_state(), voice="bottom"), [7])
    np.testing.assert_array_equal(stats.onsets_per_step(example_state()), [1, 1, 0, 1, 1, 0, 0, 0])


def test_scalars_of_the_example_by_hand():
    summary = stats.scalars([example_state(), example_state()], lowest=60)
    assert summary["pieces"] == 2 and summary["steps"] == 16
    assert summary["four_voice_share"] == 0.0
    assert summary["silent_share"] == pytest.approx(3 / 8)
    assert summary["notes_per_step"] == pytest.approx(8 / 8)
    # top voice over the 5 sounding steps: C4 E4 E4 E4 G4; bottom: C4 C4 C4 C4 G4
    assert summary["top_pitch"] == pytest.approx((60 + 3 * 64 + 67) / 5)
    assert summary["bottom_pitch"] == pytest.approx((4 * 60 + 67) / 5)
    # sounding steps per pitch class: C 4, E 3, G 1, all in C major
    profile = np.zeros(12)
    profile[[0, 4, 7]] = [4, 3, 1]
    assert summary["diatonic_share"] == 1.0
    assert summary["key_correlation"] == pytest.approx(stats.key_fit(profile)[0])
    full = np.zeros((4, 12, 2), np.uint8)
    full[:, :4, 0] = 1
    assert stats.scalars(full)["four_voice_share"] == 1.0


def test_metric_levels_and_meters():
    np.testing.assert_array_equal(
        stats.metric_levels(np.arange(16), 4), [0, 3, 2, 3, 1, 3, 2, 3, 1, 3, 2, 3, 1, 3, 2, 3]
    )
    np.testing.assert_array_equal(stats.metric_levels(np.arange(6), 3), [0, 3, 3, 1, 3, 3])
    # One note struck at step 12: a downbeat in 3/4, the fourth beat in 4/4.
    state = np.zeros((16, 12, 2), np.uint8)
    state[12, 0] = 1
    in_three = stats.histograms(state, meter=(3, 4))["onset_positions"]
    in_four = stats.histograms(state)["onset_positions"]
    piece = midi.from_state(state, meter=(3, 4))
    np.testing.assert_array_equal(in_three, [1, 0, 0, 0])
    np.testing.assert_array_equal(stats.histograms(piece)["onset_positions"], [1, 0, 0, 0])
    np.testing.assert_array_equal(in_four, [0, 1, 0, 0])


def test_key_fit_and_diatonic_share():
    major = np.array(stats.KRUMHANSL_KESSLER_MAJOR)
    minor = np.array(stats.KRUMHANSL_KESSLER_MINOR)
    assert stats.key_fit(major) == (pytest.approx(1.0), 0)
    r, key = stats.key_fit(np.roll(minor, 9))
    assert r == pytest.approx(1.0) and stats.key_name(key) == "A minor"
    assert stats.key_name(7) == "G major" and stats.key_name(-1) == "no key"
    # The G major scale, every note once: the best of the 24 correlations, computed directly.
    scale = np.zeros(12)
    scale[[7, 9, 11, 0, 2, 4, 6]] = 1
    direct = [np.corrcoef(scale, np.roll(p, k))[0, 1] for p in (major, minor) for k in range(12)]
    r, key = stats.key_fit(scale)
    assert r == pytest.approx(max(direct)) and key == int(np.argmax(direct))
    assert stats.diatonic_share(scale) == 1.0
    scale[5] = 1  # F natural as well: 7 of 8 notes fit C major (or G major)
    assert stats.diatonic_share(scale) == pytest.approx(7 / 8)
    assert stats.key_fit(np.ones(12)) == (0.0, -1)
    assert stats.diatonic_share(np.zeros(12)) == 0.0


def test_total_variation_and_distances():
    assert stats.total_variation([0.5, 0.5, 0], [0, 0.5, 0.5]) == pytest.approx(0.5)
    assert stats.total_variation([1, 0], [0, 1]) == 1.0
    a = stats.histograms(example_state(), lowest=60)
    tv = stats.distances(a, stats.histograms(example_state(), lowest=61))
    assert set(tv) == set(stats.HISTOGRAMS)
    assert tv["pitch_classes"] == 1.0  # every note a semitone higher
    assert tv["intervals"] == 0.0 and tv["notes_at_once"] == 0.0


def test_window_features_shapes_groups_and_silent_windows():
    state = np.zeros((12, 24, 2), np.uint8)
    state[:8] = example_state()  # steps 8-11 are silent
    features, groups = stats.window_features(
        [state, state[:6], state], window=4, stride=4, lowest=60
    )
    names = stats.window_feature_names()
    assert features.shape == (7, len(names)) and not np.isnan(features).any()
    np.testing.assert_array_equal(groups, [0, 0, 0, 1, 2, 2, 2])  # 6 steps: one window
    top = names.index("top_pitch")
    # window 0: C E E E on top; window 1: G then silence; window 2: silent -> mean of the others
    assert features[0, top] == pytest.approx((60 + 3 * 64) / 4)
    assert features[1, top] == 67
    assert features[2, top] == pytest.approx(np.mean(features[[0, 1, 3, 4, 5], top]))
    assert features[0, names.index("intervals[M3]")] == 1.0
    assert stats.window_features(state[:3], window=4)[0].shape == (0, len(names))


def test_fit_logistic_finds_the_penalised_optimum():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] - 0.5 * x[:, 1] + 0.3 * rng.normal(size=200) > 0).astype(float)
    weights, bias = stats.fit_logistic(x, y, l2=2.0)
    p = stats.predict_logistic(x, weights, bias)
    # The gradient of log-loss + l2 / 2 |w|^2 vanishes at the optimum.
    np.testing.assert_allclose(x.T @ (p - y) + 2.0 * weights, 0, atol=1e-6)
    assert abs(np.sum(p - y)) < 1e-6
    assert weights[0] > 1 and weights[1] < -0.5 and abs(weights[2]) < 0.5
    with pytest.raises(ValueError, match="l2"):
        stats.fit_logistic(x, y, l2=0)


SCALE = np.array([0, 2, 4, 5, 7, 9, 11])


def chorale_like(rng, steps: int = 128) -> np.ndarray:
    """A synthetic four-part piece in a random major key: four voices in their own registers,
    walking by scale steps in notes of 2, 4 or 8 steps (MIDI 24 = index 0)."""
    state = np.zeros((steps, 78, 2), np.uint8)
    key = int(rng.integers(12))
    pitches = np.arange(36, 84)
    in_key = pitches[np.isin((pitches - key) % 12, SCALE)]
    for low, high in ((48, 60), (55, 67), (60, 72), (65, 79)):
        choices = in_key[(in_key >= low) & (in_key <= high)]
        where, t = int(rng.integers(len(choices))), 0
        while t < steps:
            length = int(rng.choice([2, 4, 4, 4, 8]))
            where = int(np.clip(where + rng.integers(-2, 3), 0, len(choices) - 1))
            state[t : t + length, choices[where] - 24, 0] = 1
            state[t, choices[where] - 24, 1] = 1
            t += length
    return state


def noise_like(rng, steps: int = 128) -> np.ndarray:
    """Random notes: uniform pitches over four octaves, lengths of 1 to 6 steps."""
    state = np.zeros((steps, 78, 2), np.uint8)
    for _ in range(steps):
        start, length, pitch = rng.integers(steps), rng.integers(1, 7), rng.integers(12, 60)
        state[start : start + length, pitch, 0] = 1
        state[start, pitch, 1] = 1
    return state


def features_of(pieces: list[np.ndarray]):
    return stats.window_features(pieces, window=32, stride=16)


def test_classifier_separates_different_corpora():
    rng = np.random.default_rng(1)
    real = features_of([chorale_like(rng) for _ in range(12)])
    noise = features_of([noise_like(rng) for _ in range(12)])
    assert stats.two_sample_accuracy(*real, *noise, seed=0) > 0.95


def test_classifier_cannot_tell_two_samples_of_one_corpus():
    rng = np.random.default_rng(2)
    one = features_of([chorale_like(rng) for _ in range(16)])
    two = features_of([chorale_like(rng) for _ in range(16)])
    accuracy = np.mean([stats.two_sample_accuracy(*one, *two, seed=s) for s in range(3)])
    floor = np.mean([stats.split_half_accuracy(*one, seed=s) for s in range(3)])
    assert 0.35 < accuracy < 0.65 and 0.35 < floor < 0.65


def test_folds_grouped_by_piece_do_not_learn_pieces():
    """Pieces that each have their own texture: with windows of one piece on both sides of a
    fold the classifier would learn which piece is on which side; grouped, it cannot."""
    rng = np.random.default_rng(3)
    pieces = []
    for _ in range(16):
        piece = noise_like(rng)
        piece[:, : int(rng.integers(5, 60)), :] = 0  # each piece its own register
        pieces.append(piece)
    features, groups = features_of(pieces)
    side = np.isin(groups, np.arange(0, 16, 2))
    grouped = stats.two_sample_accuracy(
        features[side], groups[side], features[~side], groups[~side], seed=0
    )
    windows = np.arange(len(groups))  # every window its own group: pieces leak across folds
    leaky = stats.two_sample_accuracy(
        features[side], windows[side], features[~side], windows[~side], seed=0
    )
    assert grouped < 0.7 < leaky
    with pytest.raises(ValueError, match="2 pieces"):
        stats.two_sample_accuracy(features, np.zeros_like(groups), features, groups)


def test_plot_comparison_draws_every_panel_and_one_series_per_label():
    fig = stats.plot_comparison({"a": example_state(), "b": [example_state()] * 2}, lowest=60)
    assert len(fig.axes) == 11
    assert len(fig.axes[1].lines) == 2  # notes sounding at once: one line per label
    assert len(fig.axes[0].patches) == 2 * 12  # pitch classes: 12 bars per label
    assert len(fig.axes[9].patches) == 2 * 2  # key correlation and diatonic share


def load_bench_music():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_music.py"
    spec = importlib.util.spec_from_file_location("bench_music", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_music_compares_two_folders(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MUSICUTILS_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(4)
    for folder, make in (("real", chorale_like), ("composed", noise_like)):
        for i in range(4):
            midi.write(midi.from_state(make(rng)), tmp_path / folder / f"{i}.mid")
    bench = load_bench_music()
    figure = tmp_path / "figure.png"
    folders = ["--composed", str(tmp_path / "composed"), "--real", str(tmp_path / "real")]
    bench.main(folders + ["--window-bars", "2", "--repeats", "1", "--figure", str(figure)])
    lines = capsys.readouterr().out.splitlines()
    last = dict(item.split("=") for item in lines[-1].split())
    assert list(last) == ["classifier_accuracy", "floor", "four_voice_share", "silent_share"] + [
        f"tv_{name}" for name in stats.HISTOGRAMS
    ]
    assert float(last["classifier_accuracy"]) > 0.9
    assert float(last["four_voice_share"]) < 0.5
    struck = {row.split()[0]: row.split()[1:] for row in lines if row.startswith("  struck_")}
    assert set(struck) == {"struck_m2_M7", "struck_M2_m7"}
    assert all(0 < float(share) < 1 for shares in struck.values() for share in shares)
    parallel = {row.split()[0]: row.split()[1:] for row in lines if row.startswith("  parallel_")}
    assert set(parallel) == {"parallel_5ths", "parallel_8ves"}
    assert all(0 <= float(rate) for rates in parallel.values() for rate in rates)
    assert figure.stat().st_size > 0
    with pytest.raises(SystemExit) as exit_info:
        bench.parse_args(["--temperature", "nan"])
    assert exit_info.value.code == 2


def test_parallel_perfects_of_a_hand_example():
    # Four voices from MIDI 48: C3 G3 E4 C5, all up a whole tone (D3 A3 F#4 D5): bass and tenor
    # move in parallel fifths, bass and soprano in parallel (double) octaves. Then the chord is
    # held (no change); then the bass goes down to C3 while the soprano goes up to C6 (octaves
    # in contrary motion: not parallel); then the bass alone moves to E3 (oblique: not parallel)
    state = np.zeros((6, 48, 2), np.uint8)
    chords = [[0, 7, 16, 24], [2, 9, 18, 26], [2, 9, 18, 26], [0, 9, 18, 36], [4, 9, 18, 36]]
    for step, notes in enumerate(chords):
        state[step, notes] = 1
    state[5, [4, 9, 18]] = 1  # three voices: its pair with step 4 is not counted
    result = stats.parallel_perfects(state, lowest=48)
    assert result == pytest.approx({"fifths": 1 / 3, "octaves": 1 / 3, "changes": 3.0})
    # A fifth moving to a compound fifth in similar motion counts too: bass C3 -> D3 (+2),
    # tenor G3 -> A4 (+14), so 7 semitones become 19
    compound = np.zeros((2, 48, 2), np.uint8)
    compound[0, [0, 7, 16, 24]] = 1
    compound[1, [2, 21, 23, 28]] = 1
    assert stats.parallel_perfects(compound, lowest=48)["fifths"] == 1.0
    assert stats.parallel_perfects(np.zeros((4, 24, 2), np.uint8)) == {
        "fifths": 0.0,
        "octaves": 0.0,
        "changes": 0.0,
    }


def test_home_key_share_by_hand():
    def piece(*passages, tail=0):
        # 16 steps per passage (4 beats at 4 steps per beat), each a triad given by note
        # indices (lowest = 60: 0 = C4), then `tail` steps of C-E-G.
        state = np.zeros((16 * len(passages) + tail, 24, 2), np.uint8)
        for i, notes in enumerate(passages):
            state[16 * i : 16 * (i + 1), notes, 0] = 1
        state[16 * len(passages) :, [0, 4, 7], 0] = 1
        return state

    def key(state):  # key_fit's key of the sounding time per pitch class
        profile = np.bincount(np.nonzero(state[..., 0])[1] % 12, minlength=12)
        return stats.key_name(stats.key_fit(profile)[1])

    c, a_minor, g = [0, 4, 7], [9, 12, 16], [7, 11, 14]
    assert [key(piece(t)) for t in (c, a_minor, g)] == ["C major", "A minor", "G major"]
    # C, C, A minor, then 8 steps left out of the passages (but not of the piece, whose
    # sounding time is C 56 steps, E 56, G 40, A 16: C major): 2 of 3 passages at home.
    state = piece(c, c, a_minor, tail=8)
    assert key(state) == "C major"
    assert stats.home_key_share(state, beats=4, lowest=60) == pytest.approx(2 / 3)
    # Home is the whole piece's key, not the first passage's: G, C, C, A minor, C is in C major,
    # so the G passage is away (and the share is not 1/5).
    assert key(piece(g, c, c, a_minor, c)) == "C major"
    assert stats.home_key_share(piece(g, c, c, a_minor, c), beats=4, lowest=60) == 0.6
    # Any key: the same piece transposed up a minor third.
    assert stats.home_key_share(np.roll(state, 3, axis=1), beats=4, lowest=60) == pytest.approx(
        2 / 3
    )
    # Pooled over the pieces' passages; a silent passage or piece has no key and is not counted.
    assert stats.home_key_share([state, piece(c, c)], beats=4, lowest=60) == pytest.approx(4 / 5)
    silent = np.zeros((32, 24, 2), np.uint8)
    assert stats.home_key_share([state, silent], beats=4, lowest=60) == pytest.approx(2 / 3)
    assert stats.home_key_share(piece(c, [], c), beats=4, lowest=60) == 1.0
    assert stats.home_key_share(silent, beats=4) == 0.0
    assert stats.home_key_share(state[:10], beats=4) == 0.0  # shorter than a passage
    with pytest.raises(ValueError, match="beats"):
        stats.home_key_share(state, beats=0)
    # scalars counts 16-beat passages: 64 steps of C, then 48 of C and 16 of A minor are two
    # passages in C major (1.0); in passages of 4 beats one of the eight would be away.
    long = piece(c, c, c, c, c, c, c, a_minor)
    assert stats.home_key_share(long, beats=4, lowest=60) == pytest.approx(7 / 8)
    assert stats.scalars(long, lowest=60)["home_key_share"] == 1.0
    assert stats.scalars(iter([long]), lowest=60)["home_key_share"] == 1.0  # flattened once
