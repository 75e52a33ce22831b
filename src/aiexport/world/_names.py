"""Names, addresses, phones and registry numbers that look like the countries they come from.

Everything is drawn from an explicit `numpy.random.Generator`, never from global state, so a seed
fixes every string. The identity helpers also produce the *noisy variants* that planted rings share
(spelling and transliteration variants, legal-form suffixes, phone formats, address variants).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


def pick(rng: random.Random, seq: tuple[T, ...] | list[T]) -> T:
    return seq[int(rng.random() * len(seq))]


def rint(rng: random.Random, lo: int, hi: int) -> int:
    """An integer in [lo, hi): `random.randrange` without its per-call overhead."""
    return lo + int(rng.random() * (hi - lo))


@dataclass(frozen=True, slots=True)
class Profile:
    """How companies, people, phones and addresses look in one country."""

    phone_cc: str
    phone_digits: int
    tld: str
    suffixes: tuple[str, ...]
    cities: tuple[str, ...]
    streets: tuple[str, ...]
    people: str
    stems: tuple[str, ...] = ()
    postcode_digits: int = 5


_EU_STREETS = ("Main Street", "Station Road", "Harbour Way", "Park Avenue", "Market Square")
PROFILES: dict[str, Profile] = {
    "JP": Profile(
        "81",
        10,
        "co.jp",
        ("K.K.", "Co., Ltd.", "Corporation"),
        ("Tokyo", "Osaka", "Yokohama", "Fukuoka"),
        ("Shiba", "Nishi-Shinjuku", "Umeda", "Minato Mirai"),
        "ja",
        ("Hikari", "Sakura", "Fuji", "Nihon", "Kizuna"),
        7,
    ),
    "KR": Profile(
        "82",
        10,
        "co.kr",
        ("Co., Ltd.", "Corp.", "Inc."),
        ("Seoul", "Busan", "Seongnam", "Incheon"),
        ("Teheran-ro", "Gangnam-daero", "Pangyo-ro", "Sejong-daero"),
        "ko",
        ("Hanbit", "Daehan", "Saerom", "Mirae"),
    ),
    "TW": Profile(
        "886",
        9,
        "com.tw",
        ("Co., Ltd.", "Corporation", "Inc."),
        ("Taipei", "Hsinchu", "Taichung", "Kaohsiung"),
        ("Xinyi Road", "Zhongshan North Road", "Guangfu Road", "Neihu Road"),
        "tw",
        ("Hongyuan", "Taixin", "Jinghua", "Yuanli"),
        3,
    ),
    "GB": Profile(
        "44",
        10,
        "co.uk",
        ("Ltd", "Limited", "PLC"),
        ("London", "Manchester", "Cambridge", "Edinburgh"),
        ("High Street", "King's Road", "Station Road", "Victoria Street"),
        "eu",
    ),
    "DE": Profile(
        "49",
        10,
        "de",
        ("GmbH", "AG", "GmbH & Co. KG"),
        ("Berlin", "Munich", "Frankfurt am Main", "Hamburg"),
        ("Hauptstraße", "Bahnhofstraße", "Friedrichstraße", "Leopoldstraße"),
        "eu",
    ),
    "FR": Profile(
        "33",
        9,
        "fr",
        ("SAS", "SA", "SARL"),
        ("Paris", "Lyon", "Grenoble", "Toulouse"),
        ("Rue de Rivoli", "Avenue de France", "Boulevard Haussmann", "Rue Lafayette"),
        "eu",
    ),
    "NL": Profile(
        "31",
        9,
        "nl",
        ("B.V.", "N.V."),
        ("Amsterdam", "Eindhoven", "Rotterdam"),
        ("Keizersgracht", "Stationsplein", "Zuidas", "Strijp"),
        "eu",
        (),
        4,
    ),
    "CA": Profile(
        "1",
        10,
        "ca",
        ("Inc.", "Ltd.", "Corp."),
        ("Toronto", "Montreal", "Vancouver"),
        ("King Street West", "Rue Sherbrooke", "Granville Street", "Bay Street"),
        "eu",
    ),
    "AU": Profile(
        "61",
        9,
        "com.au",
        ("Pty Ltd", "Limited"),
        ("Sydney", "Melbourne", "Brisbane"),
        ("George Street", "Collins Street", "Queen Street", "Pitt Street"),
        "eu",
        (),
        4,
    ),
    "IE": Profile(
        "353",
        9,
        "ie",
        ("Ltd", "Limited", "DAC"),
        ("Dublin", "Cork", "Galway"),
        ("Grafton Street", "Sir John Rogerson's Quay", "Dawson Street"),
        "eu",
    ),
    "SE": Profile(
        "46",
        9,
        "se",
        ("AB",),
        ("Stockholm", "Gothenburg", "Malmö"),
        ("Drottninggatan", "Kungsgatan", "Sveavägen"),
        "eu",
    ),
    "FI": Profile(
        "358",
        9,
        "fi",
        ("Oy", "Oyj"),
        ("Helsinki", "Espoo", "Oulu"),
        ("Mannerheimintie", "Keilaranta", "Hämeenkatu"),
        "eu",
    ),
    "NO": Profile(
        "47",
        8,
        "no",
        ("AS", "ASA"),
        ("Oslo", "Bergen", "Trondheim"),
        ("Karl Johans gate", "Bryggen", "Munkegata"),
        "eu",
        (),
        4,
    ),
    "DK": Profile(
        "45",
        8,
        "dk",
        ("A/S", "ApS"),
        ("Copenhagen", "Aarhus", "Odense"),
        ("Strøget", "Vesterbrogade", "Banegårdspladsen"),
        "eu",
        (),
        4,
    ),
    "ES": Profile(
        "34",
        9,
        "es",
        ("S.L.", "S.A."),
        ("Madrid", "Barcelona", "Valencia"),
        ("Calle de Alcalá", "Passeig de Gràcia", "Gran Vía"),
        "es",
    ),
    "IT": Profile(
        "39",
        10,
        "it",
        ("S.r.l.", "S.p.A."),
        ("Milan", "Rome", "Turin", "Bologna"),
        ("Via Roma", "Corso Vittorio Emanuele", "Via Garibaldi"),
        "eu",
    ),
    "BE": Profile(
        "32",
        9,
        "be",
        ("NV", "SA", "BV"),
        ("Brussels", "Antwerp", "Leuven"),
        ("Rue de la Loi", "Meir", "Avenue Louise"),
        "eu",
        (),
        4,
    ),
    "NZ": Profile(
        "64",
        9,
        "co.nz",
        ("Limited", "Ltd"),
        ("Auckland", "Wellington"),
        ("Queen Street", "Lambton Quay"),
        "eu",
        (),
        4,
    ),
    "IN": Profile(
        "91",
        10,
        "co.in",
        ("Pvt. Ltd.", "Private Limited", "Limited", "LLP"),
        ("Bengaluru", "Hyderabad", "Mumbai", "Pune", "Chennai", "Noida"),
        ("Outer Ring Road", "MG Road", "HITEC City", "Bandra Kurla Complex", "Sector 62"),
        "in",
        ("Bharat", "Indus", "Sahyadri", "Infini", "Navya"),
        6,
    ),
    "SG": Profile(
        "65",
        8,
        "com.sg",
        ("Pte Ltd", "Pte. Ltd.", "Private Limited"),
        ("Singapore",),
        (
            "Anson Road",
            "Jurong West Street",
            "Changi Business Park",
            "Robinson Road",
            "Ubi Avenue",
            "Kallang Way",
        ),
        "sg",
        ("Lion City", "Merlion", "Temasek"),
        6,
    ),
    "MY": Profile(
        "60",
        9,
        "com.my",
        ("Sdn Bhd", "Sdn. Bhd.", "Berhad"),
        ("Kuala Lumpur", "Johor Bahru", "Cyberjaya", "Penang"),
        (
            "Jalan Sultan Ismail",
            "Jalan Ampang",
            "Persiaran Multimedia",
            "Jalan Tun Razak",
            "Jalan Bayan Lepas",
        ),
        "ms",
        ("Nusantara", "Mahsuri", "Wawasan"),
        5,
    ),
    "AE": Profile(
        "971",
        9,
        "ae",
        ("LLC", "FZE", "FZ-LLC", "DMCC"),
        ("Dubai", "Abu Dhabi"),
        ("Sheikh Zayed Road", "Jebel Ali Free Zone", "Dubai Internet City", "Al Maryah Island"),
        "ar",
        ("Al Noor", "Gulf", "Desert Falcon", "Emirates"),
    ),
    "SA": Profile(
        "966",
        9,
        "com.sa",
        ("LLC", "Co.", "Company Ltd."),
        ("Riyadh", "Jeddah", "Dammam"),
        ("King Fahd Road", "Olaya Street", "Prince Sultan Road"),
        "ar",
        ("Al Riyadh", "Najd", "Arabian"),
    ),
    "IL": Profile(
        "972",
        9,
        "co.il",
        ("Ltd.", "Ltd"),
        ("Tel Aviv", "Haifa", "Herzliya"),
        ("Rothschild Boulevard", "HaBarzel Street", "Matam Park"),
        "he",
    ),
    "CH": Profile(
        "41",
        9,
        "ch",
        ("AG", "SA", "GmbH"),
        ("Zurich", "Geneva", "Lausanne"),
        ("Bahnhofstrasse", "Rue du Rhône", "Avenue de Rhodanie"),
        "eu",
        (),
        4,
    ),
    "PL": Profile(
        "48",
        9,
        "pl",
        ("Sp. z o.o.", "S.A."),
        ("Warsaw", "Kraków", "Wrocław"),
        ("ul. Marszałkowska", "ul. Floriańska", "ul. Legnicka"),
        "pl",
    ),
    "BR": Profile(
        "55",
        11,
        "com.br",
        ("Ltda.", "S.A."),
        ("São Paulo", "Rio de Janeiro", "Campinas"),
        ("Avenida Paulista", "Rua Oscar Freire", "Avenida Brasil"),
        "es",
    ),
    "MX": Profile(
        "52",
        10,
        "com.mx",
        ("S.A. de C.V.", "S. de R.L. de C.V."),
        ("Mexico City", "Guadalajara", "Monterrey", "Querétaro"),
        ("Paseo de la Reforma", "Avenida Chapultepec", "Avenida Constitución"),
        "es",
    ),
    "TH": Profile(
        "66",
        9,
        "co.th",
        ("Co., Ltd.", "Company Limited"),
        ("Bangkok", "Chonburi", "Chiang Mai"),
        ("Sukhumvit Road", "Rama IV Road", "Silom Road", "Bang Na-Trat Road"),
        "th",
        ("Siam", "Krungthep", "Chao Phraya"),
    ),
    "ID": Profile(
        "62",
        10,
        "co.id",
        ("PT", "PT", "P.T."),
        ("Jakarta", "Batam", "Surabaya"),
        ("Jalan Sudirman", "Jalan Gatot Subroto", "Batam Centre"),
        "ms",
        ("Nusa", "Garuda", "Merdeka"),
    ),
    "VN": Profile(
        "84",
        9,
        "com.vn",
        ("Co., Ltd.", "JSC"),
        ("Hanoi", "Ho Chi Minh City", "Da Nang"),
        ("Lang Ha Street", "Nguyen Hue Boulevard", "Tran Phu Street"),
        "vi",
        ("Viet", "Saigon", "Hong Ha"),
    ),
    "TR": Profile(
        "90",
        10,
        "com.tr",
        ("A.Ş.", "Ltd. Şti."),
        ("Istanbul", "Ankara", "Izmir"),
        ("Büyükdere Caddesi", "Atatürk Bulvarı", "İstiklal Caddesi"),
        "tr",
    ),
    "PT": Profile(
        "351",
        9,
        "pt",
        ("Lda.", "S.A."),
        ("Lisbon", "Porto"),
        ("Avenida da Liberdade", "Rua de Santa Catarina"),
        "es",
        (),
        4,
    ),
    "AT": Profile(
        "43",
        10,
        "at",
        ("GmbH", "AG"),
        ("Vienna", "Graz", "Linz"),
        ("Mariahilfer Straße", "Herrengasse", "Landstraße"),
        "eu",
        (),
        4,
    ),
    "CZ": Profile(
        "420",
        9,
        "cz",
        ("s.r.o.", "a.s."),
        ("Prague", "Brno"),
        ("Václavské náměstí", "Husova"),
        "eu",
    ),
    "CN": Profile(
        "86",
        11,
        "com.cn",
        ("Co., Ltd.", "Technology Co., Ltd.", "Limited"),
        ("Shenzhen", "Beijing", "Shanghai", "Hangzhou", "Guangzhou"),
        ("Keyuan Road", "Zhongguancun Street", "Zhangjiang Road", "Wenyi West Road", "Tianhe Road"),
        "zh",
        (
            "Huaxin",
            "Zhongke",
            "Tianhe",
            "Xinghai",
            "Longteng",
            "Jinhui",
            "Ruida",
            "Hengtong",
            "Shenghua",
            "Kaiyuan",
        ),
        6,
    ),
    "HK": Profile(
        "852",
        8,
        "com.hk",
        ("Limited", "Co., Limited", "Holdings Limited"),
        ("Hong Kong", "Kowloon", "Kwun Tong"),
        ("Queen's Road Central", "Nathan Road", "Hoi Bun Road", "Des Voeux Road"),
        "hk",
        ("Wing On", "Tai Fung", "Kam Wah", "Sun Hing"),
        0,
    ),
    "US": Profile(
        "1",
        10,
        "com",
        ("Inc.", "LLC", "Corp."),
        ("San Jose", "Austin", "New York"),
        ("Main Street", "Market Street", "Broadway"),
        "eu",
    ),
}

SURNAMES: dict[str, tuple[str, ...]] = {
    "zh": (
        "Wang",
        "Li",
        "Zhang",
        "Liu",
        "Chen",
        "Yang",
        "Huang",
        "Zhao",
        "Wu",
        "Zhou",
        "Xu",
        "Sun",
        "Ma",
        "Zhu",
        "Hu",
        "Guo",
        "He",
        "Lin",
        "Luo",
        "Gao",
    ),
    "ja": (
        "Sato",
        "Suzuki",
        "Takahashi",
        "Tanaka",
        "Watanabe",
        "Ito",
        "Yamamoto",
        "Nakamura",
        "Kobayashi",
        "Kato",
    ),
    "ko": ("Kim", "Lee", "Park", "Choi", "Jung", "Kang", "Cho", "Yoon", "Jang", "Lim"),
    "in": (
        "Sharma",
        "Patel",
        "Singh",
        "Kumar",
        "Gupta",
        "Reddy",
        "Iyer",
        "Nair",
        "Mehta",
        "Rao",
        "Das",
        "Joshi",
    ),
    "ar": (
        "Al Mansouri",
        "Al Hashimi",
        "Haddad",
        "Khalil",
        "Al Qahtani",
        "Al Otaibi",
        "Nasser",
        "Saleh",
        "Al Falasi",
        "Hamdan",
    ),
    "eu": (
        "Schmidt",
        "Dubois",
        "Martin",
        "Jansen",
        "de Vries",
        "Rossi",
        "Lindqvist",
        "Nielsen",
        "Smith",
        "Jones",
        "Brown",
        "Taylor",
        "Wilson",
        "O'Brien",
        "Murphy",
        "Novak",
        "Weber",
        "Fischer",
        "Moreau",
        "Bakker",
    ),
    "es": (
        "Silva",
        "Santos",
        "Oliveira",
        "Hernández",
        "López",
        "González",
        "Rodríguez",
        "Pereira",
        "Costa",
        "Martínez",
    ),
    "he": ("Cohen", "Levi", "Mizrahi", "Peretz", "Biton", "Friedman", "Katz", "Azoulay"),
    "ms": (
        "Abdullah",
        "Ibrahim",
        "Rahman",
        "Hassan",
        "Ismail",
        "Tan",
        "Lim",
        "Wong",
        "Ng",
        "Santoso",
        "Wijaya",
    ),
    "th": ("Saetang", "Wongsakul", "Chaiyaporn", "Srisuk", "Thongchai", "Rattanakorn"),
    "vi": ("Nguyen", "Tran", "Le", "Pham", "Hoang", "Vo", "Dang"),
    "tr": ("Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Aydın"),
    "pl": ("Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kamiński", "Lewandowski"),
}
SURNAMES["tw"] = ("Chen", "Lin", "Huang", "Chang", "Lee", "Wang", "Wu", "Liu", "Tsai", "Yang")
SURNAMES["hk"] = ("Chan", "Wong", "Cheung", "Lau", "Lee", "Ho", "Ng", "Leung", "Chow", "Kwok")
SURNAMES["sg"] = ("Tan", "Lim", "Lee", "Ng", "Ong", "Wong", "Goh", "Chua", "Koh", "Teo")

GIVEN: dict[str, tuple[str, ...]] = {
    "zh": (
        "Wei",
        "Fang",
        "Min",
        "Jing",
        "Lei",
        "Jun",
        "Yong",
        "Yan",
        "Jie",
        "Tao",
        "Ming",
        "Hui",
        "Hao",
        "Xin",
        "Qiang",
        "Zhiwei",
        "Xiaoming",
        "Jianguo",
        "Yifan",
        "Haoran",
    ),
    "ja": ("Hiroshi", "Takeshi", "Yuki", "Kenji", "Akira", "Naoko", "Yumi", "Haruto", "Daisuke"),
    "ko": ("Min-jun", "Seo-yeon", "Ji-ho", "Ha-eun", "Dong-hyun", "Soo-jin", "Jae-won"),
    "in": (
        "Rahul",
        "Priya",
        "Amit",
        "Anjali",
        "Vikram",
        "Sneha",
        "Arjun",
        "Kavita",
        "Rajesh",
        "Deepa",
        "Sanjay",
        "Nikhil",
    ),
    "ar": (
        "Mohammed",
        "Ahmed",
        "Fatima",
        "Omar",
        "Khalid",
        "Layla",
        "Youssef",
        "Abdullah",
        "Noura",
        "Hassan",
    ),
    "eu": (
        "Thomas",
        "Anna",
        "Lukas",
        "Sophie",
        "Jan",
        "Marie",
        "Peter",
        "Emma",
        "Luca",
        "Sara",
        "James",
        "Oliver",
        "Laura",
        "Eva",
        "David",
        "Claire",
    ),
    "es": ("João", "Maria", "Carlos", "Ana", "Luis", "Fernanda", "Diego", "Gabriela"),
    "he": ("Yosef", "Noa", "David", "Tamar", "Avi", "Maya", "Eitan", "Shira"),
    "ms": ("Ahmad", "Siti", "Nurul", "Farid", "Aisyah", "Hafiz", "Budi", "Dewi"),
    "th": ("Somchai", "Nattapong", "Siriporn", "Kanya", "Anan", "Pim"),
    "vi": ("Minh", "Anh", "Hoa", "Tuan", "Lan", "Duc", "Thao"),
    "tr": ("Mehmet", "Ayşe", "Emre", "Zeynep", "Burak", "Elif"),
    "pl": ("Piotr", "Anna", "Krzysztof", "Katarzyna", "Tomasz", "Agnieszka"),
}
GIVEN["tw"] = ("Chih-wei", "Ya-ting", "Chia-hao", "Shu-fen", "Cheng-han", "Yi-chen", "Po-han")
GIVEN["hk"] = ("Ka Ming", "Wai Kit", "Siu Fong", "Chi Keung", "Mei Ling", "Tsz Hin", "Ho Yin")
GIVEN["sg"] = ("Wei Ming", "Hui Min", "Jun Jie", "Li Ting", "Kok Leong", "Mei Xuan", "Zhi Hao")

# Pinyin -> Wade-Giles / Cantonese / Hokkien spellings of the same surname.
SURNAME_VARIANTS: dict[str, tuple[str, ...]] = {
    "Zhang": ("Chang", "Cheung", "Teo"),
    "Wang": ("Wong", "Ong"),
    "Chen": ("Chan", "Tan", "Chern"),
    "Li": ("Lee", "Lei"),
    "Liu": ("Lau", "Lew"),
    "Huang": ("Wong", "Hwang", "Ng"),
    "Zhou": ("Chow", "Chou"),
    "Xu": ("Hsu", "Tsui", "Koh"),
    "Wu": ("Ng", "Woo", "Goh"),
    "Lin": ("Lam", "Lim"),
    "Guo": ("Kwok", "Kuo"),
    "He": ("Ho", "Hor"),
    "Luo": ("Law", "Lo"),
    "Gao": ("Ko", "Kao"),
    "Zhao": ("Chiu", "Chao"),
    "Yang": ("Yeung", "Yeo"),
    "Sun": ("Suen",),
    "Ma": ("Mah",),
    "Zhu": ("Chu", "Choo"),
    "Hu": ("Woo", "Hoo"),
}
GIVEN_VARIANTS: dict[str, tuple[str, ...]] = {
    "Zhiwei": ("Chih-wei", "Zhi Wei", "Chi Wai"),
    "Xin": ("Hsin", "Sin"),
    "Jie": ("Chieh", "Kit"),
    "Qiang": ("Chiang", "Keung"),
    "Jun": ("Chun", "Chun"),
    "Xiaoming": ("Hsiao-ming", "Siu Ming"),
    "Jianguo": ("Chien-kuo", "Kin Kwok"),
    "Hui": ("Hwei", "Fai"),
    "Wei": ("Wai", "Way"),
    "Ming": ("Meng",),
    "Yifan": ("Yi-fan", "Yee Fan"),
    "Haoran": ("Hao-jan",),
    "Jing": ("Ching",),
}

FREE_MAIL: tuple[str, ...] = (
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "163.com",
    "qq.com",
    "hotmail.com",
    "proton.me",
)

TECH_STEMS: tuple[str, ...] = (
    "Apex",
    "Nova",
    "Quantum",
    "Stellar",
    "Vertex",
    "Pinnacle",
    "Horizon",
    "Summit",
    "Blue Ocean",
    "Silverline",
    "Nimbus",
    "Cobalt",
    "Helix",
    "Meridian",
    "Aurora",
    "Orion",
    "Zenith",
    "Atlas",
    "Polaris",
    "Evergreen",
    "Lumen",
    "Vector",
    "Tensor",
    "Neural",
    "Cortex",
    "Sigma",
    "Prime",
    "Fusion",
    "Catalyst",
    "Beacon",
    "Crest",
    "Harbor",
    "Granite",
    "Sapphire",
    "Onyx",
    "Titan",
    "Falcon",
    "Phoenix",
    "Lotus",
    "Jade",
    "Golden Bridge",
    "Pacific",
    "Oriental",
    "Eastern Star",
    "Crystal",
    "Infinity",
    "Momentum",
    "Keystone",
    "Radiant",
    "Skyline",
    "Bluepeak",
    "Northwind",
)

SEGMENT_WORDS: dict[str, tuple[str, ...]] = {
    "cloud": (
        "Cloud",
        "Compute",
        "Data Centers",
        "AI Cloud",
        "Hosting",
        "Infrastructure",
        "GPU Cloud",
        "Digital Infrastructure",
    ),
    "enterprise": (
        "Technologies",
        "Technology",
        "Tech",
        "Computing",
        "Data",
        "Systems",
        "Solutions",
        "Analytics",
        "Robotics",
        "Software",
        "Digital",
        "Semiconductor",
        "Telecom",
        "Automotive",
        "Pharma",
        "Financial",
        "Media",
        "Energy",
    ),
    "research": (
        "Research Institute",
        "Supercomputing Center",
        "Institute of Technology",
        "National Laboratory",
        "University",
    ),
    "distributor": (
        "Distribution",
        "Trading",
        "Technology Trading",
        "Global Supply",
        "Digital Trade",
        "Electronics",
        "Components",
        "IT Supply",
        "Computer Trading",
        "Technology Distribution",
    ),
    "smb": (
        "Labs",
        "Tech",
        "Digital",
        "Cloud",
        "Computing",
        "AI",
        "Vision",
        "Intelligence",
        "Data",
        "Robotics",
        "Studio",
        "Machine Learning",
    ),
}

OFF_PROFILE_WORDS: tuple[str, ...] = (
    "Realty",
    "Realtor",
    "Tea Trading",
    "Home Appliances",
    "Toys",
    "Seafood Export",
    "Garments",
    "Furniture",
    "Travel Agency",
    "Beauty Supply",
    "Property Management",
    "Agricultural Products",
    "Jewellery",
    "Restaurant Group",
    "Printing",
    "Textile",
)
"""Lines of business that do not fit buying datacenter GPUs (enforcement.md S04: 'Janford Realtor',
an appliance maker, a gaming spin-off)."""

FORWARDER_WORDS: tuple[str, ...] = (
    "Logistics",
    "Freight",
    "Global Forwarding",
    "Shipping",
    "Express",
    "Supply Chain",
    "Cargo",
)


# --- people -----------------------------------------------------------------------------------


def person(rng: random.Random, people: str) -> tuple[str, str]:
    """A (surname, given name) pair from the pool `people`."""
    return pick(rng, SURNAMES[people]), pick(rng, GIVEN[people])


def format_person(rng: random.Random, surname: str, given: str, noisy: bool) -> str:
    """Write a name as registries and forms do; `noisy` allows transliteration and order variants."""
    if noisy:
        r = rng.random()
        if surname in SURNAME_VARIANTS and r < 0.35:
            surname = pick(rng, SURNAME_VARIANTS[surname])
        if given in GIVEN_VARIANTS and rng.random() < 0.35:
            given = pick(rng, GIVEN_VARIANTS[given])
        style = rint(rng, 0, 5)
        if style == 0:
            return f"{surname.upper()} {given}"
        if style == 1:
            return f"{surname}, {given}"
        if style == 2:
            return f"{given[0]}. {surname}"
        if style == 3:
            return f"{surname} {given}"
    return f"{given} {surname}"


# --- companies --------------------------------------------------------------------------------


def company_stem(rng: random.Random, country: str) -> str:
    prof = PROFILES[country]
    if prof.stems and rng.random() < 0.4:
        return pick(rng, prof.stems)
    return pick(rng, TECH_STEMS)


def stem_variant(rng: random.Random, stem: str) -> str:
    """A spelling or transliteration variant of a company stem ('Huaxin' -> 'Hua Xin', 'Hwaxin')."""
    r = rint(rng, 0, 6)
    if r == 0 and len(stem) > 4 and " " not in stem:
        cut = len(stem) // 2
        return f"{stem[:cut]} {stem[cut:].capitalize()}"
    if r == 1:
        return stem.replace("ua", "wa").replace("x", "hs").replace("zh", "ch").replace("Zh", "Ch")
    if r == 2:
        return stem.upper()
    if r == 3 and len(stem) > 3:
        i = rng.randrange(1, len(stem) - 1)
        return stem[:i] + stem[i] + stem[i:]
    if r == 4:
        return stem.replace(" ", "")
    return stem


def suffix_variant(rng: random.Random, suffix: str) -> str:
    """Legal-form variants as they appear on invoices ('Pte Ltd' -> 'Pte. Ltd.', 'PTE LTD')."""
    r = rint(rng, 0, 4)
    if r == 0:
        return suffix.replace(".", "")
    if r == 1:
        return suffix.upper()
    if r == 2 and "Ltd" in suffix and "." not in suffix:
        return suffix.replace("Ltd", "Ltd.").replace("Pte", "Pte.")
    if r == 2:
        return suffix.replace("Limited", "Ltd").replace("Ltd.", "Limited")
    return suffix


PREFIX_FORMS = ("PT", "P.T.")
"""Legal forms written before the name (Indonesia's Perseroan Terbatas)."""


def legal_suffix(rng: random.Random, country: str) -> str:
    """A legal form of `country`, written as invoices write it (often not canonically)."""
    suffix = pick(rng, PROFILES[country].suffixes)
    return suffix_variant(rng, suffix) if rng.random() < 0.5 else suffix


EMAIL_LOCALS: tuple[str, ...] = ("info", "procurement", "purchasing", "it", "sales", "admin",
                                 "order", "ops", "contact", "office")  # fmt: skip


def handle_for(stem: str) -> str:
    return (
        "".join(ch for ch in stem.lower() if ch.isalnum()).encode("ascii", "ignore").decode()[:10]
    )


def email_local(rng: random.Random, stem: str) -> str:
    """The part before the @ of a company address: a role mailbox, sometimes the company's name."""
    if rng.random() < 0.15:
        return handle_for(stem) or "info"
    return pick(rng, EMAIL_LOCALS)


def free_mail_address(rng: random.Random, stem: str) -> str:
    sep = pick(rng, ("", ".", "_"))
    return f"{handle_for(stem) or 'trade'}{sep}{rint(rng, 1, 99 + 1)}@{pick(rng, FREE_MAIL)}"


def company_name(stem: str, word: str, suffix: str) -> str:
    if suffix.upper().replace(".", "") == "PT":
        return f"{suffix} {stem} {word}".strip()
    return f"{stem} {word} {suffix}".strip()


def domain_for(name_stem: str, word: str, country: str) -> str:
    base = "".join(ch for ch in f"{name_stem}{word.split()[0]}".lower() if ch.isalnum())
    base = base.encode("ascii", "ignore").decode() or "corp"
    return f"{base[:24]}.{PROFILES[country].tld}"


# --- contact details --------------------------------------------------------------------------


def phone_number(rng: random.Random, country: str) -> str:
    """A national significant number (digits only), without the country code."""
    prof = PROFILES[country]
    first = str(rint(rng, 2, 10))
    return first + "".join(rng.choices("0123456789", k=prof.phone_digits - 1))


def format_phone(rng: random.Random, country: str, digits: str, noisy: bool) -> str:
    """Write a phone number; with `noisy`, in one of the formats the same number appears in."""
    cc = PROFILES[country].phone_cc
    half = len(digits) // 2
    style = rint(rng, 0, 5) if noisy else 0
    if style == 0:
        return f"+{cc} {digits[:half]} {digits[half:]}"
    if style == 1:
        return f"{cc}-{digits[:half]}-{digits[half:]}"
    if style == 2:
        return f"+{cc}{digits}"
    if style == 3:
        return f"00{cc} {digits}"
    return f"({cc}) {digits[:half]}-{digits[half:]}"


def registration(rng: random.Random, country: str, founded: dt.date) -> str:
    """A company registry number shaped like the country's (SG UEN, IN CIN, GB number...)."""
    n = rint(rng, 10**6, 10**7)
    if country == "SG":
        return f"{founded.year}{n:07d}{pick(rng, tuple('ABCDEGHKMNRWZ'))}"[:10]
    if country == "MY":
        return f"{founded.year}01{n % 10**6:06d}"
    if country == "IN":
        return f"U72900KA{founded.year}PTC{n % 1000000:06d}"
    if country == "GB":
        return f"{n:08d}"
    if country in ("CN",):
        return f"91{rint(rng, 10**15, 10**16)}X"
    if country == "HK":
        return f"{n:07d}"
    if country == "AE":
        return f"DMCC-{n % 1000000:06d}"
    return f"{country}{n:08d}"


def street_address(rng: random.Random, country: str) -> tuple[str, str, str]:
    """(street line, city, postcode) for one address."""
    prof = PROFILES[country]
    number = rint(rng, 1, 400)
    unit = ""
    if country in ("SG", "MY"):
        unit = f"#{rint(rng, 2, 40):02d}-{rint(rng, 1, 30):02d} "
    elif country == "HK" or rng.random() < 0.2:
        unit = f"Floor {rint(rng, 2, 40)}, "
    street = f"{unit}{number} {pick(rng, prof.streets)}".strip()
    post = "".join(rng.choices("0123456789", k=prof.postcode_digits))
    return street, pick(rng, prof.cities), post


def format_address(
    rng: random.Random,
    street: str,
    city: str,
    post: str,
    country_name: str,
    noisy: bool,
) -> str:
    """Write an address; with `noisy`, one of the variants the same place appears as."""
    if noisy:
        r = rint(rng, 0, 5)
        if r == 0:
            street = street.replace("Road", "Rd").replace("Street", "St").replace("Avenue", "Ave")
        elif r == 1:
            street = street.replace("Jalan", "Jln").replace("#", "Unit ")
        elif r == 2:
            return f"{street.upper()}, {city.upper()} {post}".strip()
        elif r == 3:
            return f"{street}, {post} {city}".replace("  ", " ").replace(",  ", ", ").strip()
    tail = f" {post}" if post else ""
    return f"{street}, {city}{tail}, {country_name}"
