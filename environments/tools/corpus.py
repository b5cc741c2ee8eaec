"""A seeded encyclopedia of fictional entities for offline multi-hop research.

Tool-using agents in the ``tools`` family answer questions by calling
``search(query)`` and ``open(title)`` over this corpus. Everything in it is
invented from a seed (syllable-generated names, random facts), so no language
model can know an answer in advance and every question has exactly one
verifiable answer: all entity-valued relations are FUNCTIONAL (each subject
has exactly one value per relation).

Kinds (share of the documents)::

    person 36%  city 14%  book 14%  company 12%  mountain 8%  river 7%
    university 6%  country 3%

Entity relations (the graph multi-hop questions walk)::

    person.born_in -> city            person.employer -> company
    person.alma_mater -> university   city.country -> country
    country.capital -> city           company.founder -> person
    company.headquarters -> city      university.city -> city
    book.author -> person             river.source_country -> country
    mountain.located_in -> country

plus numeric and text attributes (see ``RELATIONS``). Relation names are
globally unique, so a path like ``"founder.born_in.country"`` is unambiguous;
that is why the mountain's country relation is ``located_in``.

Consistency rules keep the world plausible: a country's capital lies in that
country, a founder was born before founding, an author before publishing;
every person founds at most one company.

Each entity gets one :class:`Document` whose text states every fact of the
entity with linked entities named exactly, plus true "inverse" sentences
(people born in a city, books by an author) and filler sentences that mention
random other entities as distractors.
"""
from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass, field

# relation -> (subject kind, object kind | "number" | "text", noun phrase).
# The phrase describes the OBJECT given a description ``{x}`` of the subject;
# questions.py nests these phrases to write compositional questions, so they
# are "the ... of {x}" phrases: those nest without centre-embedding.
RELATIONS: dict[str, tuple[str, str, str]] = {
    # person
    "born_in": ("person", "city", "the birthplace of {x}"),
    "employer": ("person", "company", "the employer of {x}"),
    "alma_mater": ("person", "university", "the alma mater of {x}"),
    "birth_year": ("person", "number", "the year {x} was born"),
    "occupation": ("person", "text", "the occupation of {x}"),
    # city
    "country": ("city", "country", "the country of {x}"),
    "population": ("city", "number", "the population of {x}"),
    # country
    "capital": ("country", "city", "the capital of {x}"),
    "currency": ("country", "text", "the currency of {x}"),
    "language": ("country", "text", "the main language of {x}"),
    # company
    "founder": ("company", "person", "the founder of {x}"),
    "headquarters": ("company", "city", "the headquarters city of {x}"),
    "founded_year": ("company", "number", "the year {x} was founded"),
    "industry": ("company", "text", "the industry of {x}"),
    # university
    "city": ("university", "city", "the home city of {x}"),
    "established_year": ("university", "number", "the year {x} was established"),
    # book
    "author": ("book", "person", "the author of {x}"),
    "publication_year": ("book", "number", "the year {x} was published"),
    "genre": ("book", "text", "the genre of {x}"),
    # river
    "source_country": ("river", "country", "the source country of {x}"),
    "length_km": ("river", "number", "the length of {x} in kilometres"),
    # mountain
    "located_in": ("mountain", "country", "the country of {x}"),
    "height_m": ("mountain", "number", "the height of {x} in metres"),
}

# Fixed proportions of the requested document count (sum to 1).
KIND_SHARES: dict[str, float] = {
    "person": 0.36, "city": 0.14, "book": 0.14, "company": 0.12,
    "mountain": 0.08, "river": 0.07, "university": 0.06, "country": 0.03,
}
KINDS = tuple(KIND_SHARES)
# Every kind gets at least this many entities, so that each relation has a
# subject and questions exist even for a tiny corpus.
MIN_PER_KIND = 3

# ---------------------------------------------------------------- name parts
# Simple onsets/vowels/codas (repeats act as weights) keep names short and
# pronounceable: "Orla Venmark", "Tarsvik", "Velmoria".
_ONSETS = ("b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
           "br", "dr", "kr", "st", "tr", "th", "sh", "", "", "")
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "y", "ae", "ou")
_CODAS = ("", "", "", "", "n", "r", "l", "s", "m", "k", "rn", "nd", "st")
_CITY_SUFFIX = ("vik", "holm", "burg", "ford", "mere", "stad", "port", "ton", "grad", "wick", "dal")
_COUNTRY_SUFFIX = ("ia", "oria", "land", "stan", "mar", "ora", "enia", "avia")
_FAMILY_SUFFIX = ("mark", "sen", "ley", "ov", "ard", "wyn", "strom", "ez", "ani", "berg")
# Industry-neutral suffixes, so a name never contradicts the industry fact.
_COMPANY_SUFFIX = ("Systems", "Dynamics", "Works", "Labs", "Industries", "Holdings",
                   "Group", "Partners", "Corporation", "Enterprises")
_UNIVERSITY_PATTERNS = ("{w} University", "{w} Institute of Technology", "{w} College",
                        "{w} Polytechnic", "Royal Academy of {w}")
_RIVER_PATTERNS = ("{w} River",)
_MOUNTAIN_PATTERNS = ("Mount {w}", "{w} Peak")
_BOOK_ADJ = ("Silent", "Crimson", "Hollow", "Gilded", "Drowned", "Lantern-lit", "Broken",
             "Winter", "Amber", "Distant", "Sleeping", "Iron", "Paper", "Salt", "Burning",
             "Quiet", "Velvet", "Forgotten", "Northern", "Glass", "Wandering", "Last",
             "Seventh", "Hidden", "Copper", "Bitter", "Painted", "Restless", "Pale", "Shifting")
_BOOK_NOUN = ("Orchard", "Lantern", "Harbour", "Cartographer", "Tide", "Mirror", "Engine",
              "Archive", "Meridian", "Choir", "Lighthouse", "Garden", "Labyrinth", "Falconer",
              "Observatory", "Ferryman", "Compass", "Atlas", "Bellfounder", "Orchid",
              "Kingdom", "Clockmaker", "Vineyard", "Pilgrim", "Tapestry", "Ember",
              "Monastery", "Weaver", "Horizon", "Sextant")
_BOOK_PATTERNS = ("The {a} {n}", "The {n} of {w}", "The {w} {n}", "{n} for {w}")
# Function words ignored when checking that two names differ as token sets.
_NAME_GLUE = frozenset({"the", "a", "an", "of", "for"})

# ----------------------------------------------------------- text attributes
_OCCUPATIONS = ("engineer", "cartographer", "architect", "botanist", "economist", "journalist",
                "surgeon", "composer", "geologist", "translator", "historian", "chemist",
                "painter", "diplomat", "astronomer", "linguist", "sculptor", "pilot",
                "lawyer", "mathematician", "novelist", "photographer", "veterinarian", "chef")
_INDUSTRIES = ("shipbuilding", "software", "mining", "textile", "aerospace", "pharmaceutical",
               "agricultural", "telecommunications", "publishing", "logistics", "brewing",
               "robotics", "insurance", "renewable energy", "semiconductor", "furniture")
_GENRES = ("novel", "poetry collection", "travel memoir", "biography", "historical novel",
           "play", "short story collection", "philosophical treatise", "mystery novel",
           "field guide", "epic poem", "science fiction novel")
_CURRENCY_UNITS = ("crown", "mark", "florin", "talar", "ducat", "sol", "real", "dram")
_LANGUAGE_SUFFIX = ("ic", "ese", "ish", "i", "an")


@dataclass(frozen=True)
class Document:
    """One encyclopedia article: a single entity and every fact about it."""
    id: str                      # "d00042": position in Corpus.documents
    title: str                   # the entity name
    kind: str                    # one of KINDS
    text: str
    links: tuple[str, ...]       # titles of the entities mentioned in text


@dataclass
class Corpus:
    seed: int
    documents: list[Document]
    facts: dict[str, dict[str, str]]          # title -> relation -> value
    # Lookup tables (derived, not part of equality).
    _by_id: dict[str, Document] = field(init=False, repr=False, compare=False)
    _by_title: dict[str, Document] = field(init=False, repr=False, compare=False)
    _by_folded: dict[str, Document] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_id = {d.id: d for d in self.documents}
        self._by_title = {d.title: d for d in self.documents}
        self._by_folded = {d.title.casefold(): d for d in self.documents}

    def doc(self, id_or_title: str) -> Document | None:
        """Document by id ("d00042"), exact title or case-insensitive title."""
        if not isinstance(id_or_title, str):
            return None
        key = id_or_title.strip()
        return (self._by_id.get(key) or self._by_title.get(key)
                or self._by_folded.get(key.casefold()))

    def value(self, entity: str, relation: str) -> str:
        """The value of ``relation`` for ``entity`` (KeyError if either is unknown)."""
        d = self.doc(entity)
        if d is None:
            raise KeyError(f"unknown entity {entity!r}")
        return self.facts[d.title][relation]

    def kind(self, entity: str) -> str:
        d = self.doc(entity)
        if d is None:
            raise KeyError(f"unknown entity {entity!r}")
        return d.kind

    def titles(self, kind: str) -> list[str]:
        """Titles of all entities of ``kind``, in document order."""
        return [d.title for d in self.documents if d.kind == kind]


# ------------------------------------------------------------------- names
_TOKEN = re.compile(r"\w+")
_VOWEL_RUN = re.compile(r"[aeiouy]{3}")     # "saeaern" is unpronounceable


class _Namer:
    """Unique, pronounceable names.

    Names are unique as strings AND as token sets (``Silent Lantern`` vs
    ``Lantern Silent`` cannot coexist), and the invented "core" word of a
    place/company/etc. is used by exactly one entity, so a BM25 search for a
    full name has one clearly best document.
    """

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used_keys: set[frozenset[str]] = set()
        self.used_words: set[str] = set()     # invented core words, one owner each
        self.given: list[str] = []            # a pool of given names, shared by people

    def word(self, syllables: tuple[int, int] = (2, 3)) -> str:
        """A fresh invented word that no other entity has used as its core."""
        rng = self.rng
        while True:
            n = rng.randint(*syllables)
            w = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
                        for _ in range(n))
            if 4 <= len(w) <= 9 and not _VOWEL_RUN.search(w) and w not in self.used_words:
                self.used_words.add(w)
                return w.capitalize()

    def _claim(self, name: str) -> bool:
        key = frozenset(t.lower() for t in _TOKEN.findall(name)) - _NAME_GLUE
        if key in self.used_keys:
            return False
        self.used_keys.add(key)
        return True

    def make(self, kind: str) -> str:
        rng = self.rng
        while True:
            if kind == "person":
                # Given names repeat across people (as in real life); family
                # names are fresh words, which keeps full names distinctive.
                if len(self.given) < 60 or rng.random() < 0.05:
                    self.given.append(self.word((2, 2)))
                given = rng.choice(self.given)
                name = f"{given} {self.word((1, 2))}{rng.choice(_FAMILY_SUFFIX)}"
            elif kind == "city":
                name = self.word((1, 2)) + rng.choice(_CITY_SUFFIX)
            elif kind == "country":
                name = self.word((1, 2)).rstrip("aeiouy") + rng.choice(_COUNTRY_SUFFIX)
            elif kind == "company":
                name = f"{self.word()} {rng.choice(_COMPANY_SUFFIX)}"
            elif kind == "university":
                name = rng.choice(_UNIVERSITY_PATTERNS).format(w=self.word())
            elif kind == "river":
                name = rng.choice(_RIVER_PATTERNS).format(w=self.word())
            elif kind == "mountain":
                name = rng.choice(_MOUNTAIN_PATTERNS).format(w=self.word())
            elif kind == "book":
                pattern = rng.choice(_BOOK_PATTERNS)
                w = self.word() if "{w}" in pattern else ""
                name = pattern.format(a=rng.choice(_BOOK_ADJ), n=rng.choice(_BOOK_NOUN), w=w)
            else:
                raise ValueError(kind)
            if self._claim(name):
                return name


# ------------------------------------------------------------------ corpus
def _counts(n_documents: int) -> dict[str, int]:
    counts = {k: max(MIN_PER_KIND, round(n_documents * s)) for k, s in KIND_SHARES.items()}
    # Each country needs its own capital; each company its own founder.
    counts["city"] = max(counts["city"], counts["country"])
    counts["person"] = max(counts["person"], counts["company"])
    return counts


def _a(word: str) -> str:
    """Indefinite article + word ("an engineer", "a novel")."""
    return ("an " if word[0] in "aeiou" else "a ") + word


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def generate_corpus(seed: int = 0, n_documents: int = 2000) -> Corpus:
    """Build the corpus for ``seed``: deterministic, about ``n_documents`` documents."""
    rng = random.Random(seed)          # int seeds are not hashed: stable across runs
    namer = _Namer(rng)
    counts = _counts(n_documents)
    names = {k: [namer.make(k) for _ in range(counts[k])] for k in KINDS}
    facts: dict[str, dict[str, str]] = {n: {} for k in KINDS for n in names[k]}
    P, C, K, O, U, B, R, M = (names[k] for k in
                              ("person", "city", "country", "company", "university",
                               "book", "river", "mountain"))

    # --- places. The first len(K) cities are the capitals, one per country.
    for i, city in enumerate(C):
        country = K[i] if i < len(K) else rng.choice(K)
        facts[city]["country"] = country
        # Roughly log-uniform between 2 thousand and 5 million; capitals larger.
        pop = int(10 ** rng.uniform(3.3, 6.7 if i >= len(K) else 6.9))
        facts[city]["population"] = str(pop)
    for i, country in enumerate(K):
        facts[country]["capital"] = C[i]
        facts[country]["currency"] = f"{namer.word((1, 2))} {rng.choice(_CURRENCY_UNITS)}"
        facts[country]["language"] = namer.word((1, 2)).rstrip("aeiouy") + rng.choice(_LANGUAGE_SUFFIX)
    for river in R:
        facts[river]["source_country"] = rng.choice(K)
        facts[river]["length_km"] = str(rng.randint(40, 4200))
    for mountain in M:
        facts[mountain]["located_in"] = rng.choice(K)
        facts[mountain]["height_m"] = str(rng.randint(800, 8400))
    for uni in U:
        facts[uni]["city"] = rng.choice(C)
        facts[uni]["established_year"] = str(rng.randint(1350, 1995))

    # --- people, then things people make (years stay causally consistent).
    for person in P:
        facts[person]["born_in"] = rng.choice(C)
        facts[person]["employer"] = rng.choice(O)
        facts[person]["alma_mater"] = rng.choice(U)
        facts[person]["birth_year"] = str(rng.randint(1890, 2000))
        facts[person]["occupation"] = rng.choice(_OCCUPATIONS)
    for company, founder in zip(O, rng.sample(P, len(O))):    # distinct founders
        facts[company]["founder"] = founder
        born = int(facts[founder]["birth_year"])
        facts[company]["founded_year"] = str(min(2024, born + rng.randint(22, 60)))
        facts[company]["headquarters"] = rng.choice(C)
        facts[company]["industry"] = rng.choice(_INDUSTRIES)
    for book in B:
        author = rng.choice(P)
        facts[book]["author"] = author
        born = int(facts[author]["birth_year"])
        facts[book]["publication_year"] = str(min(2024, born + rng.randint(20, 75)))
        facts[book]["genre"] = rng.choice(_GENRES)

    # --- inverse indexes, for true "see also" sentences (lists kept in order).
    inverse: dict[tuple[str, str], list[str]] = {}
    for rel in ("born_in", "country", "capital", "author", "founder", "headquarters", "city"):
        subj_kind = RELATIONS[rel][0]
        for s in names[subj_kind]:
            inverse.setdefault((rel, facts[s][rel]), []).append(s)

    # Document order is shuffled across kinds so that ids say nothing about kinds.
    entities = [(k, n) for k in KINDS for n in names[k]]
    rng.shuffle(entities)
    writers = {"person": _person_text, "city": _city_text, "country": _country_text,
               "company": _company_text, "university": _university_text,
               "book": _book_text, "river": _river_text, "mountain": _mountain_text}
    documents = []
    for i, (kind, name) in enumerate(entities):
        mentions: list[str] = []

        def m(title: str) -> str:      # record a linked mention, return it for the text
            mentions.append(title)
            return title

        def other(kind_names: list[str]) -> str:   # a random distractor, never self
            while True:
                t = rng.choice(kind_names)
                if t != name:
                    return t

        f = facts[name]
        sentences = writers[kind](name, f, m, lambda rel: inverse.get((rel, name), []))
        # Filler: one or two sentences with random other entities as distractors.
        for template, pool in rng.sample(_FILLERS[kind], rng.randint(1, 2)):
            sentences.append(template.format(x=name, y=m(other(names[pool]))))
        # Keep the defining first sentence first; shuffle the rest for variety.
        rest = sentences[1:]
        rng.shuffle(rest)
        text = " ".join([sentences[0]] + rest)
        links = tuple(dict.fromkeys(t for t in mentions if t != name))
        documents.append(Document(id=f"d{i:05d}", title=name, kind=kind, text=text, links=links))
    return Corpus(seed=seed, documents=documents, facts=facts)


# Filler templates per kind: (template, kind of the distractor entity ``y``).
_FILLERS: dict[str, tuple[tuple[str, str], ...]] = {
    "person": (("{x} has often been compared with {y}.", "person"),
               ("{x} once gave a public lecture in {y}.", "city"),
               ("A biography of {x} mentions a long friendship with {y}.", "person"),
               ("{x} has reviewed {y} for a literary magazine.", "book")),
    "city": (("{x} is twinned with {y}.", "city"),
             ("Travellers from {x} often continue on to {y}.", "city"),
             ("A statue in the old market of {x} honours {y}.", "person")),
    "country": (("{x} has a long history of trade with {y}.", "country"),
                ("Tourists in {x} often also visit {y}.", "mountain")),
    "company": (("{x} competes with {y}.", "company"),
                ("{x} has a research partnership with {y}.", "university"),
                ("{x} opened a sales office in {y}.", "city")),
    "university": (("{x} runs an exchange programme with {y}.", "university"),
                   ("{x} received a large donation from {y}.", "company")),
    "book": (("{x} is frequently cited alongside {y}.", "book"),
             ("Critics have compared the setting of {x} to {y}.", "city")),
    "river": (("The {x} is popular with anglers from {y}.", "city"),
              ("The {x} is often confused with the {y}.", "river")),
    "mountain": (("{x} is often compared with {y} by climbers.", "mountain"),
                 ("Expeditions to {x} are often organised from {y}.", "city")),
}


# Per-kind writers: the first sentence defines the entity; together the
# sentences state EVERY fact in ``f`` (tests check this).
def _person_text(x, f, m, inv):
    s = [f"{x} is {_a(f['occupation'])} who was born in {m(f['born_in'])} in {f['birth_year']}.",
         f"{x} graduated from {m(f['alma_mater'])}.",
         f"{x} works for {m(f['employer'])}."]
    if inv("founder"):
        s.append(f"{x} founded {m(inv('founder')[0])}.")
    books = inv("author")
    if books:
        s.append(f"{x} is the author of {_join([m(b) for b in books[:3]])}.")
    return s


def _city_text(x, f, m, inv):
    s = [f"{x} is a city in {m(f['country'])} with a population of {f['population']}."]
    if inv("capital"):
        s.append(f"{x} is the capital of {m(inv('capital')[0])}.")
    unis = inv("city")
    if unis:
        s.append(f"{x} is home to {_join([m(u) for u in unis[:2]])}.")
    people = inv("born_in")
    if people:
        s.append(f"Notable people born in {x} include {_join([m(p) for p in people[:2]])}.")
    hq = inv("headquarters")
    if hq:
        s.append(f"{m(hq[0])} is headquartered in {x}.")
    return s


def _country_text(x, f, m, inv):
    s = [f"{x} is a country whose capital is {m(f['capital'])}.",
         f"The currency of {x} is the {f['currency']}.",
         f"The main language of {x} is {f['language']}."]
    cities = [c for c in inv("country") if c != f["capital"]]
    if cities:
        s.append(f"Other cities in {x} include {_join([m(c) for c in cities[:3]])}.")
    return s


def _company_text(x, f, m, inv):
    return [f"{x} is {_a(f['industry'])} company founded in {f['founded_year']} by {m(f['founder'])}.",
            f"{x} is headquartered in {m(f['headquarters'])}."]


def _university_text(x, f, m, inv):
    return [f"{x} is a university in {m(f['city'])}, established in {f['established_year']}."]


def _book_text(x, f, m, inv):
    return [f"{x} is {_a(f['genre'])} by {m(f['author'])}, published in {f['publication_year']}."]


def _river_text(x, f, m, inv):
    return [f"The {x} rises in {m(f['source_country'])}.",
            f"The {x} is {f['length_km']} km long."]


def _mountain_text(x, f, m, inv):
    return [f"{x} is a mountain in {m(f['located_in'])}.",
            f"{x} is {f['height_m']} metres high."]


@functools.lru_cache(maxsize=8)
def get_corpus(seed: int = 0, n_documents: int = 2000) -> Corpus:
    """Cached :func:`generate_corpus` (treat the result as read-only)."""
    return generate_corpus(seed, n_documents)
