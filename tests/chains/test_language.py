"""The English-or-not verdict that decides which questions pay for a rewrite call.

English questions full of identifiers, short ones and non-questions must never come out foreign (each misfire is
a needless model call); foreign questions, identifiers included, must come out as their language.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chains.language import ENGLISH, detect_language, is_english, language_name

EVAL = Path(__file__).resolve().parents[2].parent / "shared" / "eval"

ENGLISH_QUESTIONS = [
    # identifiers, config keys, calls
    "mmap.enabled?",
    "IVF_FLAT nlist",
    "pip install pymilvus fails",
    "what does nprobe do",
    "MilvusClient.search limit",
    "how do I set efConstruction for HNSW",
    "consistency_level=Strong vs Bounded",
    "the o_direct flag on a query node",
    "is queryNode.gracefulTime in ms or seconds",
    "client.create_collection(collection_name='demo', dimension=768) raises",
    "Error: <MilvusException: (code=1, message=collection not found)>",
    "delete by expr id in [1,2,3]",
    "should I use IVF_PQ or IVF_SQ8 for 100M vectors",
    "bm25 in milvus 2.4?",
    # very short
    "hnsw?",
    "ok",
    "gpu index",
    "diskann",
    "sparse vs dense",
    "nprobe vs ef",
    "attu",
    # ordinary English that shares words with other languages
    "can I run milvus on a raspberry pi",
    "is there a limit on the number of partitions",
    "no index on a collection",
    "do a search",
    "what's the difference between IVF and HNSW",
    "how come my index is not built",
    "per-partition limits via the REST api",
    "es index vs milvus index",
    "la la land",
    "José's cluster crashed after the upgrade",
    "Café",
    "Vetor Search Tips",
    # a few words of another script inside an English question
    "how do I tokenize 你好世界 with the chinese analyzer",
    "how to set α and β in hybrid search",
    "latency in μs",
]

NOT_A_QUESTION = [
    "",
    "   ",
    "\n\t",
    "🙂",
    "👍👍🚀",
    "...",
    "?!",
    "¿?",
    "1234",
    "v2.4.5",
    "https://example.com/docs/setup.md",
    "`search_params`",
    "```python\nclient.search(collection_name='docs', data=[vec], limit=5)\n```",
    "from pymilvus import MilvusClient; MilvusClient('milvus.db').list_collections()",
]

FOREIGN_QUESTIONS = [
    ("pt", "como faço para criar uma coleção com chave primária do tipo string"),
    ("pt", "por que minha busca retorna resultados vazios"),
    ("pt", "preciso reindexar depois de apagar entidades?"),
    ("pt", "meu pymilvus não conecta no servidor"),
    ("es", "cómo creo una colección con un campo de texto"),
    ("es", "por qué mi búsqueda es tan lenta"),
    ("es", "¿cómo cambio el nivel de consistencia?"),
    ("fr", "comment créer une collection avec une clé primaire"),
    ("fr", "pourquoi ma recherche est-elle lente"),
    ("de", "wie erstelle ich eine Sammlung mit einem Primärschlüssel"),
    ("de", "warum ist meine Suche so langsam"),
    ("it", "perché la mia ricerca è lenta"),
    ("nl", "waarom is mijn zoekopdracht zo traag"),
    ("zh", "如何创建一个带主键的集合"),
    ("zh", "为什么我的搜索这么慢"),
    ("ja", "主キー付きのコレクションを作成するにはどうすればいいですか"),
    ("ja", "検索が遅いのはなぜですか"),
    ("ko", "기본 키가 있는 컬렉션을 어떻게 만드나요"),
    ("ru", "как создать коллекцию с первичным ключом"),
    ("uk", "чому пошук такий повільний"),
    ("ar", "كيف أنشئ مجموعة بمفتاح أساسي"),
    ("he", "למה החיפוש כל כך איטי"),
    ("hi", "मेरी खोज इतनी धीमी क्यों है"),
    ("th", "จะสร้างคอลเลกชันที่มีคีย์หลักได้อย่างไร"),
    ("el", "πώς δημιουργώ μια συλλογή με πρωτεύον κλειδί"),
]

MIXED_QUESTIONS = [
    ("pt", "como configurar o index HNSW no milvus"),
    ("pt", "o parâmetro nprobe afeta a latência do IVF_FLAT?"),
    ("pt", "onde fica o milvus.yaml quando uso docker compose"),
    ("es", "dónde está el archivo milvus.yaml en docker"),
    ("de", "wie setze ich mmap.enabled für eine collection"),
    ("zh", "如何在milvus中配置HNSW索引的efConstruction参数"),
    ("zh", "MilvusClient.search 的 limit 最大是多少"),
    ("ja", "milvusでHNSWインデックスを作成するには"),
    ("ko", "milvus에서 HNSW 인덱스를 만드는 방법"),
    ("ru", "что такое nprobe в IVF_FLAT"),
    ("ar", "ما هو milvus وكيف أستخدم pymilvus"),
    ("he", "איך מגדירים HNSW ב-milvus"),
]


@pytest.mark.parametrize("text", ENGLISH_QUESTIONS)
def test_english_questions_full_of_identifiers_stay_english(text: str) -> None:
    assert detect_language(text) == ENGLISH
    assert is_english(text)


@pytest.mark.parametrize("text", NOT_A_QUESTION)
def test_empty_emoji_punctuation_and_code_are_undetermined_which_is_english(text: str) -> None:
    assert detect_language(text) == ENGLISH
    assert is_english(text)


@pytest.mark.parametrize(("lang", "text"), FOREIGN_QUESTIONS + MIXED_QUESTIONS)
def test_foreign_questions_are_their_language(lang: str, text: str) -> None:
    assert detect_language(text) == lang
    assert not is_english(text)


def test_right_to_left_scripts_are_not_english() -> None:
    for text in ("ما الفرق بين FLAT و HNSW", "מה ההבדל בין FLAT ל-HNSW", "چگونه یک کالکشن بسازم"):
        assert not is_english(text), text
    assert detect_language("چگونه یک کالکشن بسازم") == "fa"


def test_a_long_chinese_question_is_chinese() -> None:
    text = "在 milvus 中如何为向量字段创建 HNSW 索引并设置 efConstruction 参数？" * 250
    assert len(text.encode()) > 10_000
    assert detect_language(text) == "zh"


def test_a_pasted_english_log_after_a_foreign_question_does_not_hide_it() -> None:
    text = "por que recebo este erro ao buscar?\n```\n" + "Traceback (most recent call last):\n" * 50 + "```"
    assert detect_language(text) == "pt"


def test_japanese_with_han_is_not_chinese_and_cyrillic_letters_pick_the_language() -> None:
    assert detect_language("インデックスの種類") == "ja"
    assert detect_language("як створити колекцію") == "uk"
    assert detect_language("как создать коллекцию") == "ru"


def test_language_name_for_prompts() -> None:
    assert language_name("pt") == "Portuguese"
    assert language_name("zh") == "Chinese"
    assert language_name("ZH") == "Chinese"
    assert language_name(ENGLISH) == "English"
    assert language_name("xx") == "xx"


def test_every_detected_code_has_a_name() -> None:
    for _, text in FOREIGN_QUESTIONS + MIXED_QUESTIONS:
        code = detect_language(text)
        assert language_name(code) != code, text


def _eval_rows(name: str) -> list[dict]:
    path = EVAL / name
    if not path.is_file():
        pytest.skip(f"{path} not found: the eval sets live in ../shared/eval beside the repo")
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_every_english_eval_question_is_english() -> None:
    english = [row["question"] for row in _eval_rows("dev.jsonl")]
    english += [row["english"] for row in _eval_rows("dev_multilingual.jsonl")]
    assert english
    assert [text for text in english if not is_english(text)] == []


def test_every_multilingual_eval_question_is_its_language() -> None:
    rows = _eval_rows("dev_multilingual.jsonl")
    assert rows
    wrong = [(row["lang"], detect_language(row["question"]), row["question"]) for row in rows]
    assert [item for item in wrong if item[0] != item[1]] == []
