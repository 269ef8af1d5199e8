from django.contrib import admin, messages
from django.utils.html import format_html

from arena.errors import Refusal
from arena.models import AnnotationCampaign, CampaignMember, EvaluationRun, Judge
from judges import runs, schedules
from judges.models import ApiToken
from judges.tokens import assign_new_secret


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
        "cron",
        "created_at",
        "live_page",
    ]
    list_filter = ["status", "design", "judge", "prompt_set", "tag"]
    search_fields = ["name", "tag"]
    filter_horizontal = ["contestants", "jurors"]
    readonly_fields = [
        "status",
        "planned_calls",
        "calls_made",
        "calls_failed",
        "calls_cached",
        "cost",
        "started_at",
        "finished_at",
        "error",
        "template",
        "live_page",
    ]
    actions = ["start_runs", "cancel_runs", "resume_runs", "start_copies"]

    @admin.display(description="Live page")
    def live_page(self, run):
        return format_html('<a href="/runs/{}/">/runs/{}/</a>', run.pk, run.pk) if run.pk else "–"

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        run = form.instance
        # The crontab lives in django-celery-beat; keep it in step with the run's cron field.
        if "cron" in form.changed_data:
            try:
                schedules.schedule_run(run, run.cron)
            except Refusal as exc:
                EvaluationRun.objects.filter(pk=run.pk).update(cron="")
                self.message_user(request, f"Not scheduled: {exc.message}", messages.ERROR)
            else:
                if run.cron:
                    self.message_user(request, f"Scheduled: a copy starts on crontab {run.cron!r}.")

    def _apply(self, request, queryset, use_case, verb):
        done = 0
        for run in queryset:
            try:
                use_case(run)
                done += 1
            except Refusal as exc:
                self.message_user(request, f"{run}: {exc.message}", messages.ERROR)
        if done:
            self.message_user(request, f"{verb} {done} run(s).")

    @admin.action(description="Start the selected pending runs")
    def start_runs(self, request, queryset):
        self._apply(request, queryset, runs.start_run, "Started")

    @admin.action(description="Cancel the selected runs")
    def cancel_runs(self, request, queryset):
        self._apply(request, queryset, runs.cancel_run, "Cancelled")

    @admin.action(description="Resume the selected runs where they stopped")
    def resume_runs(self, request, queryset):
        self._apply(request, queryset, runs.resume_run, "Resumed")

    @admin.action(description="Start a copy of the selected runs now (schedule templates)")
    def start_copies(self, request, queryset):
        self._apply(request, queryset, lambda t: runs.start_run(schedules.clone_run(t)), "Copied")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are shown once, when created; only their hash is kept."""

    list_display = ["name", "prefix", "user", "is_active", "created_at", "last_used_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "prefix"]
    fields = ["name", "user", "is_active", "prefix", "last_used_at"]
    readonly_fields = ["prefix", "last_used_at"]

    def save_model(self, request, obj, form, change):
        raw = None if change else assign_new_secret(obj)
        super().save_model(request, obj, form, change)
        if raw:
            self.message_user(
                request,
                f"Token {obj.name!r}: {raw} (copy it now; it is not stored and will not be shown again)",
                messages.WARNING,
            )


class CampaignMemberInline(admin.TabularInline):
    """The pool: staff switch an annotator off (no new assignments); annotators join when
    the campaign is opened (``judges.campaigns.open_campaign``, ``POST /api/campaigns``)."""

    model = CampaignMember
    fields = ["user", "voter", "active", "joined_at"]
    readonly_fields = ["user", "voter", "joined_at"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(AnnotationCampaign)
class AnnotationCampaignAdmin(admin.ModelAdmin):
    """Human judging campaigns: opened through the API (items and pool are checked there);
    here staff edit the guidelines and the hand-out settings, or close a campaign."""

    list_display = ["name", "run", "status", "redundancy", "gold_rate", "created_at"]
    list_filter = ["status"]
    fields = [
        "name",
        "run",
        "status",
        "guidelines",
        "redundancy",
        "gold_rate",
        "assignment_seconds",
        "queue_size",
    ]
    readonly_fields = ["run", "redundancy"]
    inlines = [CampaignMemberInline]

    def has_add_permission(self, request):
        return False
