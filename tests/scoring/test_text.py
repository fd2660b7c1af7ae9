"""Chinese-aware phrase normalisation and offsets."""

from hypothesis import given, settings, strategies as st

from servq.core.scoring.text import index, normalise


def test_full_and_half_width_forms_are_the_same_phrase():
    assert normalise("喂！") == normalise("喂!") == normalise("喂 ! ") == "喂"
    assert normalise("ＡＢＣ１２３") == "abc123"


def test_punctuation_spaces_and_invisible_characters_are_ignored():
    assert normalise("您 好，我是……「快递」\u200b员") == "您好我是快递员"


def test_sentence_ends_are_kept_as_one_line_break():
    assert normalise("您看行不？知道您着急") == "您看行不\n知道您着急"
    assert normalise("喂！？\n\n你好；再见;好的.") == "喂\n你好\n再见\n好的"
    assert normalise("。您好！") == "您好"
    indexed = index("您看行不？知道。不知道！")
    assert indexed.find_all(normalise("不知道")) == [(8, 11)]
    assert indexed.find_all(normalise("知道。不")) == [(5, 9)]


def test_traditional_characters_fold_to_simplified():
    assert normalise("您好，請稍等。再見") == normalise("您好,请稍等。再见") == "您好请稍等\n再见"
    assert normalise("問別人去") == "问别人去"
    indexed = index("你問別人去吧")
    assert indexed.find_all(normalise("问别人去")) == [(1, 5)]


def test_symbols_keep_their_meaning_but_unicode_punctuation_goes():
    assert normalise("￥50 + 1") == "¥50+1"
    assert normalise("99 %") == "99"  # "%" is punctuation (Po) in Unicode


def test_offsets_point_into_the_original_text():
    text = "喂！你好，我不知道。问别人去!"
    indexed = index(text)
    assert indexed.find_all(normalise("不知道")) == [(6, 9)]
    start, end = indexed.find_all(normalise("问别人去！"))[0]
    assert text[start:end] == "问别人去"
    assert indexed.find_all(normalise("经理")) == []


def test_a_phrase_split_by_punctuation_is_found_across_it():
    text = "您，好"
    assert index(text).find_all("您好") == [(0, 3)]


def test_every_occurrence_is_reported():
    assert index("再见, 再见!").find_all("再见") == [(0, 2), (4, 6)]


def test_one_to_many_forms_keep_their_offsets():
    indexed = index("面积 5㎡ ok")
    assert indexed.normal == "面积5m2ok"
    assert indexed.find_all("m2") == [(4, 5)]
    assert indexed.find_all("ok") == [(6, 8)]


def test_combining_marks_and_half_width_kana_compose_like_whole_text_nfkc():
    indexed = index("Cafe\u0301 ｶﾞｽ")
    assert indexed.normal == normalise("Café ガス") == "caféガス"
    assert indexed.find_all(normalise("café")) == [(0, 5)]
    assert indexed.find_all(normalise("ガ")) == [(6, 8)]


_TEXTS = st.text(alphabet=st.sampled_from(list("您好再见再見不知道喂问别人去問別快递！!?；，,。\n ａＢc1２\u3000")),
                 max_size=40)


def _one_break(normal):
    """A normal form with its runs of sentence ends made one, none at either end."""
    return "\n".join(part for part in normal.split("\n") if part)


@settings(deadline=None)  # a loaded CI machine must not fail a property
@given(_TEXTS)
def test_index_agrees_with_whole_text_normalisation(text):
    assert _one_break(index(text).normal) == normalise(text)


@settings(deadline=None)  # a loaded CI machine must not fail a property
@given(_TEXTS, st.data())
def test_every_found_span_normalises_to_the_phrase(text, data):
    indexed = index(text)
    if not indexed.normal:
        return
    start = data.draw(st.integers(0, len(indexed.normal) - 1))
    end = data.draw(st.integers(start + 1, len(indexed.normal)))
    phrase = _one_break(indexed.normal[start:end])
    if not phrase:
        return
    spans = indexed.find_all(phrase)
    assert spans
    for begin, finish in spans:
        assert normalise(text[begin:finish]) == phrase
