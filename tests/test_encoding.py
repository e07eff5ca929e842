import random

import pytest

from tidings.smpp.encoding import (
    DC_BINARY,
    DC_DEFAULT,
    DC_FLASH_GSM,
    DC_FLASH_UCS2,
    DC_LATIN1,
    DC_UCS2,
    GSM7_BASIC,
    Encoded,
    binary_segments,
    decode_text,
    encode_binary,
    encode_text,
    segments,
    split,
    strip_udh,
    with_udh,
)

EMOJI = "\U0001f600"  # 😀, a surrogate pair in UTF-16


@pytest.mark.parametrize(
    ("char", "code"),
    [
        ("@", 0x00),
        ("£", 0x01),
        ("$", 0x02),
        ("è", 0x04),
        ("\n", 0x0A),
        ("Δ", 0x10),
        ("_", 0x11),
        ("ß", 0x1E),
        ("É", 0x1F),
        (" ", 0x20),
        ("¤", 0x24),
        ("¡", 0x40),
        ("A", 0x41),
        ("Ä", 0x5B),
        ("§", 0x5F),
        ("¿", 0x60),
        ("a", 0x61),
        ("ä", 0x7B),
        ("à", 0x7F),
    ],
)
def test_basic_septet(char, code):
    assert encode_text(char) == Encoded(DC_DEFAULT, bytes([code]))


@pytest.mark.parametrize(
    ("char", "code"),
    [
        ("\f", 0x0A),
        ("^", 0x14),
        ("{", 0x28),
        ("}", 0x29),
        ("\\", 0x2F),
        ("[", 0x3C),
        ("~", 0x3D),
        ("]", 0x3E),
        ("|", 0x40),
        ("€", 0x65),
    ],
)
def test_extension_septets(char, code):
    assert encode_text(char) == Encoded(DC_DEFAULT, bytes([0x1B, code]))


def test_basic_table_is_complete():
    assert len(GSM7_BASIC) == 128
    assert GSM7_BASIC[0x1B] == "\x1b"


@pytest.mark.parametrize(
    ("text", "unicode", "flash", "data_coding", "payload"),
    [
        ("Hi", False, False, DC_DEFAULT, b"Hi"),
        ("Hi", True, False, DC_UCS2, b"\x00H\x00i"),
        ("Hiж", False, False, DC_UCS2, b"\x00H\x00i\x046"),
        ("Hi", False, True, DC_FLASH_GSM, b"Hi"),
        ("ж", False, True, DC_FLASH_UCS2, b"\x046"),
        ("Hi", True, True, DC_FLASH_UCS2, b"\x00H\x00i"),
        (EMOJI, False, False, DC_UCS2, b"\xd8\x3d\xde\x00"),
        ("", False, False, DC_DEFAULT, b""),
    ],
)
def test_encode_text_alphabet(text, unicode, flash, data_coding, payload):
    assert encode_text(text, unicode=unicode, flash=flash) == Encoded(data_coding, payload)


def test_encode_binary():
    assert encode_binary(b"\x00\xff") == Encoded(DC_BINARY, b"\x00\xff")


@pytest.mark.parametrize(
    ("text", "unicode", "sizes"),
    [
        ("a" * 160, False, [160]),
        ("a" * 161, False, [153, 8]),
        ("a" * 306, False, [153, 153]),
        ("a" * 307, False, [153, 153, 1]),
        ("€" * 80, False, [160]),
        ("€" * 81, False, [152, 10]),
        ("a" + "€" * 80, False, [153, 8]),
        ("ж" * 70, False, [140]),
        ("ж" * 71, False, [134, 8]),
        ("ж" * 134, False, [134, 134]),
        ("ж" * 135, False, [134, 134, 2]),
        ("a" * 70, True, [140]),
        ("a" * 71, True, [134, 8]),
        ("ж" * 66 + EMOJI + "ж" * 4, False, [132, 12]),
        ("ж" * 65 + EMOJI + "ж" * 5, False, [134, 10]),
        ("", False, [0]),
    ],
)
def test_split_text_sizes(text, unicode, sizes):
    parts = split(encode_text(text, unicode=unicode))
    assert [len(p) for p in parts] == sizes
    assert segments(text, unicode) == len(sizes)


def test_split_never_leaves_a_lone_escape():
    parts = split(encode_text("€" * 81))
    assert all(not p.endswith(b"\x1b") for p in parts)
    assert all(p.startswith(b"\x1b\x65") for p in parts)


def test_split_keeps_emoji_across_part_boundary():
    text = "ж" * 66 + EMOJI + "ж" * 4  # the pair would occupy units 67 and 68
    first, second = split(encode_text(text))
    assert first.decode("utf-16-be") == "ж" * 66
    assert second.decode("utf-16-be") == EMOJI + "ж" * 4


@pytest.mark.parametrize(
    ("size", "sizes"),
    [(0, [0]), (140, [140]), (141, [134, 7]), (268, [134, 134]), (269, [134, 134, 1])],
)
def test_split_binary_sizes(size, sizes):
    payload = bytes(range(256)) * 2
    parts = split(encode_binary(payload[:size]))
    assert [len(p) for p in parts] == sizes
    assert b"".join(parts) == payload[:size]
    assert binary_segments(payload[:size]) == len(sizes)


@pytest.mark.parametrize(("size", "count"), [(140, 1), (141, 2)])
def test_split_latin1_counts_like_binary(size, count):
    assert len(split(Encoded(DC_LATIN1, b"\xe9" * size))) == count


@pytest.mark.parametrize(
    ("size", "max_single", "sizes"),
    [(160, 150, [153, 7]), (150, 150, [150]), (200, 254, [200])],
)
def test_split_max_single(size, max_single, sizes):
    parts = split(encode_text("a" * size), max_single=max_single)
    assert [len(p) for p in parts] == sizes


def test_with_udh_headers():
    parts = with_udh([b"one", b"two", b"three"], 0x2A)
    assert parts == [
        b"\x05\x00\x03\x2a\x03\x01one",
        b"\x05\x00\x03\x2a\x03\x02two",
        b"\x05\x00\x03\x2a\x03\x03three",
    ]


def test_with_udh_masks_reference_to_one_octet():
    assert with_udh([b"a", b"b"], 0x1FF)[0][:6] == b"\x05\x00\x03\xff\x02\x01"


def test_with_udh_single_part_unchanged():
    assert with_udh([b"solo"], 7) == [b"solo"]


def test_with_udh_rejects_too_many_parts():
    with pytest.raises(ValueError):
        with_udh([b"x"] * 256, 1)


@pytest.mark.parametrize(
    "text",
    ["Hello @ £5, ñ & ß", "€ [x] {y} ~z^ \\ | \f end", "\r\nΔΦΓΛΩΠΨΣΘΞ", ""],
)
@pytest.mark.parametrize("flash", [False, True])
def test_decode_gsm_round_trip(text, flash):
    enc = encode_text(text, flash=flash)
    assert enc.data_coding in (DC_DEFAULT, DC_FLASH_GSM)
    assert decode_text(enc.data_coding, enc.payload) == text


@pytest.mark.parametrize("text", ["привет", f"hi {EMOJI}!", "日本語", EMOJI * 3])
@pytest.mark.parametrize("flash", [False, True])
def test_decode_ucs2_round_trip(text, flash):
    enc = encode_text(text, flash=flash)
    assert enc.data_coding in (DC_UCS2, DC_FLASH_UCS2)
    assert decode_text(enc.data_coding, enc.payload) == text


@pytest.mark.parametrize(
    ("data_coding", "payload", "text"),
    [
        (DC_DEFAULT, b"caf\xe9", "café"),  # Latin-1 sent under data_coding 0
        (DC_DEFAULT, b"\x1b\x41", "A"),  # unknown escape → the basic-table char after it
        (DC_DEFAULT, b"\x1b\x1b", " "),
        (DC_DEFAULT, b"ab\x1b", "ab "),
        (DC_DEFAULT, b"\x00\x01\x02", "@£$"),
        (0x01, b"plain\xff", "plain\ufffd"),
        (DC_LATIN1, b"\xe9t\xe9", "été"),
        (DC_UCS2, b"\xd8\x3d\x00a", "\ufffda"),  # lone high surrogate
        (DC_UCS2, b"\x00a\x00", "a\ufffd"),  # odd length
        (DC_BINARY, b"\x01\xab", "01ab"),
        (0x02, b"\xff", "ff"),
        (0x19, b"\x04\x36", "ж"),  # general group, UCS2 alphabet
        (0x19, b"\x04", "\x04"),  # not valid UTF-16 → latin-1
        (0x06, b"\xe9", "é"),
    ],
)
def test_decode_text(data_coding, payload, text):
    assert decode_text(data_coding, payload) == text


@pytest.mark.parametrize(
    ("payload", "rest", "concat"),
    [
        (b"\x05\x00\x03\x2a\x03\x02body", b"body", (0x2A, 3, 2)),
        (b"\x06\x08\x04\x12\x34\x02\x01body", b"body", (0x1234, 2, 1)),
        (b"\x04\x24\x02\xab\xcdbody", b"body", None),  # unrelated IE only
        (b"\x09\x24\x02\xab\xcd\x00\x03\x07\x02\x01body", b"body", (7, 2, 1)),  # after another IE
        (b"\x05\x00\x03\x2a\x03\x00body", b"body", None),  # seq 0 is invalid
        (b"\x03\x00\x05\x01body", b"body", None),  # IE longer than the UDH
        (b"\x09\x00\x03\x01", b"\x09\x00\x03\x01", None),  # UDH longer than the payload
        (b"", b"", None),
    ],
)
def test_strip_udh(payload, rest, concat):
    assert strip_udh(payload) == (rest, concat)


def test_strip_udh_undoes_with_udh():
    parts = with_udh(split(encode_text("x" * 400)), 99)
    assert [strip_udh(p)[1] for p in parts] == [(99, 3, 1), (99, 3, 2), (99, 3, 3)]
    assert b"".join(strip_udh(p)[0] for p in parts) == b"x" * 400


_ALPHABET = "aZ9 @£\n" + "€[]{}~^\\|" + "жé" + EMOJI


def _random_texts(count: int) -> list[str]:
    rng = random.Random(3438)
    texts = []
    for _ in range(count):
        # Mostly GSM text, sometimes with a UCS-2-only character, at lengths around the limits.
        pool = _ALPHABET if rng.random() < 0.3 else _ALPHABET[:16]
        texts.append("".join(rng.choices(pool, k=rng.randint(0, 420))))
    return texts


@pytest.mark.parametrize("unicode", [False, True])
def test_segments_agrees_with_split(unicode):
    for text in _random_texts(300):
        enc = encode_text(text, unicode=unicode)
        parts = split(enc)
        assert segments(text, unicode) == len(parts)
        assert b"".join(parts) == enc.payload
        assert decode_text(enc.data_coding, enc.payload) == text
        for part in parts:
            if enc.data_coding == DC_DEFAULT:
                assert not part.endswith(b"\x1b")
            assert decode_text(enc.data_coding, part).count("\ufffd") == 0
