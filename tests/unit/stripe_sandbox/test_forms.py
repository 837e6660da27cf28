from __future__ import annotations

from urllib.parse import urlencode

import pytest
from stripe._encode import _api_encode

from stripe_sandbox.errors import StripeApiError
from stripe_sandbox.forms import decode_form


def test_decodes_stripe_python_bracket_encoding_back_to_the_same_values() -> None:
    params = {
        "mode": "payment",
        "line_items": [
            {"quantity": "2", "price_data": {"currency": "eur", "unit_amount": "1250"}},
            {"quantity": "1", "price_data": {"currency": "eur", "unit_amount": "500"}},
        ],
        "metadata": {"user_id": "u-1"},
        "expand": ["invoice", "customer"],
    }
    assert decode_form(urlencode(list(_api_encode(params)))) == params


def test_empty_brackets_append_and_empty_values_are_kept() -> None:
    assert decode_form("expand[]=a&expand[]=b&metadata=") == {"expand": ["a", "b"], "metadata": ""}


def test_a_key_used_both_as_value_and_object_is_rejected() -> None:
    with pytest.raises(StripeApiError) as caught:
        decode_form("metadata[a]=1&metadata[a][b]=2")
    assert caught.value.status == 400
