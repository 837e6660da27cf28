"""Object ids as Stripe writes them: a prefix, then letters and digits only."""

from __future__ import annotations

import string

from stripe_sandbox.objects import new_id


def test_an_id_is_its_prefix_then_letters_and_digits_of_the_asked_length() -> None:
    ids = [new_id("cs_test_", length) for length in (1, 24, 58, 200) for _ in range(50)]

    for made in ids:
        assert made.startswith("cs_test_")
        assert set(made.removeprefix("cs_test_")) <= set(string.ascii_letters + string.digits)
    assert [len(made) for made in ids] == [
        8 + length for length in (1, 24, 58, 200) for _ in range(50)
    ]
    assert len(set(ids[50:])) == len(ids) - 50  # (1-letter ids may repeat)


def test_every_letter_and_digit_is_drawn() -> None:
    drawn = set("".join(new_id("", 24) for _ in range(500)))

    assert drawn == set(string.ascii_letters + string.digits)
