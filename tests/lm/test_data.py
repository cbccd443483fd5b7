"""PTB-char, enwik8 and plain-text readers on tiny generated files in their real formats."""

from __future__ import annotations

import zipfile

import pytest

from metahyper.lm.data import EOL, UNKNOWN, load_corpus, read_enwik8, read_ptb_char, read_text


def write_ptb(root, train="a b _ c a\nb _ a\n", valid="c a _ b\n", test="a\n"):
    for split, text in (("train", train), ("valid", valid), ("test", test)):
        (root / f"ptb.char.{split}.txt").write_text(text, encoding="utf-8")


def test_ptb_char_reads_space_separated_characters_with_line_ends(tmp_path):
    write_ptb(tmp_path)
    corpus = read_ptb_char(tmp_path)
    assert corpus.vocab == (EOL, "_", "a", "b", "c")
    assert corpus.decode(corpus.train) == "ab_ca\nb_a\n"
    assert corpus.decode(corpus.valid) == "ca_b\n" and corpus.decode(corpus.test) == "a\n"
    assert corpus.train.tolist() == [2, 3, 1, 4, 2, 0, 3, 1, 2, 0]


def test_ptb_char_refuses_unknown_symbols_and_multi_character_tokens(tmp_path):
    write_ptb(tmp_path, valid="a b\nz a\n")
    with pytest.raises(ValueError, match=r"ptb\.char\.valid\.txt:2: symbol 'z'"):
        read_ptb_char(tmp_path)
    write_ptb(tmp_path, train="a bc\n")
    with pytest.raises(ValueError, match=r"ptb\.char\.train\.txt:1: 'bc' is not one character"):
        read_ptb_char(tmp_path)
    (tmp_path / "ptb.char.test.txt").unlink()
    with pytest.raises(FileNotFoundError, match="ptb.char.test.txt"):
        read_ptb_char(tmp_path)


def test_enwik8_splits_bytes_in_order_and_maps_unseen_bytes_to_unknown(tmp_path):
    data = bytes([104, 105, 0xC3, 0xA9, 104, 104]) + bytes([105, 0xFF]) + bytes([104, 7])
    (tmp_path / "enwik8").write_bytes(data)
    corpus = read_enwik8(tmp_path, split_bytes=(6, 2, 2))
    assert corpus.vocab == ("h", "i", "\xa9", "\xc3", UNKNOWN)  # the training bytes, sorted, as latin-1
    assert corpus.train.tolist() == [0, 1, 3, 2, 0, 0]
    assert corpus.valid.tolist() == [1, 4] and corpus.test.tolist() == [0, 4]
    with pytest.raises(ValueError, match="has 10 bytes"):
        read_enwik8(tmp_path)  # the default 90M/5M/5M split needs the real file's 10^8 bytes
    (tmp_path / "enwik8").unlink()
    with zipfile.ZipFile(tmp_path / "enwik8.zip", "w") as archive:
        archive.writestr("enwik8", data)
    assert read_enwik8(tmp_path, split_bytes=(6, 2, 2)).train.tolist() == corpus.train.tolist()


def test_text_splits_characters_by_fraction(tmp_path):
    (tmp_path / "t.txt").write_text("abcabcabcä" + "abcdeéabcd" * 9, encoding="utf-8")  # 100 characters
    corpus = load_corpus("text", tmp_path, file="t.txt", split=(0.8, 0.1, 0.1))
    assert (len(corpus.train), len(corpus.valid), len(corpus.test)) == (80, 10, 10)
    assert corpus.vocab == ("a", "b", "c", "d", "e", "ä", "é", UNKNOWN)
    assert corpus.decode(corpus.test) == "abcdeéabcd"
    (tmp_path / "u.txt").write_text("aaaaaaaaab", encoding="utf-8")
    unseen = read_text(tmp_path, "u.txt", split=(0.8, 0.1, 0.1))
    assert unseen.decode(unseen.test) == "\ufffd" and unseen.test.tolist() == [len(unseen.vocab) - 1]
    with pytest.raises(ValueError, match="adding up to 1"):
        read_text(tmp_path, "t.txt", split=(0.5, 0.1, 0.1))
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe abc")
    with pytest.raises(ValueError, match="bad.txt is not UTF-8"):
        read_text(tmp_path, "bad.txt")
