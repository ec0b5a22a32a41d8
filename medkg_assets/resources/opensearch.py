"""`OpenSearchResource`: publish a partition to OpenSearch with opensearch-py, then flip the alias.

Sequence: put the index template, create the versioned index, bulk-write the chunks, verify
the document count, and only then move the read alias in one atomic `_aliases` call. The
previous index stays for rollback.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dagster import ConfigurableResource

from medkg_assets.search.opensearch_mapping import PublishError, PublishReport

__all__ = ["OpenSearchResource", "PublishError", "PublishReport"]


class OpenSearchResource(ConfigurableResource):
    """Configured from OPENSEARCH_URL (+ OPENSEARCH_USERNAME/PASSWORD, TLS options)."""

    url: str | None = None
    username: str | None = None
    password: str | None = None
    verify_certs: bool = True
    ca_certs: str | None = None
    timeout_s: int = 60
    bulk_chunk_size: int = 500

    @property
    def configured(self) -> bool:
        return bool(self.url)

    def client(self, transport_class=None):
        from opensearchpy import OpenSearch, Transport

        auth = (self.username, self.password) if self.username else None
        return OpenSearch(
            hosts=[self.url],
            http_auth=auth,
            verify_certs=self.verify_certs,
            ca_certs=self.ca_certs,
            timeout=self.timeout_s,
            transport_class=transport_class or Transport,
        )

    def publish(
        self,
        template_name: str,
        template: dict[str, Any],
        index: str,
        alias: str,
        documents: Iterable[dict[str, Any]],
        client=None,
        move_alias: bool = True,
    ) -> PublishReport:
        """Write the versioned index and verify its count; then move `alias` to it if `move_alias`.

        A candidate profile is published with `move_alias=False`: readers switch only when
        `serving_alias` promotes it.
        """
        from opensearchpy import helpers

        client = client or self.client()
        client.indices.put_index_template(name=template_name, body=template)
        if not client.indices.exists(index=index):
            client.indices.create(index=index)
        actions = ({"_index": index, "_id": doc["chunk_id"], "_source": doc} for doc in documents)
        written, errors = helpers.bulk(client, actions, chunk_size=self.bulk_chunk_size, raise_on_error=False)
        if errors:
            raise PublishError(f"{len(errors)} bulk errors writing {index}; first: {errors[0]}")
        client.indices.refresh(index=index)
        count = int(client.count(index=index)["count"])
        if count != written:
            raise PublishError(
                f"{index} holds {count} documents, {written} were written; alias {alias} not moved"
            )
        previous = self.point_alias(alias, index, client) if move_alias else []
        return PublishReport(index=index, alias=alias, documents=count, previous_indices=previous)

    def point_alias(self, alias: str, index: str, client=None) -> list[str]:
        """Move `alias` to `index` in one atomic `_aliases` call; returns the indices it left."""
        from opensearchpy import NotFoundError

        client = client or self.client()
        try:
            previous = sorted(client.indices.get_alias(name=alias))
        except NotFoundError:
            previous = []
        actions = [{"remove": {"index": old, "alias": alias}} for old in previous if old != index]
        actions.append({"add": {"index": index, "alias": alias}})
        client.indices.update_aliases(body={"actions": actions})
        return previous
