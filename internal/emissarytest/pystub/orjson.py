"""A stand-in for orjson, which Debian does not package.

Emissary's compiler uses only dumps (with the three options below) and loads;
the standard json module does the same, more slowly. dumps returns bytes, as
orjson's does.
"""

import json

OPT_NON_STR_KEYS = 1
OPT_SORT_KEYS = 2
OPT_INDENT_2 = 4


def dumps(obj, default=None, option=0):
    text = json.dumps(
        obj,
        default=default,
        sort_keys=bool(option & OPT_SORT_KEYS),
        indent=2 if option & OPT_INDENT_2 else None,
        separators=None if option & OPT_INDENT_2 else (",", ":"),
    )
    return text.encode("utf-8")


def loads(data):
    return json.loads(data)
