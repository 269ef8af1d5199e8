"""Data for tests/e2e/test_rendering.py: a public arena whose model names, prompt and
answers carry script payloads, and whose answers are Markdown (a table, code, math)."""

from django.contrib.auth.models import User

from arena.boards import BoardScope
from arena.importers.loader import import_records
from arena.importers.records import JudgmentRecord, OutputRecord, PromptRecord
from arena.models import LeaderboardSnapshot, PromptSet
from arena.services import refresh_prompt_set
from tests.e2e.seed import STAFF_PASSWORD, STAFF_USER

HOSTILE_NAMES = [
    "<img src=x onerror=alert(1)>",
    "<script>alert('name')</script>",
    '"><svg onload=alert(2)>',
    "<b>bold</b> & <a href=javascript:alert(3)>co</a>",
]
HOSTILE_JUDGE = "<img src=x onerror=alert('judge')>"
PROMPT = "Compare **these**: <img src=x onerror=alert(4)> [go](javascript:alert(5))"
TRACKER = "tracker.invalid"
ANSWER = f"""## Answer from {{n}}

| Model | Score |
|:------|------:|
| one   | 1     |

```python
def square(x):
    return x * x  # squared
```

Euler: $e^{{i\\pi}} + 1 = 0$

$$
\\int_0^1 x\\,dx = \\frac{{1}}{{2}}
$$

<img src=x onerror=alert(6)> <svg onload=alert(7)> <iframe src="javascript:alert(8)"></iframe>
<script>alert(9)</script> [click](javascript:alert(10)) [data](data:text/html,<script>alert(11)</script>)
![pixel](https://{TRACKER}/pixel.png)
"""
# Fractional vote counts (soft preferences count a fraction of a vote), given to the latest
# board by soften(): the page must write them the same way before and after a push.
SOFT_VOTES = [12.25, 7.5, 3.05, 6.0]


def seed():
    records = [PromptRecord(external_id="h1", text=PROMPT, category="general")]
    for i, name in enumerate(HOSTILE_NAMES):
        records.append(
            OutputRecord(prompt_id="h1", contestant=name, text=ANSWER.replace("{n}", str(i + 1)))
        )
    for i in range(12):
        a, b = HOSTILE_NAMES[i % 4], HOSTILE_NAMES[(i + 1) % 4]
        records.append(
            JudgmentRecord(
                match_id=f"h-{i}",
                contestants=(a, b),
                winner="a" if i % 3 else "b",
                voter=f"hostile-voter-{i}",
                prompt_id="h1",
            )
        )
    for i in range(12):  # a judge's verdicts, both orders: the audit pages chart them
        a, b = HOSTILE_NAMES[i % 4], HOSTILE_NAMES[(i + 2 + i // 4) % 4]
        if a != b:
            records.append(
                JudgmentRecord(
                    match_id=f"j-{i}",
                    contestants=(a, b) if i % 2 else (b, a),
                    winner="a" if i % 3 else "b",
                    judge=HOSTILE_JUDGE,
                    prompt_id="h1",
                )
            )
    import_records(records, prompt_set="hostile", source="seed")
    User.objects.create_user(STAFF_USER, password=STAFF_PASSWORD, is_staff=True)
    PromptSet.objects.filter(slug="hostile").update(name="Hostile", is_public_arena=True)
    refresh_prompt_set(PromptSet.objects.get(slug="hostile"), bootstrap=50)


def soften():
    """Give the latest human board fractional vote counts (``SOFT_VOTES``)."""
    snapshot = LeaderboardSnapshot.objects.latest_of(
        BoardScope.validated("hostile", "humans", "", "0").key
    )
    for row, votes in zip(snapshot.rows, SOFT_VOTES, strict=True):
        row["votes"] = votes
    snapshot.save(update_fields=["rows"])


if __name__ == "__main__":
    seed()
