from django.contrib import admin, messages

from arena.battles import promote_prompts
from arena.models import (
    Contestant,
    Judgment,
    LeaderboardSnapshot,
    Match,
    MatchSlot,
    Output,
    Prompt,
    PromptSet,
    Rubric,
    Voter,
)


@admin.register(Contestant)
class ContestantAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "organization", "family", "provider", "is_active", "created_at"]
    list_filter = ["kind", "is_active", "family", "provider", "organization", "license"]
    search_fields = ["name", "family", "provider", "api_model", "organization"]
    fieldsets = [
        (None, {"fields": ["name", "kind", "is_active", "family", "provider"]}),
        (
            "Public page (/models/<name>/)",
            {"fields": ["description", "organization", "license", "link"]},
        ),
        (
            "Live answers (OpenAI-compatible endpoint)",
            {"fields": ["base_url", "api_model", "api_key_env", "generation_params"]},
        ),
    ]


@admin.register(PromptSet)
class PromptSetAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "is_public_arena", "license", "created_at"]
    list_filter = ["is_public_arena", "license"]
    search_fields = ["slug", "name", "source"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = [
        "external_id",
        "prompt_set",
        "category",
        "visibility",
        "language",
        "short_text",
    ]
    list_filter = ["visibility", "prompt_set", "category", "language"]
    search_fields = ["external_id", "text"]
    list_select_related = ["prompt_set"]
    raw_id_fields = ["author"]
    actions = ["promote"]

    @admin.display(description="text")
    def short_text(self, obj):
        return obj.text[:80]

    @admin.action(
        description="Promote the selected reviewed typed prompts to public (battles may serve them)"
    )
    def promote(self, request, queryset):
        """A typed prompt is private to its author until staff have read it (no personal
        data, nothing injected) and promote it: from then on battles may serve it to anyone."""
        count = promote_prompts(queryset)
        self.message_user(request, f"{count} prompt(s) promoted to public.", messages.SUCCESS)


@admin.register(Rubric)
class RubricAdmin(admin.ModelAdmin):
    """Rubrics of a prompt set or of one prompt (issue 15): drafted by an LLM
    (``draft_rubrics``, ``POST /api/runs/rubrics/draft``), read and edited here; ``clean``
    checks the criteria (:func:`arena.rubrics.parse_criteria`)."""

    list_display = ["__str__", "criterion_names", "source", "updated_at"]
    list_filter = ["prompt_set"]
    search_fields = ["prompt__external_id", "prompt_set__slug", "source"]
    raw_id_fields = ["prompt"]
    list_select_related = ["prompt__prompt_set", "prompt_set"]

    @admin.display(description="criteria")
    def criterion_names(self, obj):
        items = obj.criteria if isinstance(obj.criteria, list) else []
        return ", ".join(
            f"{c.get('name')} ×{c.get('weight', 1)}" for c in items if isinstance(c, dict)
        )


@admin.register(Output)
class OutputAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "contestant",
        "prompt",
        "token_length",
        "header_count",
        "list_count",
        "bold_count",
    ]
    list_filter = ["contestant", "prompt__prompt_set"]
    search_fields = ["text", "contestant__name", "prompt__external_id"]
    list_select_related = ["contestant", "prompt__prompt_set"]
    raw_id_fields = ["prompt"]
    readonly_fields = ["token_length", "header_count", "list_count", "bold_count"]


@admin.register(Voter)
class VoterAdmin(admin.ModelAdmin):
    list_display = ["__str__", "kind", "user", "flagged", "created_at"]
    list_filter = ["kind", "flagged"]
    search_fields = ["label", "user__username", "ip_hash", "network_hash"]
    raw_id_fields = ["user"]


class MatchSlotInline(admin.TabularInline):
    model = MatchSlot
    extra = 0
    raw_id_fields = ["output"]


class JudgmentInline(admin.TabularInline):
    model = Judgment
    extra = 0
    fields = [
        "judge",
        "voter",
        "kind",
        "status",
        "winner",
        "strength",
        "presentation",
        "repeat",
        "weight",
    ]
    raw_id_fields = ["voter"]
    show_change_link = True


@admin.register(Match)
class MatchAdmin(admin.ModelAdmin):
    list_display = ["id", "prompt_set", "origin", "source", "k", "category", "policy", "created_at"]
    list_filter = ["origin", "prompt_set", "k", "source", "policy", "category"]
    search_fields = ["external_id", "prompt__text", "slots__contestant__name"]
    list_select_related = ["prompt_set"]
    raw_id_fields = ["prompt", "run", "owner"]
    inlines = [MatchSlotInline, JudgmentInline]
    date_hierarchy = "created_at"


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "match",
        "judge",
        "voter",
        "kind",
        "status",
        "winner",
        "strength",
        "presentation",
        "weight",
        "created_at",
    ]
    list_filter = ["kind", "status", "winner", "judge", "voter__kind", "match__prompt_set"]
    search_fields = [
        "raw_text",
        "verdict_label",
        "voter__label",
        "judge__name",
        "match__external_id",
    ]
    list_select_related = ["match", "judge", "voter"]
    raw_id_fields = ["match", "voter"]
    date_hierarchy = "created_at"


@admin.register(LeaderboardSnapshot)
class LeaderboardSnapshotAdmin(admin.ModelAdmin):
    list_display = ["scope", "method", "n_models", "n_votes", "fit_seconds", "created_at"]
    list_filter = ["method", "prompt_set"]
    search_fields = ["scope"]
    date_hierarchy = "created_at"
