"""One try to a real receiver: refused addresses and schemes, a bounded answer, and one
deadline for the whole try however slowly the answer comes."""

import socket

import pytest

from webhooks.sender import ANSWER_READ_BYTES, EXCERPT_BYTES, endpoint_post


def post(url: str):
    return endpoint_post(url=url, body=b"{}", headers={"content-type": "application/json"})


def test_a_private_address_is_refused_without_a_connection(settings):
    result = post("http://10.0.0.5/hook")

    assert (result.status_code, result.error) == (None, "refused: 10.0.0.5 is a private address")


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://169.254.169.254/latest", "refused: 169.254.169.254 is a link-local address"),
        ("http://0.0.0.0/", "refused: 0.0.0.0 is an unspecified address"),
        ("http://[::1]/", "refused: ::1 is a loopback address"),
        ("http://[::ffff:10.1.2.3]/", "refused: 10.1.2.3 is a private address"),
        ("http://224.0.0.1/", "refused: 224.0.0.1 is a multicast address"),
        ("http://100.64.0.1/", "refused: 100.64.0.1 is not a public address"),
        ("http://localhost:1/", "refused: 127.0.0.1 is a loopback address"),
    ],
)
def test_addresses_inside_the_network_are_refused(url, error, settings):
    settings.WEBHOOKS_ALLOWED_NETWORKS = []

    assert post(url).error == error


def test_loopback_is_refused_unless_its_network_is_allowed(receiver, settings):
    settings.WEBHOOKS_ALLOWED_NETWORKS = []
    assert post(receiver.url).error == "refused: 127.0.0.1 is a loopback address"
    assert receiver.requests == []

    settings.WEBHOOKS_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    assert post(receiver.url).status_code == 200
    assert len(receiver.requests) == 1


def test_plain_http_is_refused_unless_allowed(receiver, settings):
    settings.WEBHOOKS_ALLOW_HTTP = False

    assert post(receiver.url).error == "refused: only https URLs are allowed"
    assert receiver.requests == []


def test_an_endless_answer_is_read_no_further_than_its_start(receiver):
    receiver.answer("endless")

    result = post(receiver.url)

    assert (result.status_code, result.error) == (200, "")
    assert result.excerpt == "x" * EXCERPT_BYTES
    assert ANSWER_READ_BYTES == 64 * 1024


def test_an_answer_dripping_slowly_is_cut_off_at_the_deadline(receiver, settings):
    settings.WEBHOOKS_TIMEOUT_SECONDS = 1
    receiver.answer("drip")

    result = post(receiver.url)

    assert (result.status_code, result.error) == (None, "timed out after 1 s")


def test_a_receiver_that_never_answers_times_out(receiver, settings):
    settings.WEBHOOKS_TIMEOUT_SECONDS = 1
    receiver.answer("hang")

    result = post(receiver.url)

    assert (result.status_code, result.error) == (None, "timed out after 1 s")


def test_a_closed_port_is_a_connection_failure(settings):
    result = post("http://127.0.0.1:1/hook")

    assert result.error.startswith("could not connect: ")
    assert "refused" in result.error.lower()


def test_the_try_connects_to_the_address_it_checked_and_names_the_host(receiver, monkeypatch):
    lookups = []
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "shop.example":
            return real_getaddrinfo(host, port, *args, **kwargs)
        # A rebinding name: the checked answer first, a private one on any second look.
        lookups.append(host)
        address = "127.0.0.1" if len(lookups) == 1 else "10.0.0.5"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    port = receiver.server.server_port

    result = post(f"http://shop.example:{port}/hook")

    assert result.status_code == 200
    assert lookups == ["shop.example"]
    assert receiver.requests[0].headers["host"] == f"shop.example:{port}"


def test_a_name_with_a_private_address_among_its_addresses_is_refused(receiver, monkeypatch):
    def getaddrinfo(host, port, *args, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.168.1.9", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    result = post(f"http://shop.example:{receiver.server.server_port}/hook")

    assert result.error == "refused: 192.168.1.9 is a private address"
    assert receiver.requests == []
