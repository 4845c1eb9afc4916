"""Where function URLs live on strato (``domain.function_urls.UrlScheme``)."""

from __future__ import annotations

from strato.domain.function_urls import UrlScheme, is_url_id, new_url_id

URL_ID = "abcdefghijklmnopqrstuvwxyz012345"


def test_url_ids_are_32_lower_case_letters_and_digits_and_never_repeat() -> None:
    ids = {new_url_id() for _ in range(100)}
    assert len(ids) == 100 and all(is_url_id(url_id) for url_id in ids)
    assert not is_url_id(URL_ID.upper()) and not is_url_id(URL_ID[:-1])


def test_the_default_scheme_is_a_path_below_the_servers_address() -> None:
    scheme = UrlScheme("http://127.0.0.1:9000")
    assert scheme.url_of(URL_ID) == f"http://127.0.0.1:9000/lambda-url/{URL_ID}/"
    # The function sees the path and query as sent, after the URL's own part.
    assert scheme.match("127.0.0.1:9000", f"/lambda-url/{URL_ID}/a//b?x=1&x=2") == (
        URL_ID, "/a//b?x=1&x=2")
    assert scheme.match("127.0.0.1:9000", f"/lambda-url/{URL_ID}") == (URL_ID, "/")
    assert scheme.match("127.0.0.1:9000", f"/lambda-url/{URL_ID}?q") == (URL_ID, "/?q")
    assert scheme.match("127.0.0.1:9000", "/lambda-url/not-an-id/x") is None
    assert scheme.match("127.0.0.1:9000", "/2015-03-31/functions/") is None


def test_with_a_url_host_each_url_is_a_host_name_below_it() -> None:
    scheme = UrlScheme("http://127.0.0.1:9000", "fn.example.test")
    assert scheme.url_of(URL_ID) == f"http://{URL_ID}.fn.example.test:9000/"
    assert scheme.match(f"{URL_ID}.FN.example.test:9000", "/p?q=1") == (URL_ID, "/p?q=1")
    assert scheme.match("other.fn.example.test", "/p") is None
    # The path form keeps working, for clients that cannot resolve the name.
    assert scheme.match("127.0.0.1:9000", f"/lambda-url/{URL_ID}/p") == (URL_ID, "/p")
