"""Answer-type cues: the question's type, typed candidates new to the question, the span."""

from ragfleet.generate.answer_type import best_span, cue, question_type
from ragfleet.generate.extractive import Extractive, ExtractiveConfig
from ragfleet.types import Hit

S1 = "Super Bowl 50 was an American football game to determine the champion of the NFL."
S2 = "The AFC champion Denver Broncos defeated the Carolina Panthers 24–10 in the game."
S3 = "The game was played on February 7, 2016, at Levi's Stadium in Santa Clara."


def test_question_types() -> None:
    assert question_type("Who won Super Bowl 50?") == "person"
    assert question_type("When was the game played?") == "date"
    assert question_type("In what year did it open?") == "date"
    assert question_type("How many points did the Broncos score?") == "number"
    assert question_type("Where was it held?") == "place"
    assert question_type("Which NFL team won?") == "name"
    assert question_type("What is a touchdown?") == "other"


def test_a_candidate_must_be_new_to_the_question() -> None:
    assert cue("When was the game played?", S3) == 1.0
    assert cue("When was the game played?", S2) == 0.0  # no date in it
    assert cue("Who were the Denver Broncos?", "The Denver Broncos played.") == 0.0
    assert cue("What is a touchdown?", S2) == 0.0  # no type, no cue


def test_the_span_is_the_typed_candidate() -> None:
    span = best_span("When was the game played?", S3)
    assert span is not None and S3[span[0] : span[1]] == "February 7, 2016"
    span = best_span("How many points did the Broncos score?", S2)
    assert span is not None and S2[span[0] : span[1]] == "24–10"
    assert best_span("What is a touchdown?", S2) is None


def test_with_the_cue_the_answer_and_its_span_hold_the_date() -> None:
    hit = Hit(1, "d0", "c0", 1.0, " ".join([S1, S3]), 0, title="Super Bowl 50")
    q = "When was Super Bowl 50 played?"
    typed = Extractive(ExtractiveConfig(type_weight=1.0)).generate(q, [hit])
    assert "February 7, 2016" in typed.text and typed.short == "February 7, 2016"
