from django.contrib import admin

from judges.models import EvaluationRun, Judge


@admin.register(Judge)
class JudgeAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "version",
        "model",
        "mode",
        "base_url",
        "both_orders",
        "is_active",
        "created_at",
    ]
    list_filter = ["mode", "is_active", "both_orders", "family"]
    search_fields = ["name", "model", "version", "base_url"]
    readonly_fields = ["version"]
    save_as = True


@admin.register(EvaluationRun)
class EvaluationRunAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "design",
        "judge",
        "prompt_set",
        "status",
        "planned_calls",
        "calls_made",
        "calls_failed",
        "cost",
        "created_at",
    ]
    list_filter = ["status", "design", "judge", "prompt_set", "tag"]
    search_fields = ["name", "tag"]
    filter_horizontal = ["contestants"]
    readonly_fields = [
        "status",
        "planned_calls",
        "calls_made",
        "calls_failed",
        "cost",
        "started_at",
        "finished_at",
        "error",
    ]
