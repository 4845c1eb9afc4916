"""Where FunctionUrls point: ``--public-url``/``--url-host`` (and their variables) and the
default, strato's listen address with loopback for "every address"."""

from __future__ import annotations

from strato.config import Settings
from strato.domain.function_urls import UrlScheme

URL_ID = "abcdefghijklmnopqrstuvwxyz012345"


def test_the_default_base_is_the_listen_address_and_bound_port() -> None:
    assert Settings(host="127.0.0.1").public_base(9123) == "http://127.0.0.1:9123"
    assert Settings(host="0.0.0.0").public_base(9000) == "http://127.0.0.1:9000"
    assert Settings(host="::").public_base(9000) == "http://[::1]:9000"
    assert Settings(host="10.1.2.3").public_base(80) == "http://10.1.2.3:80"


def test_a_public_url_and_a_url_host_come_from_flags_or_the_environment() -> None:
    settings = Settings.from_environment({"STRATO_PUBLIC_URL": "https://lambda.example.test/",
                                          "STRATO_URL_HOST": "fn.example.test"})
    assert settings.public_base(9000) == "https://lambda.example.test"
    scheme = UrlScheme(settings.public_base(9000), settings.url_host)
    assert scheme.url_of(URL_ID) == f"https://{URL_ID}.fn.example.test/"
    flags = Settings.from_environment({}, public_url="http://strato.internal:8080")
    assert UrlScheme(flags.public_base(9000)).url_of(URL_ID) == (
        f"http://strato.internal:8080/lambda-url/{URL_ID}/")
