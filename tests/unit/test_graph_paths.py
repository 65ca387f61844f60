"""Ids are path segments of the Graph API URL: one that holds `/`, `?` or `..` cannot reach
another path of Meta's API."""

from __future__ import annotations

import json
from types import SimpleNamespace

from coexist.outbound.graph import GraphApi


class RecordingPool:
    def __init__(self, answer: dict):
        self.urls: list[str] = []
        self.answer = answer

    def request(self, method, url, body=None, headers=None):
        self.urls.append(url)
        return SimpleNamespace(status=200, data=json.dumps(self.answer).encode())


def test_a_waba_id_with_a_slash_stays_one_path_segment():
    pool = RecordingPool({"data": [], "paging": {}})
    GraphApi("https://graph.example", "v24.0", lambda: "token", pool=pool).message_templates("123/../456?x=1")
    [url] = pool.urls
    assert url.startswith("https://graph.example/v24.0/123%2F..%2F456%3Fx%3D1/message_templates?")


def test_a_phone_number_id_with_a_slash_stays_one_path_segment():
    pool = RecordingPool({"messages": [{"id": "wamid.x"}]})
    GraphApi("https://graph.example", "v24.0", lambda: "token", pool=pool).send_message("106/../me", {"to": "1"})
    assert pool.urls == ["https://graph.example/v24.0/106%2F..%2Fme/messages"]


def test_the_paging_cursor_is_quoted_whole():
    pages = iter([
        {"data": [{"name": "a"}], "paging": {"next": "n", "cursors": {"after": "a/b&c=d"}}},
        {"data": [{"name": "b"}], "paging": {}},
    ])
    pool = RecordingPool({})
    pool.request = lambda method, url, body=None, headers=None: (pool.urls.append(url), SimpleNamespace(status=200, data=json.dumps(next(pages)).encode()))[1]
    assert [t["name"] for t in GraphApi("https://g", "v1", lambda: "t", pool=pool).message_templates("1")] == ["a", "b"]
    assert pool.urls[1].endswith("&after=a%2Fb%26c%3Dd")
