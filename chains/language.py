"""Is this question English? Decides, offline and in microseconds, whether a question goes through the rewrite step.

The chain sends non-English questions (and only those) to a DeepSeek call that turns them into an English search
query, because the index and the embedding model are English. `is_english` is the single source of truth for that
choice; `detect_language` says which language it saw (for the rewrite prompt and for messages), `language_name`
spells a code out in English.

The costs are lopsided: calling an English question foreign costs one needless model call on every such question,
calling a foreign question English costs one badly retrieved answer. Most questions are English, so false positives
on English must be close to zero and "undetermined" means English: too short, only identifiers or code, only emoji
or punctuation.

How it decides:

- Non-Latin scripts by Unicode ranges: Han -> zh (kana present -> ja), Hangul -> ko, Cyrillic -> ru / uk / bg /
  sr / ..., Arabic script -> ar / fa / ur, Hebrew, Devanagari, Thai, Greek and a dozen more. A script wins when
  it carries more words than the English function words around it, so "milvus 的分区有什么用" is Chinese while
  "how do I tokenize 你好世界 with the chinese analyzer" stays English.
- Latin-script languages by function words (stop words: "o", "que", "não", "el", "der", "het", ...), by words of
  Milvus questions that are not English ("coleção", "búsqueda", "vetores"), and by the letters a language owns
  (ã, ñ, ß, ř, ơ, ...), after dropping identifiers and code (`IVF_FLAT`, `mmap.enabled`, `MilvusClient.search`,
  `efConstruction`, backticks, URLs). Technical words are the same in every language; function words are what
  tell a Portuguese question that happens to contain "index HNSW milvus" from an English one. A foreign language
  needs two distinct hits and more than English has, or, with no English word at all, one long listed word
  ("vetores esparsos?").
- Only the first `MAX_SCAN_CHARS` characters are read, so a 10 KB question costs what a 1 KB one does.

Why no PyPI detector: the general-purpose ones are trained on prose and guess on short technical questions, which
is exactly the false positive this module must not make. Checked with py3langid 0.4.0 (the fast numpy one): of
"mmap.enabled?", "IVF_FLAT nlist", "pip install pymilvus fails", "MilvusClient.search limit", "hnsw?", "ok",
"gpu index" it called every one something other than English (zu, yo, la, se, de, af, id), and it takes 0.7 s to
load its model on first use. langdetect is slower and random unless seeded, lingua-language-detector is a large
download of models, the fastText-based ones fetch a model at run time. The question here is binary, in a known
domain, with lopsided costs; the rules above answer it with the standard library.

Limits: a Latin-script language without word lists here (Finnish, Hungarian, ...) comes out "en", and so does a
foreign question whose only clue is one short word ("o hnsw?", "erro hnsw"): undetermined means English.
`scripts/language_check.py` measures both error rates on the project's eval sets and docs.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from functools import cache

__all__ = ["ENGLISH", "MAX_SCAN_CHARS", "detect_language", "is_english", "language_name"]

# A question's language shows in its first sentences; the cap keeps a pasted log or a 10 KB question cheap.
MAX_SCAN_CHARS = 1000
# Code blocks are cut out before the cap is applied (a question may start with a pasted snippet), from at most this.
_MAX_RAW_CHARS = 4000

# What `detect_language` returns for English and for undetermined text.
ENGLISH = "en"

_NAMES = {
    "en": "English",
    "pt": "Portuguese",
    "es": "Spanish",
    "fr": "French",
    "de": "German",
    "it": "Italian",
    "nl": "Dutch",
    "pl": "Polish",
    "tr": "Turkish",
    "vi": "Vietnamese",
    "sv": "Swedish",
    "id": "Indonesian",
    "ro": "Romanian",
    "cs": "Czech",
    "zh": "Chinese",
    "ja": "Japanese",
    "ko": "Korean",
    "ru": "Russian",
    "uk": "Ukrainian",
    "bg": "Bulgarian",
    "sr": "Serbian",
    "mk": "Macedonian",
    "be": "Belarusian",
    "kk": "Kazakh",
    "ar": "Arabic",
    "fa": "Persian",
    "ur": "Urdu",
    "he": "Hebrew",
    "hi": "Hindi",
    "bn": "Bengali",
    "pa": "Punjabi",
    "gu": "Gujarati",
    "or": "Odia",
    "ta": "Tamil",
    "te": "Telugu",
    "kn": "Kannada",
    "ml": "Malayalam",
    "si": "Sinhala",
    "th": "Thai",
    "lo": "Lao",
    "km": "Khmer",
    "my": "Burmese",
    "bo": "Tibetan",
    "ka": "Georgian",
    "hy": "Armenian",
    "am": "Amharic",
    "el": "Greek",
}

# ---- non-Latin scripts ---------------------------------------------------------------------------------------

# script -> (letters, language, characters per word for scripts written without spaces, else 0 = count runs)
_SCRIPTS: dict[str, tuple[str, str, float]] = {
    "han": ("\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f", "zh", 2.0),
    "kana": ("\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff\u31f0-\u31ff\uff66-\uff9f", "ja", 2.0),
    "hangul": ("\uac00-\ud7af\u1100-\u11ff\u3131-\u318e\ua960-\ua97f\ud7b0-\ud7ff", "ko", 0),
    "cyrillic": ("\u0400-\u0482\u048a-\u052f", "ru", 0),
    "greek": ("\u0386\u0388-\u03ff\u1f00-\u1fff", "el", 0),
    "arabic": ("\u0620-\u065f\u066e-\u06d3\u06d5\u06ee\u06ef\u06fa-\u06fc\u06ff\u0750-\u077f\u08a0-\u08ff"
               "\ufb50-\ufdff\ufe70-\ufefc", "ar", 0),
    "hebrew": ("\u0591-\u05bd\u05bf-\u05c7\u05d0-\u05f2\ufb1d-\ufb4f", "he", 0),
    "armenian": ("\u0531-\u0556\u0561-\u0587", "hy", 0),
    "devanagari": ("\u0900-\u0963\u0966-\u097f\ua8e0-\ua8ff", "hi", 0),
    "bengali": ("\u0980-\u09ff", "bn", 0),
    "gurmukhi": ("\u0a00-\u0a7f", "pa", 0),
    "gujarati": ("\u0a80-\u0aff", "gu", 0),
    "oriya": ("\u0b00-\u0b7f", "or", 0),
    "tamil": ("\u0b80-\u0bff", "ta", 0),
    "telugu": ("\u0c00-\u0c7f", "te", 0),
    "kannada": ("\u0c80-\u0cff", "kn", 0),
    "malayalam": ("\u0d00-\u0d7f", "ml", 0),
    "sinhala": ("\u0d80-\u0dff", "si", 0),
    "thai": ("\u0e01-\u0e3a\u0e40-\u0e4e", "th", 4.0),
    "lao": ("\u0e80-\u0eff", "lo", 4.0),
    "tibetan": ("\u0f00-\u0fff", "bo", 4.0),
    "myanmar": ("\u1000-\u109f", "my", 4.0),
    "georgian": ("\u10a0-\u10ff\u1c90-\u1cbf", "ka", 0),
    "ethiopic": ("\u1200-\u137f", "am", 0),
    "khmer": ("\u1780-\u17ff", "km", 4.0),
}

# Letters that single out one language among those sharing a script.
_CYRILLIC_HINTS = (
    ("sr", "ђјљњћџ"),
    ("mk", "ѓќѕ"),
    ("kk", "әғқңөұүһ"),
    ("be", "ў"),
)
_RUSSIAN_ONLY = set("ыэё")
_UKRAINIAN_ONLY = set("іїєґ")
_PERSIAN = set("پچژگکی")
_URDU = set("ٹڈڑںےہ")

# ---- Latin script ----------------------------------------------------------------------------------------------

# Common English words of questions. A foreign language must beat this count, so words that English shares with a
# foreign list ("a", "do", "no", "is", "in", "as") are here too.
_EN_WORDS = """
a about above after again against all also am an and any are aren as at be because been before being below
between both but by can cannot could couldn d did didn do does doesn doing don down during each either else
every few for from further get gets getting got had hasn has have haven having he her here hers him his how i
if in into is isn it its itself just least less ll m many may me might more most much must my need needs no nor
not now of off on once one only or other our out over own per please re same shall she should shouldn since so
some such t than that the their them then there these they this those through to too under until up upon us
use used uses using ve very via was wasn we were weren what whats when where whether which while who whom whose
why will with within without won would wouldn yes yet you your s
""".split()

# English words of the Milvus domain. They do not count against a foreign language (a Portuguese question says
# "index" too), but one of them next to a lone foreign-looking word keeps a question English ("Vetor Search Tips").
_EN_DOMAIN = """
build client cluster collection collections config configuration create data database delete deploy dense disk
drop embedding embeddings entities entity error errors field fields file files filter hybrid index indexes indices
insert install key keys limit load memory metric node nodes partition partitions performance primary queries query
release role schema search searches segment segments server sparse support type types upsert user users vector
vectors version
""".split()

# Function words (and a few very common question verbs) per language. Words that are also common English
# ("do", "no", "a", "in", "is", "was", "on", "as") may appear: English counts them too.
_FOREIGN_WORDS: dict[str, str] = {
    "pt": """
a à ao aos as às até com como da das de depois do dos durante e é ela ele eles em entre essa esse esta está
estão estar este eu faço fazer foi foram há isso já mais mas me meu meus minha minhas muito na não nas no nos
num numa o onde os ou para pela pelas pelo pelos pode podem porque posso preciso qual quais quando que quem se
sem ser seu sobre sua são também tem têm ter um uma umas uns vou você vocês
""",
    "es": """
a al algo como cómo con cual cuál cuales cuáles cuando cuándo de debo del desde donde dónde el él en entre es
esta está están este esto hay hacer la las le lo los más me mi mis muy necesito no nos o para pero por porque
puede pueden puedo qué que se sin sobre son su sus también tengo un una unas uno unos usar y ya yo
""",
    "fr": """
à au aux avec c ce ces cet cette comment d dans de des du elle en est et être faire il ils j je l la le les
leur lui mais me mes mon n ne nous on ou où par pas peut peux pour pourquoi puis qu quand que quel quelle quels
quelles qui quoi s sa sans se ses si son sont sur ta te tes ton un une vous y
""",
    "de": """
auch auf aus bei bin bis da das dass dem den der des die du ein eine einem einen einer eines es für gibt habe
hat ich ihr im in ist kann kein keine man mein meine mich mir mit muss nach nicht noch oder ohne sich sie sind
so über um und uns von vor warum was welche welcher welches wenn wie wir wird wo zu zum zur
""",
    "it": """
a al alla alle anche che chi ci come con cosa da dal dalla dei del della delle di dove e è gli ha hanno ho i
il in la le lo ma mi mio mia ne nei nel nella non o per perché più posso può puoi quale quali quando questa
questo se si sono su sul sulla un una uno
""",
    "nl": """
aan als bij dan dat de die dit door een en er geen het hoe ik in is je kan kun kunnen maar met mijn moet naar
niet nog of om ook op over te tot u uit van voor waar waarom wanneer wat welke wij wordt worden ze zijn
""",
    "pl": """
a ale aby być co czy dla do gdzie i jak jaki jaka jakie jest jeśli już ma mam mogę może na nie o od po przez
się są tak to w we z za że
""",
    "tr": """
ama bir bu da daha de değil gibi için ile kadar mı mi mu mü nasıl ne neden nedir o var ve veya ya yok
""",
    "vi": """
bao các cách cho có của để được gì không khi là làm một nào này những như thế trong và với
""",
    "sv": """
att av det där den en ett finns för hur inte jag kan med men när och om på som till vad varför vilken är
""",
    "id": """
ada adalah akan apa apakah bagaimana bisa cara dalam dan dari dengan di ini itu ke mengapa pada saya tidak untuk
yang
""",
    "ro": """
cu cum de din este în la nu o pe pentru pot se și un una sunt care ce
""",
    "cs": """
a ale co do jak je jsou k na nebo od po pro proč s se v ve z že
""",
}

# Words of Milvus questions that are not English, per language: a short question is often a noun phrase with one
# function word or none ("suporte ao arm64", "vetores esparsos?"). Counted like function
# words; never an English word or an identifier ("vector", "index", "data", "version", "collection" are absent).
_FOREIGN_CONTENT: dict[str, str] = {
    "pt": """
arquivo arquivos banco buscar busca buscas campo campos chave coleção coleções configuração configurar consulta
consultas consigo criar dados desempenho diferença entidade entidades erro erros existe funciona índice índices
inserir instalação instalar lenta lento memória partição partições preciso servidor suporte tabela tamanho
usar vetor vetores vetorial versão
""",
    "es": """
archivo archivos buscar búsqueda búsquedas campo campos clave colección colecciones configuración configurar
consulta consultas crear datos diferencia entidad entidades errores existe funciona índice índices insertar
instalación instalar lenta lento memoria necesita necesito partición rendimiento servidor soporte tabla tamaño
usar vectores vectorial versión
""",
    "fr": """
champ champs clé configurer créer données erreur erreurs fichier fichiers fonctionne installer mémoire
recherche requête requêtes serveur taille utiliser vecteur vecteurs
""",
    "de": """
abfrage abfragen brauche daten datei dateien erstellen fehler feld felder funktioniert größe installieren
konfigurieren langsam sammlung schlüssel schnell speicher suche unterschied verwenden vektor vektoren
""",
    "it": """
chiave collezione configurare creare dati differenza dimensione errore errori funziona installare memoria
ricerca usare vettore vettori
""",
    "nl": """
bestand fout fouten gebruiken geheugen gegevens installeren maken sleutel traag verschil verzameling werkt
zoeken
""",
}
# A word with this ending counts for these languages ("rapidamente").
_SUFFIX_LANGS = (("mente", frozenset({"pt", "es", "it"})),)
# One listed word this long, with no English word beside it, is enough ("vetores esparsos?").
_STRONG_WORD = 5
# A word counts 1 for each language whose list has it, a word that only has a language's letters counts half
# ("Café" in an English heading is not French).
_LETTER_WEIGHT = 0.5

# Letters that only some Latin-script languages use: a word carrying one counts for those languages.
_LETTER_LANGS: dict[str, str] = {
    "ã": "pt vi",
    "õ": "pt",
    "ç": "pt fr tr",
    "ñ": "es",
    "á": "pt es cs vi",
    "é": "pt es fr it cs vi",
    "í": "pt es cs vi",
    "ó": "pt es pl cs vi",
    "ú": "pt es cs vi",
    "â": "pt fr ro vi",
    "ê": "pt fr vi",
    "ô": "pt fr vi",
    "à": "pt fr it vi",
    "è": "fr it vi",
    "ì": "it vi",
    "ò": "it vi",
    "ù": "fr it vi",
    "ë": "fr nl",
    "ï": "fr nl",
    "î": "fr ro",
    "û": "fr",
    "œ": "fr",
    "ä": "de sv",
    "ö": "de sv tr",
    "ü": "de tr",
    "ß": "de",
    "å": "sv",
    "ą": "pl",
    "ę": "pl",
    "ł": "pl",
    "ń": "pl",
    "ś": "pl",
    "ź": "pl",
    "ż": "pl",
    "ı": "tr",
    "ğ": "tr",
    "ş": "tr ro",
    "ș": "ro",
    "ț": "ro",
    "ţ": "ro",
    "ă": "ro vi",
    "ř": "cs",
    "ě": "cs",
    "ů": "cs",
    "č": "cs",
    "š": "cs",
    "ž": "cs",
    "ý": "cs vi",
    "đ": "vi",
    "ơ": "vi",
    "ư": "vi",
}
# Order for ties between foreign languages: the ones users of these docs write most first.
_LATIN_ORDER = ("pt", "es", "fr", "de", "it", "nl", "pl", "tr", "vi", "sv", "id", "ro", "cs")
_MIN_FOREIGN_HITS = 2


@dataclass(frozen=True)
class _Tables:
    code: re.Pattern[str]
    identifiers: re.Pattern[str]
    word: re.Pattern[str]
    nonlatin: re.Pattern[str]
    kana: re.Pattern[str]
    range_starts: list[int]
    range_scripts: list[tuple[int, str]]
    en_words: frozenset[str]
    en_domain: frozenset[str]
    word_langs: dict[str, frozenset[str]]
    letter_langs: dict[str, frozenset[str]]


def _char_ranges(letters: str) -> list[tuple[int, int]]:
    """`"a-cx"` -> [(ord("a"), ord("c")), (ord("x"), ord("x"))]: the script tables as code point ranges."""
    ranges, i = [], 0
    while i < len(letters):
        if i + 2 < len(letters) and letters[i + 1] == "-":
            ranges.append((ord(letters[i]), ord(letters[i + 2])))
            i += 3
        else:
            ranges.append((ord(letters[i]), ord(letters[i])))
            i += 1
    return ranges


@cache
def _tables() -> _Tables:
    """Built on first use, not at import (the CLI imports the chain before it knows it will need this)."""
    word_langs: dict[str, set[str]] = {}
    for lists in (_FOREIGN_WORDS, _FOREIGN_CONTENT):
        for lang, words in lists.items():
            for word in words.split():
                word_langs.setdefault(word, set()).add(lang)
    ranges = sorted(
        (start, end, name) for name, (letters, _, _) in _SCRIPTS.items() for start, end in _char_ranges(letters)
    )
    return _Tables(
        # fenced blocks (closed or not), inline code, URLs; bounded, so a long run without spaces stays linear
        code=re.compile(r"```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)|`[^`\n]*`|\b[A-Za-z][A-Za-z0-9+.-]{1,15}://\S+", re.S),
        # whitespace-separated chunks that a programmer wrote rather than words: underscores, slashes, operators,
        # inner dots, calls, digits, camelCase, --flags. Anchored at chunk starts so the scan stays linear.
        identifiers=re.compile(r"(?<!\S)(?:-|\S*?(?:[_/\\=<>|$#@%^&*+~]|\w\.\w|\w\(|\d|[a-z][A-Z]))\S*"),
        # Latin letters only (ASCII, Latin-1, Extended-A/B, Vietnamese): other scripts are counted by script
        word=re.compile("[A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff]+"),
        nonlatin=re.compile("[" + "".join(letters for letters, _, _ in _SCRIPTS.values()) + "]+"),
        kana=re.compile(f"[{_SCRIPTS['kana'][0]}]+"),
        range_starts=[start for start, _, _ in ranges],
        range_scripts=[(end, name) for _, end, name in ranges],
        en_words=frozenset(_EN_WORDS),
        en_domain=frozenset(_EN_DOMAIN),
        word_langs={word: frozenset(langs) for word, langs in word_langs.items()},
        letter_langs={letter: frozenset(langs.split()) for letter, langs in _LETTER_LANGS.items()},
    )


def detect_language(text: str) -> str:
    """The language of a question as a lowercase ISO 639-1 code; "en" for English and for undetermined.

    Undetermined (empty, emoji, punctuation, code, identifiers, a word or two) is "en" because the only decision
    that hangs on this is whether to pay for a rewrite call, and an English question must never pay for one. Any
    other code means "foreign, rewrite it", and names the language for the rewrite prompt.
    """
    if not text or text.isspace():
        return ENGLISH
    tables = _tables()
    sample = text[:_MAX_RAW_CHARS]
    if "`" in sample or "~~~" in sample or "://" in sample:
        sample = tables.code.sub(" ", sample)
    sample = sample[:MAX_SCAN_CHARS]
    if not sample.isascii():
        sample = unicodedata.normalize("NFC", sample)
    words = _latin_words(sample, tables)
    en_hits = sum(word in tables.en_words for word in words)
    if not sample.isascii():
        script_lang = _script_language(sample, tables, en_hits)
        if script_lang is not None:
            return script_lang
    return _latin_language(set(words), sample, tables)


def is_english(text: str) -> bool:
    """True unless the question is confidently in another language: the chain's one test for "rewrite or not"."""
    return detect_language(text) == ENGLISH


def language_name(code: str) -> str:
    """The English name of a code from `detect_language` ("pt" -> "Portuguese"), for prompts and messages.

    An unknown code comes back unchanged, so a caller can always put the result in a sentence.
    """
    return _NAMES.get(code.lower(), code)


def _latin_words(sample: str, tables: _Tables) -> list[str]:
    """Lowercased words of the text, without the chunks that are identifiers, paths, numbers or flags.

    Identifiers are dropped before words are split out of them, or `o_direct` would count as the Portuguese "o".
    Chunks in scripts written without spaces ("在milvus中配置HNSW索引") may be dropped whole here; they are counted
    by script, not by words.
    """
    return tables.word.findall(tables.identifiers.sub(" ", sample).lower())


def _script_language(sample: str, tables: _Tables, en_hits: int) -> str | None:
    """The language of the non-Latin script that outweighs the English words around it, if one does."""
    letters: dict[str, int] = {}
    runs: dict[str, int] = {}
    longest: dict[str, int] = {}
    for run in tables.nonlatin.findall(sample):
        # A run is one script in practice; Japanese mixes Han and kana, which are weighed together below.
        i = bisect_right(tables.range_starts, ord(run[0])) - 1
        name = tables.range_scripts[i][1]
        if name == "kana":
            name = "han"
        letters[name] = letters.get(name, 0) + len(run)
        runs[name] = runs.get(name, 0) + 1
        longest[name] = max(longest.get(name, 0), len(run))
    if not letters:
        return None

    def weight(name: str) -> float:
        chars_per_word = _SCRIPTS[name][2]
        return letters[name] / chars_per_word if chars_per_word else runs[name]

    best = max(letters, key=weight)
    # One stray letter (a Greek "α" for a parameter, a "μs") is not a language.
    if letters[best] < 2 or longest[best] < 2 or weight(best) <= en_hits:
        return None
    if best == "han":
        kana = sum(map(len, tables.kana.findall(sample)))
        # Japanese always has kana among its Han; a Chinese text quoting one katakana name is still Chinese.
        return "ja" if kana * 10 >= letters[best] else "zh"
    if best == "cyrillic":
        return _cyrillic_language(sample)
    if best == "arabic":
        chars = set(sample)
        if chars & _URDU:
            return "ur"
        return "fa" if chars & _PERSIAN else "ar"
    return _SCRIPTS[best][1]


def _cyrillic_language(sample: str) -> str:
    """Russian unless letters that Russian lacks say otherwise."""
    chars = set(sample.lower())
    for lang, hints in _CYRILLIC_HINTS:
        if chars & set(hints):
            return lang
    if chars & _UKRAINIAN_ONLY and not chars & _RUSSIAN_ONLY:
        return "uk"
    if "ъ" in chars and not chars & _RUSSIAN_ONLY:
        return "bg"
    return "ru"


def _latin_language(words: set[str], sample: str, tables: _Tables) -> str:
    """The foreign language with the most listed-word or own-letter hits, if it has enough and beats English.

    Enough is two hits, or one long listed word in a question with no English word at all. Distinct words count,
    so a repeated word is one hit ("la la land").
    """
    en_hits = len(words & tables.en_words)
    english_nearby = en_hits > 0 or not words.isdisjoint(tables.en_domain)
    hits: dict[str, float] = {}
    strong: set[str] = set()
    for word in words:
        langs = tables.word_langs.get(word, frozenset())
        for suffix, suffix_langs in _SUFFIX_LANGS:
            if len(word) > len(suffix) + 2 and word.endswith(suffix):
                langs = langs | suffix_langs
        if len(word) >= _STRONG_WORD and word not in tables.en_words:
            strong.update(langs)
        if not word.isascii():
            own = _letter_languages(word, tables)
            for lang in own - langs if own else ():
                hits[lang] = hits.get(lang, 0) + _LETTER_WEIGHT
        for lang in langs:
            hits[lang] = hits.get(lang, 0) + 1
    if "¿" in sample or "¡" in sample:
        hits["es"] = hits.get("es", 0) + 1
    if not hits:
        return ENGLISH
    best = max(_LATIN_ORDER, key=lambda lang: (hits.get(lang, 0), -_LATIN_ORDER.index(lang)))
    score = hits.get(best, 0)
    if score <= en_hits:
        return ENGLISH
    if score >= _MIN_FOREIGN_HITS or (not english_nearby and best in strong):
        return best
    return ENGLISH


def _letter_languages(word: str, tables: _Tables) -> frozenset[str] | None:
    """The languages whose alphabet has every special letter of the word; None if it has none."""
    langs: frozenset[str] | None = None
    for char in word:
        own = tables.letter_langs.get(char)
        if own is not None:
            langs = own if langs is None else langs & own
        elif "\u1ea0" <= char <= "\u1ef9":  # Vietnamese vowels with stacked tone marks
            langs = frozenset({"vi"}) if langs is None else langs & {"vi"}
    return langs
