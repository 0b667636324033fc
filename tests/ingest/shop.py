"""A tiny hand-written shop in the canonical layout, and ways to break it."""

from __future__ import annotations

from pathlib import Path

BASE: dict[str, str] = {
    "categories.csv": (
        "category_id,name,parent_id\n"
        "c1,Books,\n"
        "c2,Novels,c1\n"
        "c3,Pens,\n"
    ),
    "products.csv": (
        "product_id,name,category_id,price,brand\n"
        "p1,Dune,c2,9.99,Ace\n"
        "p2,Atlas,c1,25,Atlas Co\n"
        "p3,Pen,c3,1.5,\n"
        "p4,Gift card,,,\n"
    ),
    "users.csv": (
        "user_id,name,age\n"
        "u1,Ann,34\n"
        "u2,Bob,\n"
        "u3,Cy,51\n"
        "u4,Zoë,29\n"
    ),
    "interactions.csv": (
        "user_id,product_id,ts,weight,kind,split\n"
        "u1,p1,2024-01-02T10:00:00Z,1,purchase,train\n"
        "u1,p2,1704190000,2,purchase,test\n"
        "u2,p1,2024-03-01,1,view,\n"
        "u3,p3,,,,\n"
        "u1,p1,2024-02-02T10:00:00+01:00,3,purchase,train\n"
        "u4,p2,2024-05-05 12:00:00,4.5,rating,valid\n"
    ),
    "social.csv": (
        "user_id,other_user_id,kind\n"
        "u1,u2,friend\n"
        "u2,u1,friend\n"
        "u2,u3,follows\n"
        "u3,u4,\n"
    ),
    "product_categories.csv": (
        "product_id,category_id\n"
        "p1,c1\n"
        "p1,c2\n"
    ),
}

# What BASE becomes in the graph.
BASE_NODES = {"User": 4, "Product": 4, "Category": 3}
BASE_RELS = {"BOUGHT": 3, "VIEWED": 1, "RATED": 1, "IN_CATEGORY": 4, "SUBCATEGORY_OF": 1, "FRIEND": 2,
             "FOLLOWS": 1}


def write_shop(directory: Path, files: dict[str, str | bytes] | None = None,
               append: dict[str, str | bytes] | None = None, drop: tuple[str, ...] = ()) -> Path:
    """BASE with files replaced (``files``), lines added at the end (``append``) or left out (``drop``)."""
    directory.mkdir(parents=True, exist_ok=True)
    contents: dict[str, str | bytes] = {**BASE, **(files or {})}
    for name, extra in (append or {}).items():
        head = contents.get(name, "")
        contents[name] = (head.encode() if isinstance(extra, bytes) and isinstance(head, str) else head) + extra
    for name, text in contents.items():
        if name in drop:
            continue
        data = text.encode("utf-8") if isinstance(text, str) else text
        (directory / name).write_bytes(data)
    return directory


# Every bad input the loader must refuse: (case id, write_shop arguments, the first message).
# Each case also adds a valid user u9 (users.csv line 6), so a partial write would show in the counts.
EXTRA_USER = "u9,Extra,40\n"
BAD_CASES: list[tuple[str, dict, str]] = [
    ("dangling-product", {"append": {"interactions.csv": "u1,p999,,,,\n"}},
     "interactions.csv:8: product_id 'p999' is not defined in products.csv"),
    ("dangling-user", {"append": {"interactions.csv": "u77,p1,,,,\n"}},
     "interactions.csv:8: user_id 'u77' is not defined in users.csv"),
    ("dangling-friend", {"append": {"social.csv": "u1,u42,friend\n"}},
     "social.csv:6: other_user_id 'u42' is not defined in users.csv"),
    ("dangling-category", {"append": {"products.csv": "p5,Mug,c9,3,\n"}},
     "products.csv:6: category_id 'c9' is not defined in categories.csv"),
    ("dangling-parent", {"append": {"categories.csv": "c4,Maps,c8\n"}},
     "categories.csv:5: parent_id 'c8' is not defined in categories.csv"),
    ("dangling-extra-category", {"append": {"product_categories.csv": "p2,c7\n"}},
     "product_categories.csv:4: category_id 'c7' is not defined in categories.csv"),
    ("conflicting-duplicate", {"append": {"products.csv": "p1,Dune,c2,12.50,Ace\n"}},
     "products.csv:2: product_id 'p1' has conflicting definitions (see line 6)"),
    ("conflicting-user", {"append": {"users.csv": "u2,Bob,77\n"}},
     "users.csv:3: user_id 'u2' has conflicting definitions (see line 7)"),
    ("bad-timestamp", {"append": {"interactions.csv": "u2,p2,next tuesday,1,,\n"}},
     "interactions.csv:8: ts 'next tuesday' is neither ISO-8601 nor unix seconds"),
    ("bad-weight", {"append": {"interactions.csv": "u2,p2,,lots,,\n"}},
     "interactions.csv:8: weight 'lots' is not a number"),
    ("bad-price", {"append": {"products.csv": "p5,Mug,c3,cheap,\n"}},
     "products.csv:6: price 'cheap' is not a number"),
    ("negative-price", {"append": {"products.csv": "p5,Mug,c3,-2.5,\n"}},
     "products.csv:6: price '-2.5' is negative"),
    ("bad-kind", {"append": {"interactions.csv": "u2,p2,,,like,\n"}},
     "interactions.csv:8: kind 'like' is not one of purchase, view, rating"),
    ("bad-split", {"append": {"interactions.csv": "u2,p2,,,,dev\n"}},
     "interactions.csv:8: split 'dev' is not one of train, valid, test"),
    ("split-conflict", {"append": {"interactions.csv": "u1,p1,,1,purchase,test\n"}},
     "interactions.csv:2: split 'train' contradicts split 'test' at line 8 for the same user_id, product_id and kind"),
    ("bad-social-kind", {"append": {"social.csv": "u1,u3,enemy\n"}},
     "social.csv:6: kind 'enemy' is not one of friend, follows"),
    ("self-friendship", {"append": {"social.csv": "u3,u3,friend\n"}},
     "social.csv:6: other_user_id 'u3' is the same as user_id (self-friendship)"),
    ("bad-encoding", {"append": {"users.csv": b"u5,Jos\xe9,40\n"}},
     "users.csv:7: name: invalid UTF-8 bytes (the file must be UTF-8)"),
    ("empty-id", {"append": {"users.csv": ",Nobody,3\n"}},
     "users.csv:7: user_id is empty"),
    ("category-cycle", {"append": {"categories.csv": "c4,A,c5\nc5,B,c4\n"}},
     "categories.csv:5: parent_id 'c5' makes a cycle in the category tree"),
    ("own-parent", {"append": {"categories.csv": "c4,Loop,c4\n"}},
     "categories.csv:5: parent_id 'c4' is the category itself"),
    ("missing-column", {"files": {"interactions.csv": "user_id,ts\nu1,\n"}},
     "interactions.csv:1: missing required column product_id (columns are: user_id, ts)"),
    ("missing-file", {"drop": ("social.csv",)}, "social.csv: required file is missing in "),
    ("too-many-fields", {"append": {"interactions.csv": "u1,p1,,,,,extra\n"}},
     "interactions.csv:8: expected 6 fields, saw 7"),
    # The store's limits (graphrec.limits): refused before anything is written, not halfway through.
    ("id-over-index-limit", {"append": {"users.csv": "u" + "x" * 9000 + ",Long,1\n"}},
     f"users.csv:7: user_id {'u' + 'x' * 29 + '…'!r} is 9001 bytes long (UTF-8); ids are at most 1024 bytes"),
    ("id-over-id-limit", {"append": {"products.csv": "p" + "é" * 512 + ",Mug,c3,1,\n"}},
     f"products.csv:6: product_id {'p' + 'é' * 29 + '…'!r} is 1025 bytes long (UTF-8); ids are at most 1024 bytes"),
    ("name-over-index-limit", {"append": {"products.csv": "p5," + "é" * 4083 + ",c3,1,\n"}},
     "products.csv:6: name is 8166 bytes long (UTF-8); Neo4j indexes at most 8164 bytes"),
    ("text-over-property-limit", {"append": {"users.csv": "u5," + "x" * (1 << 20) + "y,1\n"}},
     "users.csv:7: name is 1048577 bytes long (UTF-8); text properties are at most 1048576 bytes"),
    ("nul-in-id", {"append": {"users.csv": b"u\x005,Nul,1\n"}},
     "users.csv:7: user_id 'u\\x005' contains U+0000 (a control character); ids hold printable characters only"),
    ("bidi-override-in-id", {"append": {"users.csv": "u\u202e5,Bidi,1\n"}},
     "users.csv:7: user_id 'u\\u202e5' contains U+202E RIGHT-TO-LEFT OVERRIDE (an invisible format character)"),
    ("zero-width-in-id", {"append": {"products.csv": "p\u200b5,Mug,c3,1,\n"}},
     "products.csv:6: product_id 'p\\u200b5' contains U+200B ZERO WIDTH SPACE (an invisible format character)"),
    ("space-around-id", {"append": {"categories.csv": "c4 ,Maps,\n"}},
     "categories.csv:5: category_id 'c4 ' starts or ends with a space"),
    ("huge-unix-ts", {"append": {"interactions.csv": "u2,p2,10000000000000000,1,,\n"}},
     "interactions.csv:8: ts '10000000000000000' is outside 0001-01-01 to 9999-12-31 (UTC)"),
    ("ts-after-9999", {"append": {"interactions.csv": "u2,p2,253402300800,1,,\n"}},
     "interactions.csv:8: ts '253402300800' is outside 0001-01-01 to 9999-12-31 (UTC)"),
    ("ts-before-year-1", {"append": {"interactions.csv": "u2,p2,0001-01-01T00:30:00+01:00,1,,\n"}},
     "interactions.csv:8: ts '0001-01-01T00:30:00+01:00' is outside 0001-01-01 to 9999-12-31 (UTC)"),
    ("negative-weight", {"append": {"interactions.csv": "u2,p2,,-1,,\n"}},
     "interactions.csv:8: weight '-1' must be greater than 0"),
    ("zero-weight", {"append": {"interactions.csv": "u2,p2,,0,,\n"}},
     "interactions.csv:8: weight '0' must be greater than 0"),
    ("weights-summing-to-infinity", {"append": {"interactions.csv": "u2,p2,,1e308,,\nu2,p2,,1e308,,\n"}},
     "interactions.csv:8: weight '1e308' must be at most 1000000"),
    ("infinite-price", {"append": {"products.csv": "p5,Mug,c3,1e400,\n"}},
     "products.csv:6: price '1e400' is not a finite number"),
    ("price-over-bound", {"append": {"products.csv": "p5,Mug,c3,2e12,\n"}},
     "products.csv:6: price '2e12' must be at most 1000000000000"),
    ("duplicate-header", {"files": {"interactions.csv": "user_id,product_id,user_id\nu1,p1,u2\n"}},
     "interactions.csv:1: column user_id appears twice (columns 1 and 3)"),
    ("utf-16-without-bom", {"files": {"interactions.csv": BASE["interactions.csv"].encode("utf-16-le")}},
     "interactions.csv: not UTF-8 (looks like UTF-16-LE without a byte-order mark)"),
    ("utf-16-with-bom", {"files": {"interactions.csv": BASE["interactions.csv"].encode("utf-16")}},
     "interactions.csv: not UTF-8 (UTF-16-LE, by its byte-order mark)"),
]


def write_bad_shop(directory: Path, case: dict) -> Path:
    append = dict(case.get("append", {}))
    extra = append.pop("users.csv", "")
    append["users.csv"] = (EXTRA_USER.encode() + extra) if isinstance(extra, bytes) else EXTRA_USER + extra
    return write_shop(directory, files=case.get("files"), append=append, drop=case.get("drop", ()))
