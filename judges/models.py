"""Bearer tokens of the runs API. (Judge and EvaluationRun live in arena.models: the
arena owns the data model of who judged what, and why.)"""

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    """A bearer token for the runs API. Only its sha256 is stored; the token is shown once."""

    name = models.CharField(max_length=100, unique=True)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(
        max_length=16, editable=False, help_text="First characters, to recognise a token."
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="api_tokens",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"
