"""The publisher's request sequence through opensearch-py's own client, with a recording transport.

No OpenSearch server can be installed on these machines; this proves the requests the client
sends (bodies, order, the atomic alias flip) — not how a live cluster answers them.
"""

import json

import pytest
from opensearchpy import NotFoundError, Transport

from medkg_assets.resources.opensearch import OpenSearchResource, PublishError
from medkg_assets.search.opensearch_mapping import build_index_template
from medkg_assets_tests.conftest import current_settings


class RecordingTransport(Transport):
    """Records every request and answers as a cluster with `existing_alias_targets` would."""

    existing_alias_targets: list[str] = []
    count_override: int | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.requests = []
        self.written = 0

    def perform_request(self, method, url, params=None, body=None, timeout=None, ignore=(), headers=None):
        if isinstance(body, (bytes, str)):
            body = body.decode() if isinstance(body, bytes) else body
        self.requests.append((method, url, body))
        if method == "HEAD":
            return False
        if url.endswith("/_bulk"):
            lines = [json.loads(line) for line in body.strip().splitlines()]
            actions = [line for line in lines if "index" in line]
            self.written += len(actions)
            return {
                "took": 1,
                "errors": False,
                "items": [{"index": {"_id": a["index"]["_id"], "status": 201}} for a in actions],
            }
        if url.endswith("/_count"):
            return {"count": self.written if self.count_override is None else self.count_override}
        if url.startswith("/_alias/"):
            if not self.existing_alias_targets:
                raise NotFoundError(404, "alias_not_found", {})
            return {name: {"aliases": {url.rsplit("/", 1)[-1]: {}}} for name in self.existing_alias_targets}
        return {"acknowledged": True}


def publish(transport_class, documents=3):
    resource = OpenSearchResource(url="http://127.0.0.1:9200")
    client = resource.client(transport_class=transport_class)
    profile = current_settings().profiles.get("minilm_cpu")
    template = build_index_template("medquad_sample", profile)
    docs = [{"chunk_id": f"c{i}", "text": "t"} for i in range(documents)]
    report = resource.publish(
        "medquad_sample-minilm_cpu",
        template,
        "medquad_sample-minilm_cpu-abc",
        "medquad_sample-read",
        docs,
        client=client,
    )
    return report, client.transport


def test_first_publish_puts_template_creates_index_bulk_writes_and_adds_alias():
    class Fresh(RecordingTransport):
        existing_alias_targets = []

    report, transport = publish(Fresh)
    sequence = [(m, u) for m, u, _ in transport.requests]
    assert sequence == [
        ("PUT", "/_index_template/medquad_sample-minilm_cpu"),
        ("HEAD", "/medquad_sample-minilm_cpu-abc"),
        ("PUT", "/medquad_sample-minilm_cpu-abc"),
        ("POST", "/_bulk"),
        ("POST", "/medquad_sample-minilm_cpu-abc/_refresh"),
        ("POST", "/medquad_sample-minilm_cpu-abc/_count"),
        ("GET", "/_alias/medquad_sample-read"),
        ("POST", "/_aliases"),
    ]
    template_body = transport.requests[0][2]
    assert template_body["template"]["mappings"]["properties"]["splade_terms"]["type"] == "rank_features"
    assert transport.requests[-1][2] == {
        "actions": [{"add": {"index": "medquad_sample-minilm_cpu-abc", "alias": "medquad_sample-read"}}]
    }
    assert report.documents == 3 and report.previous_indices == []


def test_republish_moves_the_alias_atomically_and_keeps_the_old_index():
    class WithPrevious(RecordingTransport):
        existing_alias_targets = ["medquad_sample-minilm_cpu-old"]

    report, transport = publish(WithPrevious)
    assert transport.requests[-1][2] == {
        "actions": [
            {"remove": {"index": "medquad_sample-minilm_cpu-old", "alias": "medquad_sample-read"}},
            {"add": {"index": "medquad_sample-minilm_cpu-abc", "alias": "medquad_sample-read"}},
        ]
    }
    assert not any(m == "DELETE" for m, _, _ in transport.requests)
    assert report.previous_indices == ["medquad_sample-minilm_cpu-old"]


def test_count_mismatch_never_moves_the_alias():
    class ShortCount(RecordingTransport):
        count_override = 2

    with pytest.raises(PublishError, match="holds 2 documents, 3 were written"):
        publish(ShortCount)


def test_unconfigured_resource_says_so():
    assert not OpenSearchResource().configured
