"""A collection as the previous version built it (schema "2": a heading vector beside the sparse field), for
the tests that check such an index still answers and is rebuilt once by the next ingest."""

from __future__ import annotations

from typing import Any

from index.store import METADATA_INT, METADATA_VARCHAR, PK, SPARSE, TEXT, VECTOR

HEADING_VECTOR = "heading_vector"


def create_legacy_collection(client: Any, name: str, *, dim: int, embedding_model: str) -> None:
    from pymilvus import DataType, Function, FunctionType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field(PK, DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field(TEXT, DataType.VARCHAR, max_length=65535, enable_analyzer=True)
    schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=dim)
    for field, length in METADATA_VARCHAR.items():
        schema.add_field(field, DataType.VARCHAR, max_length=length)
    for field in METADATA_INT:
        schema.add_field(field, DataType.INT64)
    schema.add_field(HEADING_VECTOR, DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field(SPARSE, DataType.SPARSE_FLOAT_VECTOR)
    bm25 = Function(
        name="text_bm25", function_type=FunctionType.BM25, input_field_names=[TEXT], output_field_names=[SPARSE]
    )
    schema.add_function(bm25)
    index = client.prepare_index_params()
    index.add_index(VECTOR, index_type="FLAT", metric_type="IP")
    index.add_index(HEADING_VECTOR, index_type="FLAT", metric_type="IP")
    index.add_index(SPARSE, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    client.create_collection(
        name,
        schema=schema,
        index_params=index,
        consistency_level="Strong",
        properties={"rag.embedding_model": embedding_model, "rag.dim": str(dim), "rag.schema": "2"},
    )


def legacy_row(pk: str, text: str, vector: list[float], *, source: str, heading: str, **ints: int) -> dict[str, Any]:
    row: dict[str, Any] = {PK: pk, TEXT: text, VECTOR: vector, HEADING_VECTOR: vector}
    row.update({field: "" for field in METADATA_VARCHAR})
    row.update(source=source, title=source, heading=heading)
    row.update({field: ints.get(field, 0) for field in METADATA_INT})
    return row
