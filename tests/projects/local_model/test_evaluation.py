"""Thresholds are chosen without the test set: pinned on small hand-made cases (no OpenCV, no DB)."""

from projects.detections import Detection
from projects.local_model import evaluation
from projects.local_model.evaluation import Matching, Scored


def matching(truth, scored):
    found = Matching()
    found.truth.update(truth)
    found.scored.extend(Scored(label, confidence, hit) for label, confidence, hit in scored)
    return found


# Validation (cross-validated training images): 3 objects; the best F1 (6/7) keeps everything down
# to the hit at 40, and the threshold goes halfway down to the next detection (a miss at 30): 35.
VALIDATION = matching({"a": 3}, [("a", 80, True), ("a", 70, True), ("a", 60, False), ("a", 40, True),
                                 ("a", 30, False)])
# The test set would pick 90 for itself; scored at 35 it finds 1 of 2 with 2 false positives.
TEST = matching({"a": 2}, [("a", 90, True), ("a", 50, False), ("a", 38, False), ("a", 20, True)])


def test_thresholds_are_chosen_on_validation_halfway_below_the_last_kept_detection():
    assert evaluation.validation_thresholds(VALIDATION, ["a"]) == {"a": 35.0}


def test_honest_figures_score_the_test_set_at_validation_thresholds_and_report_the_tuned_f1_beside():
    figures = evaluation.honest_figures(VALIDATION, TEST, ["a"])

    assert figures["thresholds"] == {"a": 35.0}
    # tp 1, fp 2, fn 1 at 35
    assert (figures["f1"], figures["precision"], figures["recall"]) == (0.4, round(1 / 3, 4), 0.5)
    # Tuned on the test set itself: 90 keeps the one sure hit (tp 1, fp 0, fn 1).
    assert figures["thresholds_tuned_on_test"] == {"a": 90.0}
    assert figures["f1_tuned_on_test"] == round(2 / 3, 4)


def test_a_label_without_validation_detections_keeps_the_models_own_boundary():
    empty = matching({"a": 1, "b": 2}, [("a", 70, True)])

    assert evaluation.validation_thresholds(empty, ["a", "b"]) == {"a": 70.0, "b": 50.0}


def test_cross_validation_never_scores_an_image_with_a_model_that_learned_from_it():
    samples = [(index, [("a", (0, 0, 10, 10))]) for index in range(5)]
    scored_by = {}

    def learn(chosen):
        return frozenset(pixels for pixels, _ in chosen)

    def detect(pixels, model):
        scored_by[pixels] = model
        return [Detection("a", 60.0, (0, 0, 10, 10))]

    found = evaluation.cross_validated_matching(samples, learn, detect, folds=2)

    assert sorted(scored_by) == [0, 1, 2, 3, 4]
    assert all(pixels not in model and model for pixels, model in scored_by.items())
    assert found.truth["a"] == 5 and found.counts().tp == 5
