# Issue 13: scope keys are escaped, and a read never stores a board of a scope that does
# not exist. Board states and snapshots stored before under keys that are not canonical
# (a control character, an unknown "by", a category that injected a field such as
# "a|by=judges", an id written "judge:007") are dropped: no request can name them any more.
# A canonical key (every key of a real board) is kept as it is.

import re

from django.db import migrations

FIELDS = ("set", "by", "cat", "style")
BY = re.compile(r"humans|judges|all|(judge|run):[1-9][0-9]{0,17}")
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
ESCAPE = re.compile("%(25|7C|3D)", re.IGNORECASE)
ESCAPED = str.maketrans({"%": "%25", "|": "%7C", "=": "%3D"})


def canonical(key: str) -> bool:
    parts = {}
    for part in key.split("|"):
        name, sep, value = part.partition("=")
        if not sep or name in parts or name not in FIELDS:
            return False
        parts[name] = ESCAPE.sub(lambda found: chr(int(found.group(1), 16)), value)
    if tuple(parts) != FIELDS or any(CONTROL.search(v) for v in parts.values()):
        return False
    if not BY.fullmatch(parts["by"]) or parts["style"] not in ("0", "1"):
        return False
    return key == "|".join(f"{name}={parts[name].translate(ESCAPED)}" for name in FIELDS)


def drop_malformed(apps, schema_editor):
    for name in ("BoardState", "LeaderboardSnapshot"):
        model = apps.get_model("arena", name)
        keys = set(model.objects.values_list("scope", flat=True).distinct())
        bad = [key for key in keys if not canonical(key)]
        for start in range(0, len(bad), 500):
            model.objects.filter(scope__in=bad[start : start + 500]).delete()


class Migration(migrations.Migration):
    dependencies = [("arena", "0007_voter_trust")]

    operations = [migrations.RunPython(drop_malformed, migrations.RunPython.noop)]
