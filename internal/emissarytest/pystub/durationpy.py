"""A stand-in for durationpy, which Debian does not package.

Emissary's compiler calls only from_str, for Knative timeouts such as "15s"
or "1m30s"; Go's duration syntax is parsed here into a timedelta.
"""

import datetime
import re

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def from_str(text):
    s = text.strip()
    sign = 1
    if s[:1] in "+-":
        sign, s = (-1 if s[0] == "-" else 1), s[1:]
    if s == "0":
        return datetime.timedelta(0)
    seconds, pos = 0.0, 0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        seconds += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos == 0 or pos != len(s):
        raise ValueError("invalid duration %r" % text)
    return datetime.timedelta(seconds=sign * seconds)
